"""Ending the Step Functions executions a local run leaves behind.

moto runs each execution in a daemon thread of this process, and its engine calls Lambda
through a client it creates per call. An execution still running when its test or local
stack ends therefore goes on in the *next* one: its steps are dispatched to the next
test's handlers, its writes land in the next moto backend (tests share order keys,
execution names and so run ids), and its emails are counted by the next run. On AWS an
account's executions never outlive it like that, so every ending stops them first.
"""

from __future__ import annotations

import time
from typing import Any


def end_every_execution(sfn: Any, limit_s: float = 10.0) -> int:
    """Stop every RUNNING execution and wait (up to ``limit_s``) for moto's execution
    threads to finish; return how many executions were stopped.

    The threads are awaited together, so one that never ends (an execution of a backend an
    earlier test reset, which no API can reach any more) costs ``limit_s`` once, not per
    thread. A stopped execution's task-token wait ends at once only with the correction in
    :mod:`.fidelity` (moto alone keeps it until the task's timeout).
    """
    from moto.stepfunctions.parser.utils import TMP_THREADS

    stopped = 0
    for page in sfn.get_paginator("list_state_machines").paginate():
        for machine in page["stateMachines"]:
            executions = sfn.get_paginator("list_executions").paginate(
                stateMachineArn=machine["stateMachineArn"], statusFilter="RUNNING"
            )
            for listing in executions:
                for execution in listing["executions"]:
                    sfn.stop_execution(executionArn=execution["executionArn"])
                    stopped += 1
    deadline = time.monotonic() + limit_s
    while True:
        for thread in [t for t in TMP_THREADS if not t.is_alive()]:
            TMP_THREADS.remove(thread)
        if not TMP_THREADS or time.monotonic() >= deadline:
            return stopped
        time.sleep(0.02)
