"""Render jobs made from the render work a provider started or found."""

from __future__ import annotations

from printflow.domain.order import OrderKey
from printflow.domain.render_job import JobKind, JobState, RenderJob
from printflow.providers.protocol import RenderWork, WorkKind

_KINDS = {
    WorkKind.OUTPUT_TASK: JobKind.TASK,
    WorkKind.PROJECT: JobKind.PROJECT,
    WorkKind.ORDER_PROJECTS: JobKind.DISCOVERY,
}


def job_id_for(work: RenderWork) -> str:
    """Stable ids: the same work always maps to the same job (idempotent re-creation)."""
    return f"{_KINDS[work.kind].value}-{work.reference}"


def job_for_work(
    work: RenderWork,
    order_key: OrderKey,
    task_token: str,
    step_id: str,
    *,
    created_at: float,
    deadline_at: float,
    due_at: float,
) -> RenderJob:
    return RenderJob(
        order_key=order_key,
        job_id=job_id_for(work),
        provider=work.provider.value,
        kind=_KINDS[work.kind],
        state=JobState.PENDING,
        task_token=task_token,
        step_id=step_id,
        ref=work.reference,
        line_item_id=work.line_item_id,
        recoveries=work.recovery_attempts,
        created_at=created_at,
        deadline_at=deadline_at,
        due_at=due_at,
        details={"work": work.to_document()},
    ).with_history(created_at, "created")
