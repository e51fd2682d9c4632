"""The poller's operations metrics, as the real handler publishes them (EMF on stdout)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from printflow.domain.order import OrderKey
from printflow.render.poller import PollReport
from printflow.render.run_metrics import PollerRunFailed, oldest_due_age, raise_if_run_failed

ORDER = OrderKey("demo-shopify", "5678901234567")


def published(out: str) -> dict[str, float]:
    """The metric values of the EMF lines a handler printed (what CloudWatch would store)."""
    values: dict[str, float] = {}
    for line in out.splitlines():
        if not line.startswith('{"_aws"'):
            continue
        doc = json.loads(line)
        for directive in doc["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                values[metric["Name"]] = values.get(metric["Name"], 0.0) + sum(doc[metric["Name"]])
    return values


def test_a_provider_answering_garbage_counts_in_poller_errors(
    world: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    world.register_chili_storefront()
    world.post("shopify", "demo-shopify", "shopify-orders-create.json")
    world.wait(lambda: world.jobs(ORDER), what="render jobs")
    world.chili.garbage_polls = True
    capsys.readouterr()

    # the jobs' poll timers fire: both polls answer garbage, then back off
    totals = world.fire_poll_timers(until=lambda t: t.get("malformed_answers", 0) >= 2)

    assert totals["malformed_answers"] == 2
    metrics = published(capsys.readouterr().out)
    assert metrics["PollerErrors"] == 2
    assert metrics["PollerLeasesLost"] == 0
    # the scheduled run publishes how long the most overdue job has waited
    world.run_poller()
    assert "OldestDueJobAgeSeconds" in published(capsys.readouterr().out)
    # the jobs stay pending (garbage is transient) and the step has not failed
    assert {j["state"] for j in world.jobs(ORDER)} == {"pending"}


def test_oldest_due_age_is_measured_from_the_earliest_due_job() -> None:
    assert oldest_due_age([None, 1000.0, 1030.0], now=1090.0) == 90.0
    assert oldest_due_age([None, None], now=1090.0) == 0.0


def test_a_run_whose_every_job_failed_is_a_failed_run() -> None:
    raise_if_run_failed(PollReport(leased=3, errors=1))  # one bad job: metric only
    raise_if_run_failed(PollReport())  # nothing to do is not a failure
    with pytest.raises(PollerRunFailed):
        raise_if_run_failed(PollReport(leased=2, errors=2))
