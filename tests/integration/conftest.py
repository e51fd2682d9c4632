"""moto-backed AWS built from template.yaml, and handlers loaded with their template env."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from printflow.adapters import aws
from printflow.adapters.order_table import OrderTable
from printflow.adapters.webhook_secrets import WebhookSecrets
from printflow.storefronts import register_storefront
from printflow_tools.localstack.executions import end_every_execution
from printflow_tools.localstack.fidelity import make_moto_behave_like_aws
from printflow_tools.localstack.handlers import Handler, load_handler
from printflow_tools.localstack.resources import LocalResources, create_resources
from printflow_tools.webhook_events import DEMO_SECRETS


def _moto(execute_state_machines: bool) -> Iterator[LocalResources]:
    make_moto_behave_like_aws()
    config = {"stepfunctions": {"execute_state_machine": execute_state_machines}}
    with mock_aws(config=config):  # type: ignore[arg-type]
        aws.client.cache_clear()
        yield create_resources(boto3.Session(region_name="us-east-1"))
        if execute_state_machines:
            end_every_execution(boto3.client("stepfunctions", region_name="us-east-1"))
    aws.client.cache_clear()


@pytest.fixture
def local_aws() -> Iterator[LocalResources]:
    """Every resource of template.yaml on moto. Executions are recorded but do not run, so
    intake tests see exactly what the webhook wrote."""
    yield from _moto(execute_state_machines=False)


@pytest.fixture
def executing_aws() -> Iterator[LocalResources]:
    """Like ``local_aws``, with Step Functions running the state machines for real."""
    yield from _moto(execute_state_machines=True)


@pytest.fixture
def order_table(local_aws: LocalResources) -> OrderTable:
    return OrderTable(boto3.client("dynamodb"), local_aws.table())


@pytest.fixture
def register(local_aws: LocalResources, order_table: OrderTable) -> Any:
    """Register a storefront the way `printflow storefronts put` does."""
    secrets = WebhookSecrets(boto3.client("secretsmanager"), "printflow")

    def _register(storefront_id: str, platform: str, **extra: Any) -> None:
        doc = {
            "storefrontId": storefront_id,
            "platform": platform,
            "webhookSecret": DEMO_SECRETS[platform],
            **extra,
        }
        register_storefront(doc, order_table, secrets)

    return _register


@pytest.fixture
def handler_of(local_aws: LocalResources) -> Any:
    def _load(logical_id: str, **extra_env: str) -> Handler:
        return load_handler(local_aws.functions[logical_id], extra_env)

    return _load


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed world test shows the tracebacks of the functions that raised during it, as
    their logs would on AWS (the error payload a flow sees carries none)."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    world = getattr(item, "funcargs", {}).get("world")
    if report.when != "call" or not report.failed or world is None:
        return
    traces = [
        f"{call.function_name}:\n{call.trace}"
        for call in world.dispatcher.invocations
        if call.trace is not None
    ]
    if traces:
        report.sections.append(("function tracebacks", "\n".join(traces)))


@pytest.fixture
def world(executing_aws: LocalResources) -> Iterator[Any]:
    """The template on moto with every handler real (see tests/integration/world.py)."""
    from contextlib import ExitStack

    from .world import build_world

    with ExitStack() as stack:
        yield build_world(executing_aws, stack)
