"""The sweep: start the flow of orders recorded but never started.

Intake answers 202 once the order is durable, even if starting its execution failed. Every
order keeps a sweep slot in the sparse ``DueIndex`` until someone confirms its execution
exists. The poller runs this sweep on every invocation: for each order past its slot time,
an existing execution (running or finished) just clears the slot; a missing one is started
under the same deterministic name (so overlapping sweeps cannot run an order twice). A crash
mid-sweep leaves the remaining slots in the index for the next run; an order whose start
failed is postponed by ``RETRY_AFTER_S``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from printflow.adapters.order_flows import OrderFlowStarter
from printflow.adapters.order_table import OrderTable
from printflow.observability import logger

RETRY_AFTER_S = 120.0


@dataclass
class SweepReport:
    checked: int = 0
    started: int = 0
    already_started: int = 0
    deferred: int = 0

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class StuckOrderSweep:
    def __init__(
        self,
        table: OrderTable,
        flows: OrderFlowStarter,
        *,
        due_shards: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._table = table
        self._flows = flows
        self._due_shards = due_shards
        self._clock = clock

    def run(self, limit: int = 100) -> SweepReport:
        report = SweepReport()
        now = self._clock()
        for shard in range(self._due_shards):
            for key in self._table.sweep_candidates(shard, now, limit):
                report.checked += 1
                item = self._table.get_order(key, full_order=False)
                if item is None:
                    continue
                flow = str(item.get("flow", "default"))
                try:
                    if self._flows.state_machine_for(flow) is None:
                        raise KeyError(f"no state machine for flow {flow!r}")
                    if self._flows.execution_exists(flow, key):
                        report.already_started += 1
                    else:
                        self._flows.start(flow, key)
                        report.started += 1
                        logger.info("stuck order started", extra={"order_key": str(key)})
                    self._table.leave_sweep(key)
                except Exception:
                    logger.exception("sweep could not start order", extra={"order_key": str(key)})
                    self._table.postpone_sweep(key, now + RETRY_AFTER_S)
                    report.deferred += 1
        return report
