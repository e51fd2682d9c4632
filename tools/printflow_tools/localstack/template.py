"""Reading ``template.yaml``: CloudFormation tags, intrinsic functions, function specs.

The local stack and the tests create every resource from the template itself, so a resource
added to the template appears locally without being declared a second time.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
LOCAL_ACCOUNT = "123456789012"
LOCAL_REGION = "us-east-1"

_SHORT_TAGS = {
    "!Ref": "Ref",
    "!Sub": "Fn::Sub",
    "!GetAtt": "Fn::GetAtt",
    "!Join": "Fn::Join",
    "!If": "Fn::If",
    "!Equals": "Fn::Equals",
    "!Not": "Fn::Not",
    "!Select": "Fn::Select",
    "!Split": "Fn::Split",
    "!FindInMap": "Fn::FindInMap",
    "!ImportValue": "Fn::ImportValue",
    "!GetAZs": "Fn::GetAZs",
    "!Base64": "Fn::Base64",
}


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that turns CloudFormation short tags into their long form."""


def _construct_tag(loader: _CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = _SHORT_TAGS.get(f"!{suffix}", f"Fn::{suffix}")
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if name == "Fn::GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _construct_tag)  # type: ignore[no-untyped-call]


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    with path.open() as handle:
        return yaml.load(handle, Loader=_CfnLoader)  # type: ignore[no-any-return]  # noqa: S506


@dataclass
class FunctionSpec:
    """What the local stack needs to run one ``AWS::Serverless::Function`` in process."""

    logical_id: str
    code_uri: Path
    handler: str
    timeout_s: int
    memory_mb: int
    environment: dict[str, str]
    events: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.logical_id

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT}:function:{self.logical_id}"


class Resolver:
    """Evaluates the intrinsic functions the template uses against local physical names."""

    _SUB_VAR = re.compile(r"\$\{([^}!][^}]*)\}")

    def __init__(self, template: dict[str, Any], parameters: dict[str, str] | None = None) -> None:
        self.template = template
        self.parameters = {
            name: str((spec or {}).get("Default", ""))
            for name, spec in (template.get("Parameters") or {}).items()
        }
        self.parameters.update(parameters or {})
        self.physical: dict[str, str] = {}
        self.arns: dict[str, str] = {}
        self.attributes: dict[tuple[str, str], str] = {}
        self.stack_name = "printflow-local"

    def ref(self, name: str) -> str:
        pseudo = {
            "AWS::Region": LOCAL_REGION,
            "AWS::AccountId": LOCAL_ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": self.stack_name,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.physical:
            return self.physical[name]
        raise KeyError(f"template: cannot resolve Ref {name!r} locally")

    def get_att(self, logical_id: str, attribute: str) -> str:
        if (logical_id, attribute) in self.attributes:
            return self.attributes[(logical_id, attribute)]
        if attribute == "Arn" and logical_id in self.arns:
            return self.arns[logical_id]
        raise KeyError(f"template: cannot resolve GetAtt {logical_id}.{attribute} locally")

    def sub(self, text: str, variables: dict[str, Any] | None = None) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if variables and name in variables:
                return str(self.resolve(variables[name]))
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return self.get_att(logical_id, attribute)
            return self.ref(name)

        return self._SUB_VAR.sub(replace, text)

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(str(arg))
            if key == "Fn::GetAtt":
                parts = arg if isinstance(arg, list) else str(arg).split(".", 1)
                return self.get_att(str(parts[0]), str(parts[1]))
            if key == "Fn::Sub":
                if isinstance(arg, list):
                    return self.sub(str(arg[0]), dict(arg[1]))
                return self.sub(str(arg))
            if key == "Fn::Join":
                return str(arg[0]).join(str(self.resolve(v)) for v in arg[1])
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value


def resources_of_type(template: dict[str, Any], *types: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in (template.get("Resources") or {}).items()
        if resource.get("Type") in types
    }


def function_specs(template: dict[str, Any], resolver: Resolver) -> dict[str, FunctionSpec]:
    """Every Serverless function with Globals applied and its environment resolved."""
    globals_ = (template.get("Globals") or {}).get("Function") or {}
    global_env = (globals_.get("Environment") or {}).get("Variables") or {}
    specs: dict[str, FunctionSpec] = {}
    for logical_id, resource in resources_of_type(template, "AWS::Serverless::Function").items():
        props = resource.get("Properties") or {}
        env = {**global_env, **((props.get("Environment") or {}).get("Variables") or {})}
        specs[logical_id] = FunctionSpec(
            logical_id=logical_id,
            code_uri=REPO_ROOT / str(props["CodeUri"]),
            handler=str(props.get("Handler", "app.lambda_handler")),
            timeout_s=int(props.get("Timeout", globals_.get("Timeout", 3))),
            memory_mb=int(props.get("MemorySize", globals_.get("MemorySize", 128))),
            environment={k: _env_value(resolver.resolve(v)) for k, v in env.items()},
            events=dict(props.get("Events") or {}),
        )
    return specs


def _env_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
