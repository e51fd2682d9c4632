"""The retry state machine: the same flow, entered at any step (``printflow orders retry``).

A failed order cannot run again in its own state machine: execution names are
deterministic (a new start is refused) and a redrive resumes at the ``Fail`` state. Retries
therefore run in a second state machine compiled from the same flow: every state of
:func:`printflow.flows.compiler.compile_flow` unchanged, plus one ``Choice`` state, the
entry, that jumps to the step named in the execution input (``$.retry.fromStep``).

The normal path keeps its exact transition count (its state machine has no Choice state);
a retry costs one transition more than the steps it runs. Kept apart from the compiler so
that changes to the per-step shape need nothing here.
"""

from __future__ import annotations

from typing import Any

from printflow.flows.compiler import compile_flow, render_definition
from printflow.flows.model import OrderFlow

RETRY_ENTRY_STATE = "Retry from step"
UNKNOWN_STEP_STATE = "Unknown retry step"
UNKNOWN_STEP_ERROR = "RetryStepUnknown"
RETRY_FROM_PATH = "$.retry.fromStep"


def compile_retry_flow(flow: OrderFlow) -> dict[str, Any]:
    """The ASL of ``flow`` entered at ``$.retry.fromStep`` (any step id of the flow)."""
    definition = compile_flow(flow)
    states = definition["States"]
    entry = {
        RETRY_ENTRY_STATE: {
            "Type": "Choice",
            "Comment": "Retry of a failed order: start at the step the operator chose.",
            "Choices": [
                {"Variable": RETRY_FROM_PATH, "StringEquals": step.id, "Next": step.id}
                for step in flow.steps
            ],
            "Default": UNKNOWN_STEP_STATE,
        },
        UNKNOWN_STEP_STATE: {
            "Type": "Fail",
            "Error": UNKNOWN_STEP_ERROR,
            "Cause": "retry.fromStep names no step of this flow",
        },
    }
    return {
        **definition,
        "Comment": definition["Comment"] + " Retry entry: starts at $.retry.fromStep.",
        "StartAt": RETRY_ENTRY_STATE,
        "States": {**entry, **states},
    }


def compile_retry_flow_text(flow: OrderFlow) -> str:
    return render_definition(compile_retry_flow(flow))


def retry_steps(definition: dict[str, Any]) -> list[str]:
    """The step ids a retry state machine can start at (from its definition)."""
    entry = definition.get("States", {}).get(RETRY_ENTRY_STATE, {})
    return [str(choice["StringEquals"]) for choice in entry.get("Choices", [])]


def next_step(definition: dict[str, Any], step_id: str) -> str | None:
    """The step that runs after ``step_id`` succeeds (None: the flow ends there).

    Follows ``Next`` through the non-step states in between (status updates), so it holds
    whatever the compiler puts after a step's task.
    """
    steps = set(retry_steps(definition))
    states = definition.get("States", {})
    name = states.get(step_id, {}).get("Next")
    seen: set[str] = set()
    while isinstance(name, str) and name not in steps and name not in seen:
        seen.add(name)
        state = states.get(name, {})
        if state.get("Type") == "Fail":
            return None
        name = state.get("Next")
    return name if isinstance(name, str) and name in steps else None
