"""generate-production-files inside the compiled default flow, with real providers (sandboxes).

The step's Lambda records one job per CHILI task / Customer's Canvas project and the flow
waits on its task token; the poller finds the work done and queues the downloads, or finds it
failed and fails the step, and the flow takes its onError path.
"""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest

from printflow.domain.order import OrderKey
from printflow_tools.sandboxes import Pipeline

SHOPIFY_ORDER = OrderKey("demo-shopify", "5678901234567")
WOO_ORDER = OrderKey("demo-woo", "7311")


def test_chili_tasks_are_recorded_and_the_flow_waits(world: Any) -> None:
    world.register_chili_storefront()

    assert (
        world.post("shopify", "demo-shopify", "shopify-orders-create.json")["status"] == "Received"
    )

    jobs = world.wait(
        lambda: len(world.jobs(SHOPIFY_ORDER)) == 2 and world.jobs(SHOPIFY_ORDER),
        what="two render jobs",
    )
    assert {j["state"] for j in jobs} == {"pending"}
    assert {j["kind"] for j in jobs} == {"task"}
    assert all(j["taskToken"] for j in jobs)
    assert len(world.chili.tasks()) == 2  # one output task per line item
    assert world.execution(SHOPIFY_ORDER)["status"] == "RUNNING"


def test_the_poller_finds_chili_work_done_and_queues_downloads(world: Any) -> None:
    world.register_chili_storefront()
    world.post("shopify", "demo-shopify", "shopify-orders-create.json")
    world.wait(lambda: len(world.jobs(SHOPIFY_ORDER)) == 2, what="two render jobs")

    result = world.fire_poll_timers(until=lambda totals: totals.get("finished", 0) >= 2)

    assert result["finished"] == 2, result
    assert result["polls"] == 4  # CHILI says "running" once, then "done"
    jobs = world.jobs(SHOPIFY_ORDER)
    assert {j["state"] for j in jobs} == {"ready"}
    assert all(j["files"][0]["url"].endswith("/download") for j in jobs)
    assert all("dueAt" not in j for j in jobs)
    messages = world.queued_downloads()
    assert sorted(m["jobId"] for m in messages) == sorted(j["jobId"] for j in jobs)
    # the flow still waits: only the download completes the token
    assert world.execution(SHOPIFY_ORDER)["status"] == "RUNNING"


def test_a_failed_chili_task_fails_the_step_and_the_flow_takes_on_error(world: Any) -> None:
    world.register_chili_storefront(templateId="fail-poster")
    world.post("shopify", "demo-shopify", "shopify-orders-create.json")
    world.wait(lambda: len(world.jobs(SHOPIFY_ORDER)) == 2, what="two render jobs")

    result = world.fire_poll_timers(until=lambda totals: totals.get("failed", 0) >= 1)

    assert result["failed"] >= 1
    execution = world.wait_finished(SHOPIFY_ORDER)
    assert execution["status"] == "FAILED"
    assert execution["cause"].startswith("Render.Failed: ")
    order = world.order(SHOPIFY_ORDER)
    assert order["status"] == "Failed"
    assert order["error"]["step"] == "generate"
    assert "font 'Brand Sans' could not be loaded" in order["error"]["cause"]
    (email,) = [
        m for m in world.emails() if "operations@example.com" in m.destinations["ToAddresses"]
    ]
    assert "could not be loaded" in email.body and "Brand Sans" in email.body
    assert {j["state"] for j in world.jobs(SHOPIFY_ORDER)} == {"failed"}


def test_customers_canvas_projects_become_jobs(world: Any) -> None:
    world.register_canvas_storefront()
    world.canvas.add_order(
        storefront_id=42, order_id="7311", line_items=[Pipeline.completes(after_polls=0)] * 2
    )
    world.post("woocommerce", "demo-woo", "woocommerce-order-created.json")

    jobs = world.wait(
        lambda: len(world.jobs(WOO_ORDER)) == 2 and world.jobs(WOO_ORDER), what="two project jobs"
    )
    assert {j["kind"] for j in jobs} == {"project"}

    result = world.fire_poll_timers(until=lambda totals: totals.get("finished", 0) >= 2)

    assert result["finished"] == 2, result
    assert {j["state"] for j in world.jobs(WOO_ORDER)} == {"ready"}


def test_a_canvas_409_fails_the_step_at_once_with_the_conflicts_description(
    world: Any,
) -> None:
    # Given a project whose processing-results answers 409 with a GeneralConflictDto
    world.register_canvas_storefront()
    (project_id,) = world.canvas.add_order(
        storefront_id=42,
        order_id="7311",
        line_items=[Pipeline.conflicts("the project has no processing pipeline")],
    )
    world.post("woocommerce", "demo-woo", "woocommerce-order-created.json")
    world.wait(lambda: world.jobs(WOO_ORDER), what="a project job")

    # When its poll timer fires
    result = world.fire_poll_timers(until=lambda totals: totals.get("failed", 0) >= 1)

    # Then the step fails with the vendor's description, not a retry
    assert result["failed"] == 1, result
    execution = world.wait_finished(WOO_ORDER)
    assert execution["status"] == "FAILED"
    order = world.order(WOO_ORDER)
    assert "GeneralConflict: the project has no processing pipeline" in order["error"]["cause"]
    assert len(world.canvas.poll_times(project_id)) == 1


def test_canvas_projects_not_created_yet_are_discovered_later(world: Any) -> None:
    world.register_canvas_storefront()
    world.post("woocommerce", "demo-woo", "woocommerce-order-created.json")
    (discovery,) = world.wait(lambda: world.jobs(WOO_ORDER), what="a discovery job")
    assert discovery["kind"] == "discovery"

    world.canvas.add_order(storefront_id=42, order_id="7311", line_items=[Pipeline.completes()])
    result = world.fire_poll_timers(until=lambda totals: totals.get("discovered", 0) >= 1)

    assert result["discovered"] == 1, result
    kinds = sorted((j["kind"], j["state"]) for j in world.jobs(WOO_ORDER))
    # the order's one line item has its project: discovery is finished (queued, no files)
    assert kinds == [("discovery", "ready"), ("project", "pending")]


def test_canvas_discovery_cut_short_by_its_deadline_finishes_and_says_so(world: Any) -> None:
    # Given a storefront that gives its projects no time to appear, and a project only for a
    # line item the order's other one (412) is still waiting for
    world.register_canvas_storefront(discoveryDeadlineS=0)
    world.canvas.add_order(
        storefront_id=42,
        order_id="7311",
        line_item_ids=["413"],
        first_line_item_index=1,
        line_items=[Pipeline.completes(after_polls=0, anonymous_access=True)],
    )
    world.post("woocommerce", "demo-woo", "woocommerce-order-created.json")
    world.wait(lambda: world.jobs(WOO_ORDER), what="render jobs")

    # When the poll timers fire after the deadline and the downloads run
    for _ in range(3):
        world.polled_until_settled(WOO_ORDER)
        world.deliver_downloads()
        if world.execution(WOO_ORDER)["status"] != "RUNNING":
            break

    # Then the flow finishes with the project found, and the order records the cut
    assert world.wait_finished(WOO_ORDER)["status"] == "SUCCEEDED"
    order = world.order(WOO_ORDER)
    discovery = order["projectDiscovery"]
    assert discovery["complete"] is False and discovery["missingLineItems"] == ["412"]
    assert discovery["stepId"] == "generate" and discovery["projects"] == 1
    assert [a["lineItemId"] for a in order["artifacts"]] == ["413"]


def test_a_retried_render_step_reuses_its_jobs_with_the_new_token(world: Any) -> None:
    from printflow.render.start import RenderRequest
    from printflow.render.wiring import build_render_starter
    from printflow.settings import RenderSettings

    world.register_chili_storefront()
    world.post("shopify", "demo-shopify", "shopify-orders-create.json")
    first = world.wait(
        lambda: len(world.jobs(SHOPIFY_ORDER)) == 2 and world.jobs(SHOPIFY_ORDER),
        what="two render jobs",
    )
    tasks_before = len(world.chili.tasks())
    settings = RenderSettings.from_env(
        world.resources.functions["GenerateProductionFilesFunction"].environment
        | {"EGRESS_ALLOWLIST": "127.0.0.1"}
    )

    started = build_render_starter(settings).start(
        RenderRequest(SHOPIFY_ORDER, "generate", "token-of-the-second-attempt", 3600)
    )

    assert started.resumed and started.jobs == 2
    assert len(world.chili.tasks()) == tasks_before  # nothing started twice at CHILI
    jobs = world.jobs(SHOPIFY_ORDER)
    assert {j["taskToken"] for j in jobs} == {"token-of-the-second-attempt"}
    assert sorted(j["jobId"] for j in jobs) == sorted(j["jobId"] for j in first)


def test_a_start_that_failed_half_way_is_resumed_not_repeated(world: Any) -> None:
    from printflow.render.start import RenderRequest
    from printflow.render.wiring import build_render_starter
    from printflow.settings import RenderSettings

    from .test_order_flow_end_to_end import run_to_completion

    # CHILI goes down after the order's first task started: the step fails as retryable ...
    world.chili.unavailable_after_tasks = 1
    world.register_chili_storefront()
    world.post("shopify", "demo-shopify", "shopify-orders-create.json")
    world.wait(lambda: world.jobs(SHOPIFY_ORDER), what="the first render job")
    world.chili.unavailable_after_tasks = None
    # ... and the flow's retry starts only the line item that has no job yet.
    jobs = world.wait(
        lambda: len(world.jobs(SHOPIFY_ORDER)) == 2 and world.jobs(SHOPIFY_ORDER),
        what="the second render job",
    )

    assert len(world.chili.tasks()) == 2  # not 3: the first task was not started again
    assert sorted(j["lineItemId"] for j in jobs) == sorted(
        li["id"] for li in world.order(SHOPIFY_ORDER)["order"]["lineItems"]
    )
    assert len({j["taskToken"] for j in jobs}) == 1  # both wait on the retry's token
    assert run_to_completion(world, SHOPIFY_ORDER)["status"] == "SUCCEEDED"
    assert world.order(SHOPIFY_ORDER)["renderStartsDone"] == ["generate"]
    assert len(world.order(SHOPIFY_ORDER)["artifacts"]) == 2
    # Once a start has finished, another attempt only moves the jobs to its token.
    settings = RenderSettings.from_env(
        world.resources.functions["GenerateProductionFilesFunction"].environment
        | {"EGRESS_ALLOWLIST": "127.0.0.1"}
    )
    again = build_render_starter(settings).start(
        RenderRequest(SHOPIFY_ORDER, "generate", "token-3", 3600)
    )
    assert again.resumed and again.jobs == 2 and len(world.chili.tasks()) == 2


def test_a_start_running_out_of_time_stops_between_tasks_and_the_retry_goes_on(
    local_aws: Any,
) -> None:
    import boto3

    from printflow.adapters.order_table import NewOrderRecord, OrderTable
    from printflow.adapters.webhook_secrets import WebhookSecrets
    from printflow.domain.order import RawBodyRef
    from printflow.domain.storefront import Platform
    from printflow.errors import StepRetryable
    from printflow.platforms.registry import normalise
    from printflow.render.start import RenderRequest
    from printflow.render.wiring import build_render_starter
    from printflow.settings import RenderSettings
    from printflow_tools.localstack.storefront_setup import (
        chili_provider,
        register_render_storefront,
    )
    from printflow_tools.sandboxes import ChiliSandbox
    from printflow_tools.webhook_events import payload

    table = OrderTable(boto3.client("dynamodb"), local_aws.table())
    order = normalise(Platform.SHOPIFY, "demo-shopify", payload("shopify-orders-create.json"), {})
    table.record_new_order(
        NewOrderRecord(order, RawBodyRef("b", "k"), "default", "2026-11-22T00:00:00Z", 0, 4)
    )
    settings = RenderSettings.from_env(
        local_aws.functions["GenerateProductionFilesFunction"].environment
        | {"EGRESS_ALLOWLIST": "127.0.0.1"}
    )
    with ChiliSandbox() as chili:
        register_render_storefront(
            table,
            WebhookSecrets(boto3.client("secretsmanager"), "printflow"),
            boto3.client("secretsmanager"),
            storefront_id="demo-shopify",
            platform="shopify",
            webhook_secret="s" * 20,
            provider=chili_provider(chili, "printflow/providers/demo-shopify/chili"),
            client_id="chili-client",
            client_secret="chili-secret",
        )
        starter = build_render_starter(settings)
        # 10 s left, less than a provider timeout plus margin: stop after the first task.
        short = RenderRequest(order.key, "generate", "token-1", 3600, remaining_s=lambda: 10.0)
        with pytest.raises(StepRetryable, match="started 1 render job"):
            starter.start(short)
        assert len(chili.tasks()) == 1

        started = starter.start(RenderRequest(order.key, "generate", "token-2", 3600))

        assert started.jobs == 2 and len(chili.tasks()) == 2
        assert table.get_order(order.key)["renderStartsDone"] == ["generate"]  # type: ignore[index]


def test_the_scheduled_run_rescues_jobs_whose_timers_were_lost(world: Any) -> None:
    from printflow_tools.localstack.handlers import load_handler

    from .world import context

    # The scheduled poller as the template declares it, with a 1 s staleness limit instead
    # of 300 s so that the test need not wait five minutes.
    safety_net = load_handler(
        world.resources.functions["PollerFunction"],
        {"EGRESS_ALLOWLIST": "127.0.0.1", "RESCUE_AFTER_SECONDS": "1"},
    )
    world.register_chili_storefront()
    world.post("shopify", "demo-shopify", "shopify-orders-create.json")
    world.wait(lambda: len(world.jobs(SHOPIFY_ORDER)) == 2, what="two render jobs")
    # Both timers are lost (say, the messages expired in a dead-letter queue).
    sqs = boto3.client("sqs")
    sqs.purge_queue(QueueUrl=world.resources.queues["RenderPollQueue"])
    assert safety_net({}, context("PollerFunction", 60))["poll"]["rescued"] == 0  # not stale yet

    time.sleep(3.5)  # the first poll was due 2 s after the start: now 1.5 s stale
    result = safety_net({}, context("PollerFunction", 60))

    assert result["poll"]["rescued"] == 2 and result["poll"]["polls"] == 2, result
    # ... and the jobs are back on the fast path: each has a timer again.
    totals = world.fire_poll_timers(until=lambda t: t.get("finished", 0) >= 2)
    assert totals["finished"] == 2


def test_an_unavailable_provider_at_start_is_retried_until_the_render_steps_timeout(
    local_aws: Any,
) -> None:
    import boto3

    from printflow.adapters.order_table import NewOrderRecord, OrderTable
    from printflow.adapters.render_job_table import RenderJobTable
    from printflow.adapters.webhook_secrets import WebhookSecrets
    from printflow.domain.order import RawBodyRef
    from printflow.domain.storefront import Platform
    from printflow.errors import StepFailed, StepRetryable
    from printflow.flows.validation import parse_flow_json
    from printflow.platforms.registry import normalise
    from printflow.render.start import RenderRequest, RenderStarter
    from printflow.render.wiring import provider_registry
    from printflow.settings import RenderSettings
    from printflow_tools.localstack.storefront_setup import (
        chili_provider,
        register_render_storefront,
    )
    from printflow_tools.localstack.template import REPO_ROOT
    from printflow_tools.sandboxes import ChiliSandbox
    from printflow_tools.webhook_events import payload

    table = OrderTable(boto3.client("dynamodb"), local_aws.table())
    order = normalise(Platform.SHOPIFY, "demo-shopify", payload("shopify-orders-create.json"), {})
    table.record_new_order(
        NewOrderRecord(order, RawBodyRef("b", "k"), "default", "2026-11-22T00:00:00Z", 0, 4)
    )
    settings = RenderSettings.from_env(
        local_aws.functions["GenerateProductionFilesFunction"].environment
        | {"EGRESS_ALLOWLIST": "127.0.0.1"}
    )
    now = [1_000.0]
    with ChiliSandbox() as chili:
        register_render_storefront(
            table,
            WebhookSecrets(boto3.client("secretsmanager"), "printflow"),
            boto3.client("secretsmanager"),
            storefront_id="demo-shopify",
            platform="shopify",
            webhook_secret="s" * 20,
            provider=chili_provider(chili, "printflow/providers/demo-shopify/chili"),
            client_id="chili-client",
            client_secret="chili-secret",
        )
        starter = RenderStarter(
            table,
            RenderJobTable(boto3.client("dynamodb"), local_aws.table(), settings.due_shards),
            provider_registry(settings, boto3.client("secretsmanager")),
            clock=lambda: now[0],
        )
        # Given CHILI answering 503 to every render start
        chili.unavailable_after_tasks = 0

        def attempt(run: str, at: float) -> None:
            now[0] = at
            starter.start(RenderRequest(order.key, "generate", f"token-{at}", 600, run_id=run))

        # When the step's attempts go on far beyond ten retries: still retryable ...
        for n in range(30):
            with pytest.raises(StepRetryable, match="until the render step's timeout"):
                attempt("run-1", 1_000.0 + n * 19.9)
        # ... until the step's timeout has passed since the first attempt met the outage
        with pytest.raises(StepFailed, match="still unavailable 601 s"):
            attempt("run-1", 1_601.0)
        # An order retry (another run of the step) is timed afresh
        with pytest.raises(StepRetryable):
            attempt("run-2", 1_700.0)
        # And when CHILI is back, the start goes on
        chili.unavailable_after_tasks = None
        now[0] = 1_750.0
        back = RenderRequest(order.key, "generate", "token-ok", 600, run_id="run-2")
        started = starter.start(back)
        assert started.jobs == 2

    # The compiled render step has the attempts to reach its timeout (10 retried ~6 min)
    flow = parse_flow_json((REPO_ROOT / "flows" / "default.json").read_text(encoding="utf-8"))
    (step,) = [s for s in flow.steps if s.waits_for_callback]
    policy = step.retry_policy
    delay, spanned = float(policy.interval_seconds), 0.0
    for _ in range(policy.max_attempts):
        spanned += min(delay, policy.max_delay_seconds) / 2  # FULL jitter: half on average
        delay *= policy.backoff_rate
    assert spanned >= 3600 > 6 * 60


def test_an_aws_timeout_in_the_render_step_is_retried_not_an_order_failure(world: Any) -> None:
    """The 1,000-order fault run failed 7 orders with ReadTimeoutError: the step's Lambda
    reported botocore's class name, which the flow's Retry did not name, so its Catch failed
    the order. An AWS outage is now StepRetryable and the step's retry finishes the order."""
    from botocore.exceptions import ReadTimeoutError

    from printflow.adapters import aws
    from printflow.adapters.render_job_table import JOB_SK_PREFIX

    from .test_order_flow_end_to_end import run_to_completion

    dynamodb = aws.client("dynamodb")
    timed_out: list[str] = []

    def time_out_the_first_job_write(params: dict[str, Any], **_: Any) -> None:
        if not timed_out and JOB_SK_PREFIX.encode() in params.get("body", b""):
            timed_out.append("PutItem")
            raise ReadTimeoutError(endpoint_url="http://127.0.0.1/")

    world.register_chili_storefront()
    dynamodb.meta.events.register("before-call.dynamodb.PutItem", time_out_the_first_job_write)
    try:
        world.post("shopify", "demo-shopify", "shopify-orders-create.json")
        jobs = world.wait(
            lambda: len(world.jobs(SHOPIFY_ORDER)) == 2 and world.jobs(SHOPIFY_ORDER),
            what="both render jobs, after the step's retry",
        )
    finally:
        dynamodb.meta.events.unregister(
            "before-call.dynamodb.PutItem", time_out_the_first_job_write
        )

    assert timed_out == ["PutItem"]
    assert len({j["taskToken"] for j in jobs}) == 1  # recorded by the retry
    assert run_to_completion(world, SHOPIFY_ORDER)["status"] == "SUCCEEDED"
    assert world.order(SHOPIFY_ORDER)["status"] == "Success"
