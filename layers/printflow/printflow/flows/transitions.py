"""Counting the state transitions of one execution: the unit Step Functions Standard bills.

Counted from ``GetExecutionHistory`` events:

- every ``*StateEntered`` event (Task, Pass, Choice, Fail, Succeed, ...) is one transition;
- every retry is one more (AWS bills retries as transitions): within one state entry, each
  ``TaskScheduled`` / ``LambdaFunctionScheduled`` / ``ActivityScheduled`` after the first.

``ExecutionStarted`` / ``ExecutionSucceeded`` and the task's own events (``TaskStarted``,
``TaskSubmitted``, ``TaskSucceeded``, ...) are not transitions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

_ATTEMPT_EVENTS = frozenset({"TaskScheduled", "LambdaFunctionScheduled", "ActivityScheduled"})


def state_transitions(events: Iterable[Mapping[str, Any]]) -> int:
    """Billable state transitions in an execution history (events in order)."""
    transitions = 0
    attempts_in_state = 0
    for event in events:
        event_type = str(event["type"])
        if event_type.endswith("StateEntered"):
            transitions += 1
            attempts_in_state = 0
        elif event_type in _ATTEMPT_EVENTS:
            attempts_in_state += 1
            if attempts_in_state > 1:
                transitions += 1
    return transitions


def states_entered(events: Iterable[Mapping[str, Any]]) -> list[str]:
    """Names of the states entered, in order (handy to assert the path an execution took)."""
    names: list[str] = []
    for event in events:
        if str(event["type"]).endswith("StateEntered"):
            names.append(str(event["stateEnteredEventDetails"]["name"]))
    return names
