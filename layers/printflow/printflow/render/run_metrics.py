"""What one poller run publishes for alarms and the dashboard, and when a run counts as failed.

Kept apart from the poller itself: the poller reports, this module decides what an
operator is shown.

- ``PollerErrors``: jobs whose handling raised (a bug, the table) plus provider answers
  that broke the provider's protocol (garbage instead of JSON);
- ``PollerLeasesLost``: jobs another run or a cancellation took while this run polled them;
- ``PollerJobsSkippedForTime``: due jobs left for the next run because time ran low;
- ``OldestDueJobAgeSeconds``: how long the most overdue render job has been due (0 when
  nothing is due). A render that waits far past its policy means a stuck provider or a
  stuck poller; published on every run so its alarm also sees "no data" when runs stop.
"""

from __future__ import annotations

from collections.abc import Iterable

from printflow.render.poller import PollReport

RUN_METRICS = (
    ("PollerLeasesLost", "lost_leases"),
    ("PollerJobsSkippedForTime", "skipped_for_time"),
)
OLDEST_DUE_AGE_METRIC = "OldestDueJobAgeSeconds"


class PollerRunFailed(Exception):
    """Every job the run took failed: surfaces in the function's ``Errors`` metric."""


def run_metrics(report: PollReport, oldest_due_age_s: float | None) -> list[tuple[str, str, float]]:
    """(name, unit, value) for every metric a run publishes (a poll-timer batch, which
    does not read the due index, passes no ``oldest_due_age_s``)."""
    values: list[tuple[str, str, float]] = [
        ("PollerErrors", "Count", float(report.errors + report.malformed_answers))
    ]
    values += [
        (name, "Count", float(getattr(report, attribute))) for name, attribute in RUN_METRICS
    ]
    if oldest_due_age_s is not None:
        values.append((OLDEST_DUE_AGE_METRIC, "Seconds", round(max(0.0, oldest_due_age_s), 3)))
    return values


def oldest_due_age(oldest_due_at: Iterable[float | None], now: float) -> float:
    """Seconds since the earliest ``dueAt`` among the shards (0 when nothing is due)."""
    due = [at for at in oldest_due_at if at is not None]
    return max(0.0, now - min(due)) if due else 0.0


def raise_if_run_failed(report: PollReport) -> None:
    """A run whose every job errored is a failed run (systemic: table, credentials, a bug).

    Single-job errors stay in ``PollerErrors``: one provider's garbage answer must not make
    the whole function look down. A run that handled nothing is not a failure.
    """
    if report.errors > 0 and report.errors >= report.leased:
        raise PollerRunFailed(
            f"every render job of the run failed ({report.errors} error(s)); see the log"
        )
