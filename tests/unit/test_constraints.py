"""One set of runtime versions: constraints.txt, pyproject.toml, the layer and this venv agree.

The Lambda layer ships every package it installs, botocore included (aws-xray-sdk pulls it):
if it were not pinned, the layer would carry a botocore the tests never ran, outside the range
boto3 allows, shadowing the runtime's.
"""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import distribution, version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from printflow_tools.localstack.template import REPO_ROOT

CONSTRAINTS = REPO_ROOT / "constraints.txt"
LAYER_REQUIREMENTS = REPO_ROOT / "layers" / "printflow" / "requirements.txt"


def _lines(path: Path) -> list[str]:
    """The file's lines without comments and blank lines."""
    stripped = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in stripped if line]


def pins() -> dict[str, str]:
    found: dict[str, str] = {}
    for line in _lines(CONSTRAINTS):
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)==([^\s;]+)", line)
        assert match, f"constraints.txt: {line!r} is not an exact pin"
        found[canonicalize_name(match[1])] = match[2]
    return found


def test_the_layer_installs_with_the_constraints_and_names_only_pinned_packages() -> None:
    lines = _lines(LAYER_REQUIREMENTS)
    constraint_files = [line.split(None, 1)[1] for line in lines if line.startswith("-c")]
    assert constraint_files == ["../../constraints.txt"]
    assert (LAYER_REQUIREMENTS.parent / constraint_files[0]).resolve() == CONSTRAINTS.resolve()
    pinned = pins()
    for line in lines:
        if line.startswith("-"):
            continue
        name = canonicalize_name(Requirement(line).name)
        assert name in pinned, f"layer requirement {line!r} has no pin in constraints.txt"


def test_pyproject_runtime_dependencies_match_the_constraints() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    pinned = pins()
    for spec in project["dependencies"]:
        requirement = Requirement(spec)
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{spec}: missing from constraints.txt"
        assert requirement.specifier.contains(pinned[name]), f"{spec} vs {pinned[name]}"


def test_the_pinned_botocore_is_one_boto3_allows_and_the_one_the_tests_run() -> None:
    pinned = pins()
    boto3_needs = [
        Requirement(r)
        for r in distribution("boto3").requires or []
        if Requirement(r).name == "botocore"
    ]
    assert boto3_needs and all(r.specifier.contains(pinned["botocore"]) for r in boto3_needs)
    for name, pinned_version in pinned.items():
        assert version(name) == pinned_version, f"{name}: venv has {version(name)}"
