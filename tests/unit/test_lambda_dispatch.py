"""In-process Lambda dispatch: answers lambda.Invoke before any request leaves botocore.

The clients point at a closed local port, so a call the dispatcher does not answer fails
with a connection error instead of reaching AWS.
"""

from __future__ import annotations

import json
import threading
import time
import traceback
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore import handlers as botocore_handlers
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError

from printflow.errors import StepFailed
from printflow_tools.localstack.lambda_dispatch import LambdaDispatcher, function_name_of

ARN = "arn:aws:lambda:us-east-1:123456789012:function:ConsumeRestApi"
_CONFIG = Config(retries={"total_max_attempts": 1}, connect_timeout=1, read_timeout=1)


def lambda_client() -> Any:
    return boto3.client(
        "lambda", region_name="us-east-1", endpoint_url="http://127.0.0.1:9", config=_CONFIG
    )


def invoke(client: Any, function: str, event: Any, **extra: Any) -> tuple[dict[str, Any], Any]:
    response = client.invoke(FunctionName=function, Payload=json.dumps(event), **extra)
    body = response["Payload"].read()
    return response, json.loads(body) if body else None


@pytest.fixture
def fresh_default_session(monkeypatch: pytest.MonkeyPatch) -> None:
    """Like mock_aws: boto3's default session is replaced for the duration of a test."""
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)


@pytest.fixture
def lambdas(fresh_default_session: None) -> Iterator[LambdaDispatcher]:
    with LambdaDispatcher() as dispatcher:
        yield dispatcher


@pytest.mark.parametrize(
    ("function", "name"),
    [
        ("ConsumeRestApi", "ConsumeRestApi"),
        ("ConsumeRestApi:live", "ConsumeRestApi"),
        ("123456789012:function:ConsumeRestApi", "ConsumeRestApi"),
        (ARN, "ConsumeRestApi"),
        (ARN + ":$LATEST", "ConsumeRestApi"),
    ],
)
def test_function_names(function: str, name: str) -> None:
    assert function_name_of(function) == name


def test_dispatches_by_arn_or_name_with_a_lambda_context(lambdas: LambdaDispatcher) -> None:
    seen: list[tuple[Any, Any]] = []

    def handler(event: Any, context: Any) -> dict[str, Any]:
        seen.append((event, context))
        return {"echo": event["n"]}

    lambdas.register("ConsumeRestApi", handler, memory_limit_in_mb=512)
    client = lambda_client()

    response, result = invoke(client, ARN, {"n": 1})
    _, by_name = invoke(client, "ConsumeRestApi", {"n": 2})

    assert response["StatusCode"] == 200
    assert "FunctionError" not in response
    assert (result, by_name) == ({"echo": 1}, {"echo": 2})
    event, context = seen[0]
    assert event == {"n": 1}
    assert context.function_name == "ConsumeRestApi"
    assert context.invoked_function_arn == ARN
    assert context.memory_limit_in_mb == 512
    assert context.aws_request_id != seen[1][1].aws_request_id
    assert 0 < context.get_remaining_time_in_millis() <= 30_000
    assert [call.event for call in lambdas.invocations_of(ARN)] == [{"n": 1}, {"n": 2}]


def test_none_result_is_json_null(lambdas: LambdaDispatcher) -> None:
    lambdas.register(ARN, lambda event, context: None)

    response, result = invoke(lambda_client(), "ConsumeRestApi", {})

    assert response["StatusCode"] == 200
    assert result is None


def test_exceptions_become_function_errors_named_by_their_class(
    lambdas: LambdaDispatcher,
) -> None:
    def handler(event: Any, context: Any) -> None:
        raise StepFailed("HTTP 400 from https://erp.example.com")

    lambdas.register("ConsumeRestApi", handler)

    response, payload = invoke(lambda_client(), ARN, {})

    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    assert payload == {
        "errorType": "StepFailed",
        "errorMessage": "HTTP 400 from https://erp.example.com",
        "stackTrace": [],
    }
    assert lambdas.invocations[-1].error_type == "StepFailed"


def test_a_failure_s_traceback_reads_as_python_formats_it(lambdas: LambdaDispatcher) -> None:
    def refuse(order: str) -> None:
        raise StepFailed(f"HTTP 400 for {order}")

    def handler(event: Any, context: Any) -> None:
        refuse(event["order"])

    lambdas.register("ConsumeRestApi", handler)
    invoke(lambda_client(), ARN, {"order": "sf-a/1001"})
    try:
        handler({"order": "sf-a/1001"}, None)
    except StepFailed:
        expected = traceback.format_exc()

    trace = lambdas.invocations[-1].trace
    assert trace is not None
    assert "StepFailed: HTTP 400 for sf-a/1001" in trace.splitlines()[-1]
    assert '    raise StepFailed(f"HTTP 400 for {order}")' in trace.splitlines()
    # The handler's frames, as Python itself prints them (beyond them: the dispatcher's),
    # less the ^^^ lines under a call that Python adds.
    python_s = [line for line in expected.splitlines() if line.strip(" ^~")]
    assert python_s[-5:] == trace.splitlines()[-5:]


def test_unserialisable_results_are_marshal_errors(lambdas: LambdaDispatcher) -> None:
    lambdas.register("ConsumeRestApi", lambda event, context: {"at": object()})

    response, payload = invoke(lambda_client(), ARN, {})

    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Runtime.MarshalError"


def test_unknown_functions_are_resource_not_found(lambdas: LambdaDispatcher) -> None:
    with pytest.raises(ClientError) as excinfo:
        invoke(lambda_client(), "arn:aws:lambda:us-east-1:123456789012:function:Nope", {})

    error = excinfo.value.response
    assert error["Error"]["Code"] == "ResourceNotFoundException"
    assert "function:Nope" in error["Error"]["Message"]
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_invalid_json_payload_is_rejected(lambdas: LambdaDispatcher) -> None:
    lambdas.register("ConsumeRestApi", lambda event, context: None)

    with pytest.raises(ClientError) as excinfo:
        lambda_client().invoke(FunctionName=ARN, Payload=b"{not json")

    assert excinfo.value.response["Error"]["Code"] == "InvalidRequestContentException"
    assert lambdas.invocations == []


def test_event_invocations_run_in_the_background(lambdas: LambdaDispatcher) -> None:
    done = threading.Event()
    lambdas.register("ConsumeRestApi", lambda event, context: done.set())

    response, _ = invoke(lambda_client(), ARN, {}, InvocationType="Event")

    assert response["StatusCode"] == 202
    assert done.wait(5)


def test_dry_run_does_not_call_the_handler(lambdas: LambdaDispatcher) -> None:
    lambdas.register("ConsumeRestApi", lambda event, context: pytest.fail("called"))

    response, _ = invoke(lambda_client(), ARN, {}, InvocationType="DryRun")

    assert response["StatusCode"] == 204


def test_sessions_created_after_install_are_dispatched(
    fresh_default_session: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    with LambdaDispatcher() as lambdas:
        lambdas.register("ConsumeRestApi", lambda event, context: "ok")
        # mock_aws replaces the default session when it starts; the new one must work too.
        monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
        _, result = invoke(lambda_client(), ARN, {})
        _, explicit = invoke(
            boto3.Session().client(
                "lambda", endpoint_url="http://127.0.0.1:9", region_name="us-east-1", config=_CONFIG
            ),
            ARN,
            {},
        )

    assert result == explicit == "ok"


def test_uninstall_stops_dispatching_everywhere(fresh_default_session: None) -> None:
    lambdas = LambdaDispatcher()
    lambdas.register("ConsumeRestApi", lambda event, context: "ok")
    lambdas.install()
    client_made_while_installed = lambda_client()

    lambdas.uninstall()

    for spec in botocore_handlers.BUILTIN_HANDLERS:
        assert getattr(spec[1], "__self__", None) is not lambdas
    for client in (client_made_while_installed, lambda_client()):
        with pytest.raises(EndpointConnectionError):
            invoke(client, ARN, {})


def test_concurrent_invocations(lambdas: LambdaDispatcher) -> None:
    def handler(event: Any, context: Any) -> int:
        time.sleep(0.01)
        return int(event["n"]) * 2

    lambdas.register("ConsumeRestApi", handler)
    results: dict[int, Any] = {}

    def call(n: int) -> None:
        results[n] = invoke(lambda_client(), ARN, {"n": n})[1]

    threads = [threading.Thread(target=call, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert results == {n: n * 2 for n in range(8)}
    assert len(lambdas.invocations) == 8
