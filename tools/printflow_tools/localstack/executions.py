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
    threads to finish; return how many executions were stopped."""
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
    for thread in list(TMP_THREADS):
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
        if not thread.is_alive() and thread in TMP_THREADS:
            TMP_THREADS.remove(thread)
    return stopped
