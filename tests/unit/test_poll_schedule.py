"""When render jobs are polled next: the providers' policies and the poll timers' delays."""

from __future__ import annotations

import pytest

from printflow.adapters.poll_timers import (
    MAX_DELAY_S,
    MalformedTimer,
    PollTimer,
    delay_for,
    parse_timer_message,
)
from printflow.domain.order import OrderKey
from printflow.domain.render_job import PollingPolicy
from printflow.render.policies import policy_for


def test_chili_is_polled_two_seconds_after_the_start_then_less_often_up_to_30_s() -> None:
    chili = policy_for("chili")
    assert chili.first_poll_s == 2.0
    for _ in range(200):
        delays = [chili.next_poll_delay(polls) for polls in range(1, 30)]
        assert 1.8 <= delays[0] <= 2.2  # about 2 s, with jitter
        assert max(delays) <= 30.0
        assert delays[-1] >= 27.0  # it does reach the cap
    # a 10 s render is seen done within a handful of polls
    elapsed, polls = chili.first_poll_s, 1
    while elapsed < 10.0:
        elapsed += chili.next_poll_delay(polls)
        polls += 1
    assert polls <= 6 and elapsed - 10.0 <= 4.0


def test_customers_canvas_is_never_polled_sooner_than_60_s() -> None:
    canvas = policy_for("customers-canvas")
    assert all(canvas.next_poll_delay(polls) >= 60.0 for polls in range(1, 20))
    # transient errors back off, but never under the vendor's floor
    assert all(canvas.backoff_delay(failures, retry_after=1.0) >= 60.0 for failures in range(1, 9))


def test_retry_after_is_a_floor_of_the_backoff() -> None:
    policy = PollingPolicy(interval_s=2.0, first_poll_s=2.0)
    assert all(policy.backoff_delay(1, retry_after=45.0) >= 45.0 for _ in range(50))


@pytest.mark.parametrize(
    ("due_in", "delay"),
    [(0.0, 0), (-5.0, 0), (0.2, 1), (1.0, 1), (2.01, 3), (899.5, 900), (5_000.0, MAX_DELAY_S)],
)
def test_a_timer_never_fires_before_its_due_time_and_waits_at_most_900_s(
    due_in: float, delay: int
) -> None:
    assert delay_for(1_000.0 + due_in, 1_000.0) == delay


def test_a_timer_message_round_trips() -> None:
    timer = PollTimer(OrderKey("acme-eu", "1001"), "task-abc", 1_700_000_000.125)
    assert parse_timer_message(timer.to_message()) == timer


@pytest.mark.parametrize(
    "body",
    [
        "",
        "[]",
        '{"storefrontId": "s", "orderId": "o"}',
        '{"storefrontId": "s", "orderId": "o", "jobId": "j", "dueAt": "soon"}',
        '{"storefrontId": "", "orderId": "o", "jobId": "j", "dueAt": 1}',
        '{"storefrontId": 1, "orderId": "o", "jobId": "j", "dueAt": 1}',
        '{"storefrontId": "s", "orderId": "o", "jobId": "j", "dueAt": NaN}',
    ],
)
def test_a_message_that_is_not_a_timer_is_refused_with_a_reason(body: str) -> None:
    with pytest.raises(MalformedTimer, match="not a poll timer"):
        parse_timer_message(body)
