"""Poll timers: every render job's next poll is a delayed message on the poll queue.

On moto's DynamoDB and SQS (the template's tables and queues) with a scripted provider:

- a timer fires: the job is polled once and its next timer is set;
- a duplicate timer leads to one poll (the lease);
- a lost timer: the scheduled run rescues the job after the staleness limit, and counts it;
- a 429 with Retry-After sets the next timer after it;
- Customer's Canvas is never polled sooner than its 60 s, across retries and across
  storefronts that share an order id;
- a job whose step has timed out is not polled again;
- waits longer than SQS's 900 s are chained.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from printflow.adapters.poll_timers import PollTimer, PollTimerQueue, parse_timer_message
from printflow.adapters.render_job_table import RenderJobTable
from printflow.domain.order import OrderKey
from printflow.domain.render_job import JobState, PollingPolicy, RenderJob
from printflow.domain.storefront import ProviderName
from printflow.providers.errors import ProviderUnavailable
from printflow.providers.protocol import PollResult, PollState, RecoveryPlan, RenderWork, WorkKind
from printflow.render.jobs import job_for_work
from printflow.render.policies import policy_for
from printflow.render.poller import Poller, PollerSettings, PollReport
from printflow.render.timers import TimerBatch
from printflow_tools.localstack.resources import LocalResources

CHILI_LIKE = PollingPolicy(interval_s=2.0, first_poll_s=2.0, age_fraction=0.2, max_interval_s=30.0)


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class ScriptedProvider:
    """Records when each (storefront, work) was polled; answers ``answer(work)``."""

    name = ProviderName.CHILI
    min_poll_interval_s = 0.0

    def __init__(
        self, clock: Callable[[], float], answer: Callable[[RenderWork], PollResult] | None = None
    ) -> None:
        self.polled_at: dict[str, list[float]] = defaultdict(list)
        self._clock = clock
        self._lock = threading.Lock()
        self._answer = answer or (lambda work: PollResult(PollState.RUNNING))

    async def poll(self, work: RenderWork) -> PollResult:
        with self._lock:
            self.polled_at[work.reference].append(self._clock())
        await asyncio.sleep(0.001)
        return self._answer(work)

    @property
    def polls(self) -> int:
        return sum(len(times) for times in self.polled_at.values())

    def recovery_plan(self, work: RenderWork) -> RecoveryPlan:
        return RecoveryPlan(allowed=False, reason="not recoverable")

    async def recover(self, work: RenderWork) -> RenderWork:  # pragma: no cover
        raise AssertionError("no recovery here")


class Recorder:
    """The download queue and the task tokens."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.failures: list[tuple[str, str, str]] = []

    def send(self, job: RenderJob) -> None:
        self.sent.append(job.job_id)

    def fail(self, token: str, error: str, cause: str) -> None:
        self.failures.append((token, error, cause))


class TimerLog:
    """Poll timers as the poller sets them, for tests that run on a fake clock (SQS delays
    in real time); the SQS adapter itself is exercised by the tests on the real queue."""

    def __init__(self) -> None:
        self.timers: list[PollTimer] = []

    def set(self, job: RenderJob) -> None:
        assert job.due_at is not None
        self.timers.append(PollTimer(job.order_key, job.job_id, job.due_at))

    def set_timer(self, timer: PollTimer) -> None:
        self.timers.append(timer)

    def take(self) -> list[PollTimer]:
        taken, self.timers = self.timers, []
        return taken


@pytest.fixture
def jobs(local_aws: LocalResources) -> RenderJobTable:
    return RenderJobTable(boto3.client("dynamodb"), local_aws.table(), due_shards=4)


@pytest.fixture
def poll_queue(local_aws: LocalResources) -> str:
    return local_aws.queues["RenderPollQueue"]


def new_job(
    jobs: RenderJobTable,
    clock: Callable[[], float],
    *,
    storefront: str = "shop",
    order: str = "1001",
    ref: str = "task-1",
    provider: ProviderName = ProviderName.CHILI,
    due_in: float = 0.0,
    deadline_in: float = 3600.0,
) -> RenderJob:
    kind = WorkKind.OUTPUT_TASK if provider is ProviderName.CHILI else WorkKind.PROJECT
    job = job_for_work(
        RenderWork(provider, kind, ref),
        OrderKey(storefront, order),
        f"token-{storefront}-{order}",
        "generate",
        created_at=clock(),
        deadline_at=clock() + deadline_in,
        due_at=clock() + due_in,
    )
    assert jobs.put_new(job)
    return job


def make_poller(
    jobs: RenderJobTable,
    provider: ScriptedProvider,
    clock: Callable[[], float],
    timers: Any,
    *,
    policy: PollingPolicy = CHILI_LIKE,
    recorder: Recorder | None = None,
    rescue_after_s: float = 0.0,
) -> Poller:
    recorder = recorder or Recorder()

    async def provider_for(job: RenderJob) -> Any:
        return provider

    return Poller(
        jobs,
        provider_for,
        lambda name: policy,
        recorder,
        recorder,
        PollerSettings(due_shards=4, concurrency=8, safety_s=0.0, rescue_after_s=rescue_after_s),
        timers=timers,
        clock=clock,
    )


def fire(poller: Poller, timers: list[PollTimer]) -> PollReport:
    return asyncio.run(poller.fire(timers, lambda: 30.0))


def timer_of(job: RenderJob) -> PollTimer:
    assert job.due_at is not None
    return PollTimer(job.order_key, job.job_id, job.due_at)


def delayed_messages(queue_url: str) -> int:
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessagesDelayed"])


# -- on the real poll queue, in real time -----------------------------------------------------


def test_a_timer_fires_the_job_is_polled_and_its_next_timer_is_set(
    jobs: RenderJobTable, poll_queue: str
) -> None:
    sqs = boto3.client("sqs")
    timers = PollTimerQueue(sqs, poll_queue)
    job = new_job(jobs, time.time, due_in=1.2)
    timers.set(job)  # as the render step does when it records the job

    # Given the timer fires (less than a second early: SQS delays whole seconds) ...
    (message,) = sqs.receive_message(QueueUrl=poll_queue, WaitTimeSeconds=5)["Messages"]
    fired_at = time.time()
    timer = parse_timer_message(message["Body"])
    stored = jobs.get(job.order_key, job.job_id)
    assert stored is not None and timer == timer_of(stored)  # due time as stored (ms)
    assert timer.due_at - 1.0 <= fired_at

    # ... when the poll function handles it ...
    provider = ScriptedProvider(time.time)
    report = fire(make_poller(jobs, provider, time.time, timers), [timer])

    # ... the job is polled once, not before it is due, and waits for its next poll, with a
    # timer set for it.
    assert (report.polls, report.timers_set, report.timers_skipped) == (1, 1, 0)
    ((polled_at,),) = provider.polled_at.values()
    assert polled_at >= timer.due_at
    saved = jobs.get(job.order_key, job.job_id)
    assert saved is not None and saved.state is JobState.PENDING and saved.due_at is not None
    assert saved.due_at >= polled_at + CHILI_LIKE.interval_s
    assert delayed_messages(poll_queue) == 1


def test_the_poll_function_handles_a_batch_and_sends_malformed_messages_back(
    local_aws: LocalResources, handler_of: Any, jobs: RenderJobTable, poll_queue: str
) -> None:
    from printflow_tools.localstack.lambda_dispatch import LambdaContext

    job = new_job(jobs, time.time, ref="task-batch")
    handler = handler_of("RenderPollFunction", EGRESS_ALLOWLIST="127.0.0.1")
    event = {
        "Records": [
            {"messageId": "m-1", "body": timer_of(job).to_message()},
            {"messageId": "m-2", "body": '{"jobId": 1}'},
        ]
    }
    context = LambdaContext(
        "RenderPollFunction", "arn:aws:lambda:::function:x", 512, "r-1", time.monotonic() + 30
    )

    result = handler(event, context)

    assert result["batchItemFailures"] == [{"itemIdentifier": "m-2"}]
    # The job's storefront is not registered: the poll fails, and the timer is set again
    # for when the lease runs out rather than lost.
    assert result["poll"]["errors"] == 1 and result["poll"]["timers_set"] == 1
    assert delayed_messages(poll_queue) == 1


def test_waits_longer_than_sqs_allows_are_chained(jobs: RenderJobTable, poll_queue: str) -> None:
    sqs = boto3.client("sqs")
    timers = PollTimerQueue(sqs, poll_queue)
    job = new_job(jobs, time.time, due_in=2_000.0)
    provider = ScriptedProvider(time.time)

    # A link of the chain fires 900 s before the job is due: nothing is polled, the timer
    # is set again for the rest of the wait.
    report = fire(make_poller(jobs, provider, time.time, timers), [timer_of(job)])

    assert (report.timers_chained, report.polls, report.timers_set) == (1, 0, 1)
    assert delayed_messages(poll_queue) == 1


# -- on a fake clock ----------------------------------------------------------------------------


def test_a_duplicate_timer_leads_to_one_poll(jobs: RenderJobTable) -> None:
    clock = Clock()
    job = new_job(jobs, clock)
    provider, log = ScriptedProvider(clock), TimerLog()
    timer = timer_of(job)

    # The same timer delivered twice in one batch and once more in another invocation.
    first = fire(make_poller(jobs, provider, clock, log), [timer, timer])
    second = fire(make_poller(jobs, provider, clock, log), [timer])

    assert provider.polls == 1
    assert first.timers_skipped + second.timers_skipped == 2
    (next_timer,) = log.take()  # one chain of timers goes on, not two
    assert next_timer.due_at >= clock() + CHILI_LIKE.interval_s * 0.9


def test_a_timer_that_meets_a_crashed_runs_lease_fires_again_when_it_runs_out(
    jobs: RenderJobTable,
) -> None:
    clock = Clock()
    job = new_job(jobs, clock)
    provider, log = ScriptedProvider(clock), TimerLog()
    # Given a poll run that leased the job and died before saving it
    pk, sk = f"ORDER#{job.order_key.storefront_id}#{job.order_key.order_id}", f"JOB#{job.job_id}"
    assert jobs.lease(pk, sk, "crashed-run", clock(), clock() + 30.0) is not None

    # When the job's timer fires while that lease holds
    report = fire(make_poller(jobs, provider, clock, log), [timer_of(job)])

    # Then nothing is polled, and the timer is set again for the lease's expiry (not left
    # to the scheduled run's rescue minutes later) ...
    assert provider.polls == 0 and report.timers_rearmed == 1 and report.timers_skipped == 0
    (rearmed,) = log.take()
    assert rearmed.due_at == pytest.approx(clock() + 30.0, abs=0.01)
    # ... where it polls the job.
    clock.now = rearmed.due_at
    fire(make_poller(jobs, provider, clock, log), [rearmed])
    assert provider.polls == 1


def test_a_late_timer_polls_late_and_a_stale_one_does_nothing(jobs: RenderJobTable) -> None:
    clock = Clock()
    job = new_job(jobs, clock)
    provider, log = ScriptedProvider(clock), TimerLog()
    clock.now += 40.0  # fires 40 s late

    fire(make_poller(jobs, provider, clock, log), [timer_of(job)])
    (next_timer,) = log.take()
    # The first timer, delivered again long after: the job is not due, nothing happens.
    report = fire(make_poller(jobs, provider, clock, log), [timer_of(job)])

    assert provider.polls == 1 and report.timers_skipped == 1 and not log.take()
    clock.now = next_timer.due_at
    fire(make_poller(jobs, provider, clock, log), [next_timer])
    assert provider.polls == 2


def test_a_lost_timer_is_rescued_by_the_scheduled_run_and_counted(jobs: RenderJobTable) -> None:
    clock = Clock()
    job = new_job(jobs, clock)  # its timer was never set (or went to the dead-letter queue)
    other = new_job(jobs, clock, ref="task-2", order="1002")
    provider, log = ScriptedProvider(clock), TimerLog()
    # The other job's timer fires: it is polled and waits for its next timer.
    fire(make_poller(jobs, provider, clock, log), [timer_of(other)])
    log.take()

    # Within the staleness limit the scheduled run leaves the job to its timer ...
    clock.now += 299.0
    early = make_poller(jobs, provider, clock, log, rescue_after_s=300.0).run(lambda: 60.0)
    assert (early.due, early.rescued, provider.polls) == (0, 0, 1)

    # ... after it, it polls the job, counts the rescue and sets a timer again. The other
    # job, due 2 s after it, is still within the limit: its timer is on its way.
    clock.now += 2.0
    late = make_poller(jobs, provider, clock, log, rescue_after_s=300.0).run(lambda: 60.0)

    assert (late.rescued, late.polls) == (1, 1)
    assert provider.polled_at[job.ref] == [clock.now]
    assert len(provider.polled_at[other.ref]) == 1
    (rescue_timer,) = log.take()
    assert rescue_timer.job_id == job.job_id and rescue_timer.due_at > clock.now


def test_a_429_with_retry_after_sets_the_next_timer_after_it(
    jobs: RenderJobTable, poll_queue: str
) -> None:
    clock = Clock()
    job = new_job(jobs, clock)

    def throttled(work: RenderWork) -> PollResult:
        raise ProviderUnavailable("429 from chili", status=429, retry_after_s=45.0)

    provider, log = ScriptedProvider(clock, throttled), TimerLog()
    report = fire(make_poller(jobs, provider, clock, log), [timer_of(job)])

    assert report.polls == 1 and report.failed == 0
    (next_timer,) = log.take()
    assert next_timer.due_at >= clock() + 45.0
    saved = jobs.get(job.order_key, job.job_id)
    assert saved is not None and saved.failures == 1 and saved.due_at == next_timer.due_at

    # On the queue, that timer is delayed at least as long (whole seconds, rounded up).
    sqs = boto3.client("sqs")
    PollTimerQueue(sqs, poll_queue, clock=clock).set_timer(next_timer)
    assert delayed_messages(poll_queue) == 1
    assert sqs.receive_message(QueueUrl=poll_queue, WaitTimeSeconds=1).get("Messages") is None


def test_customers_canvas_is_never_polled_sooner_than_its_minimum_interval(
    jobs: RenderJobTable,
) -> None:
    clock = Clock()
    canvas = policy_for(ProviderName.CUSTOMERS_CANVAS.value)
    # Two storefronts whose shops both have an order 1001, each with a project 4567.
    a = new_job(
        jobs, clock, storefront="shop-a", ref="4567", provider=ProviderName.CUSTOMERS_CANVAS
    )
    b = new_job(
        jobs, clock, storefront="shop-b", ref="4567", provider=ProviderName.CUSTOMERS_CANVAS
    )
    polled: dict[str, list[float]] = defaultdict(list)
    answers = iter(
        [PollResult(PollState.RUNNING)] * 2
        + [ProviderUnavailable("429", status=429, retry_after_s=1.0)] * 2
        + [PollResult(PollState.RUNNING)] * 10
    )

    class PerStorefront(ScriptedProvider):
        def __init__(self, storefront: str) -> None:
            super().__init__(clock)
            self.storefront = storefront

        async def poll(self, work: RenderWork) -> PollResult:
            polled[self.storefront].append(clock())
            answer = next(answers)
            if isinstance(answer, ProviderUnavailable):
                raise answer
            return answer

    adapters = {"shop-a": PerStorefront("shop-a"), "shop-b": PerStorefront("shop-b")}
    log = TimerLog()

    async def provider_for(job: RenderJob) -> Any:
        return adapters[job.order_key.storefront_id]

    def poller() -> Poller:
        return Poller(
            jobs,
            provider_for,
            lambda name: canvas,
            Recorder(),
            Recorder(),
            PollerSettings(due_shards=4, concurrency=8, safety_s=0.0),
            timers=log,
            clock=clock,
        )

    # Both fire at once: the storefronts do not hold each other back.
    fire(poller(), [timer_of(a), timer_of(b)])
    assert polled == {"shop-a": [clock.now], "shop-b": [clock.now]}
    pending = log.take()

    for _ in range(6):
        # Every timer also arrives twice, and a step retry moves the jobs to a new token.
        due = min(t.due_at for t in pending)
        clock.now = due
        for job in (a, b):
            jobs.set_task_token(job.order_key, job.job_id, f"retry-{clock.now}")
        fire(poller(), pending + pending)
        pending = [*pending, *log.take()]
        pending = [t for t in pending if t.due_at > clock.now]

    # A job made due early (by a rescue, say) right after a poll is not polled: its next
    # timer is set for when the minimum interval allows.
    last_a = polled["shop-a"][-1]
    boto3.client("dynamodb").update_item(
        TableName=jobs.table_name,
        Key={"pk": {"S": "ORDER#shop-a#1001"}, "sk": {"S": f"JOB#{a.job_id}"}},
        UpdateExpression="SET dueAt = :now",
        ExpressionAttributeValues={":now": {"N": str(clock.now)}},
    )
    clock.now = last_a + 1.0
    fire(poller(), [PollTimer(a.order_key, a.job_id, clock.now)])
    assert polled["shop-a"][-1] == last_a
    assert [t.due_at for t in log.take()] == [pytest.approx(last_a + canvas.min_interval_s)]

    for storefront, times in polled.items():
        assert len(times) >= 3, (storefront, times)
        gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
        assert min(gaps) >= canvas.min_interval_s, (storefront, times)


def test_a_job_whose_step_has_timed_out_is_not_polled_again(jobs: RenderJobTable) -> None:
    clock = Clock()
    job = new_job(jobs, clock, deadline_in=10.0)
    provider, log, recorder = ScriptedProvider(clock), TimerLog(), Recorder()
    fire(make_poller(jobs, provider, clock, log, recorder=recorder), [timer_of(job)])
    (next_timer,) = log.take()

    clock.now += 11.0  # the step's TimeoutSeconds has passed
    report = fire(make_poller(jobs, provider, clock, log, recorder=recorder), [next_timer])

    assert provider.polls == 1  # only the poll before the deadline
    assert report.failed == 1 and not log.take()
    ((token, error, _),) = recorder.failures
    assert (token, error) == (job.task_token, "Render.TimedOut")
    saved = jobs.get(job.order_key, job.job_id)
    assert saved is not None and saved.state is JobState.FAILED and saved.due_at is None
    # A timer that arrives after that finds nothing to do, and so does the scheduled run.
    again = fire(make_poller(jobs, provider, clock, log, recorder=recorder), [next_timer])
    clock.now += 10_000
    swept = make_poller(jobs, provider, clock, log, rescue_after_s=300.0).run(lambda: 60.0)
    assert again.timers_skipped == 1 and swept.due == 0 and provider.polls == 1


def test_a_timer_batch_keeps_the_timers_and_names_the_malformed_messages() -> None:
    good = PollTimer(OrderKey("shop", "1"), "job-1", 12.5)
    batch = TimerBatch.from_event(
        {
            "Records": [
                {"messageId": "a", "body": good.to_message()},
                {"messageId": "b", "body": "not json"},
                {"messageId": "c", "body": '{"storefrontId": "s", "orderId": "o", "jobId": "j"}'},
            ]
        }
    )
    assert batch.timers == [good]
    assert batch.malformed == ["b", "c"]


def test_moto_delays_timers_in_real_time_and_a_long_poll_wakes_when_one_is_due(
    poll_queue: str,
) -> None:
    """moto honours DelaySeconds; fidelity.py makes its long poll return once the delay
    runs out, as SQS does (moto's own wait looks only once a second)."""
    sqs = boto3.client("sqs")
    sent = time.monotonic()
    sqs.send_message(QueueUrl=poll_queue, MessageBody="{}", DelaySeconds=1)
    time.sleep(0.6)  # the message becomes available 0.4 s into the long poll below

    waited_from = time.monotonic()
    messages = sqs.receive_message(QueueUrl=poll_queue, WaitTimeSeconds=2).get("Messages")
    returned = time.monotonic()

    assert messages and returned - sent >= 1.0  # not before its delay
    # moto's unpatched wait sleeps a whole second before looking again
    assert returned - waited_from < 1.0


def test_a_lease_taken_while_a_timer_polls_wins_and_the_timers_save_is_dropped(
    jobs: RenderJobTable,
) -> None:
    clock = Clock()
    job = new_job(jobs, clock)
    pk, sk = f"ORDER#{job.order_key.storefront_id}#{job.order_key.order_id}", f"JOB#{job.job_id}"

    def sweep_leases_it_meanwhile(work: RenderWork) -> PollResult:
        # The scheduled run leases the job between the timer's read and its save.
        assert jobs.lease(pk, sk, "sweep-run", clock(), clock() + 30.0) is not None
        return PollResult(PollState.RUNNING)

    provider, log = ScriptedProvider(clock, sweep_leases_it_meanwhile), TimerLog()
    report = fire(make_poller(jobs, provider, clock, log), [timer_of(job)])

    # The timer polled, but its save found the job changed: the lease holder's outcome is the
    # one that counts ...
    assert provider.polls == 1 and report.lost_leases == 1
    stored = jobs.get(job.order_key, job.job_id)
    assert stored is not None and stored.state is JobState.LEASED
    assert stored.lease_owner == "sweep-run" and stored.attempts == 0
    # ... and the timer is set again for the lease's expiry: a holder that crashes never sets
    # one, and the job would wait for the scheduled rescue (a live holder's own timer makes
    # this one find the job not due).
    (rearmed,) = log.take()
    assert rearmed.due_at == pytest.approx(clock() + 30.0, abs=0.01)
    clock.now = rearmed.due_at
    fire(make_poller(jobs, provider, clock, log), [rearmed])
    assert provider.polls == 2
