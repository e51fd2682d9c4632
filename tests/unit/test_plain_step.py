"""run_plain_step: the logging, metrics and re-raising the plain step handlers share."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from printflow.errors import StepFailed, StepRetryable
from printflow.observability import metrics
from printflow.steps.completion import ORDER_FAILED_ANSWER
from printflow.steps.context import parse_step_event
from printflow.steps.plain import PlainStepNames, run_plain_step

NAMES = PlainStepNames("thing", "ThingsRetried", "ThingsFailed")


class Completion:
    def __init__(self, *, marks_order: bool = False) -> None:
        self.done: list[str] = []
        self.failed: list[str] = []
        self._marks_order = marks_order

    def step_done(self, invocation: Any) -> None:
        self.done.append(invocation.step_id)

    def order_failed(self, invocation: Any, failure: StepFailed) -> bool:
        self.failed.append(str(failure))
        return self._marks_order


def invocation(**step: Any) -> Any:
    event = {
        "input": {"order": {"storefrontId": "s", "orderId": "1"}},
        "step": {"id": "tell", "type": "thing", **step},
        "execution": "exec-1",
    }
    return parse_step_event(event, expected_type="thing")


@pytest.fixture(autouse=True)
def clean_metrics() -> Iterator[None]:
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


def fail(error: Exception) -> Any:
    def work() -> Any:
        raise error

    return work


def test_success_records_the_status_then_answers() -> None:
    completion = Completion()
    answer = run_plain_step(invocation(), NAMES, lambda: completion, lambda: 7, lambda n: {"n": n})
    assert answer == {"n": 7}
    assert completion.done == ["tell"]


def test_a_retryable_error_is_counted_and_raised_without_a_status() -> None:
    completion = Completion()
    with pytest.raises(StepRetryable):
        run_plain_step(
            invocation(), NAMES, lambda: completion, fail(StepRetryable("503")), lambda _: {}
        )
    assert "ThingsRetried" in metrics.metric_set
    assert completion.done == [] and completion.failed == []


def test_a_step_failure_is_raised_unless_the_order_was_marked_failed() -> None:
    completion = Completion()
    with pytest.raises(StepFailed, match="refused"):
        run_plain_step(
            invocation(), NAMES, lambda: completion, fail(StepFailed("refused")), lambda _: {}
        )
    assert "ThingsFailed" in metrics.metric_set
    assert completion.failed == ["refused"]

    marking = Completion(marks_order=True)
    answer = run_plain_step(
        invocation(), NAMES, lambda: marking, fail(StepFailed("refused")), lambda _: {}
    )
    assert answer == ORDER_FAILED_ANSWER


def test_an_unexpected_error_propagates_as_itself_in_an_ordinary_step() -> None:
    with pytest.raises(KeyError):
        run_plain_step(invocation(), NAMES, Completion, fail(KeyError("x")), lambda _: {})


def test_an_unexpected_error_of_a_step_that_fails_its_own_task_becomes_a_step_failure() -> None:
    with pytest.raises(StepFailed, match="KeyError"):
        run_plain_step(
            invocation(failsOrder=True), NAMES, Completion, fail(KeyError("x")), lambda _: {}
        )


def test_a_completion_that_cannot_be_built_fails_the_step_like_the_work() -> None:
    def broken() -> Any:
        raise RuntimeError("no table")

    with pytest.raises(StepFailed, match="RuntimeError: no table"):
        run_plain_step(invocation(failsOrder=True), NAMES, broken, lambda: 1, lambda _: {})


AWS_OUTAGES = [
    ReadTimeoutError(endpoint_url="http://127.0.0.1:4566/"),
    EndpointConnectionError(endpoint_url="http://127.0.0.1:4566/"),
    ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "PutItem"),
    ClientError(
        {"Error": {"Code": "Oops"}, "ResponseMetadata": {"HTTPStatusCode": 503}}, "PutObject"
    ),
]


@pytest.mark.parametrize("outage", AWS_OUTAGES, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("fails_order", [False, True])
@pytest.mark.parametrize("where", ["work", "status"])
def test_a_transient_aws_failure_is_retried_never_an_order_failure(
    outage: Exception, fails_order: bool, where: str
) -> None:
    # In the work or in recording the step's status, an AWS outage is the step's retry
    completion = Completion()
    if where == "status":

        def step_done(_: Any) -> None:
            raise outage

        completion.step_done = step_done  # type: ignore[method-assign]
    work = fail(outage) if where == "work" else (lambda: 1)
    with pytest.raises(StepRetryable, match="AWS unavailable"):
        run_plain_step(
            invocation(failsOrder=fails_order), NAMES, lambda: completion, work, lambda _: {}
        )
    assert completion.failed == []


def test_a_refusal_from_aws_is_not_transient() -> None:
    refused = ClientError({"Error": {"Code": "AccessDenied"}}, "PutObject")
    with pytest.raises(ClientError):
        run_plain_step(invocation(), NAMES, Completion, fail(refused), lambda _: {})
