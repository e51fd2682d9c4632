"""The fault run, short: 50 orders through the local stack under injected faults.

The same code as ``bench/fault_run.py`` (which runs it at 200-1,000 orders and prints the
figures); here only correctness is asserted, never a time. The same checks as the bench:
nothing lost, no duplicate execution, no partial object or open multipart upload, no email
or REST document twice, every order Success or Failed as it was meant to end.

To finish in about a minute and a half, the Customer's Canvas projects complete on their
first poll (the bench's take two, 60 s apart), and the scheduled safety net keeps the
template's 5 minutes: a crashed poll run's jobs must come back through their re-armed
timers, not through the rescue.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections import Counter
from types import ModuleType

import pytest

from printflow_tools.localstack.template import REPO_ROOT

pytestmark = pytest.mark.e2e


def fault_run() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fault_run", REPO_ROOT / "bench" / "fault_run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_fifty_orders_under_faults_are_all_accounted_for() -> None:
    bench = fault_run()

    # The drain limit is far above the expected minute and a half: a shared, loaded
    # machine may be slow, and this test judges correctness, not speed.
    outcome = bench.run(50, pause_s=5.0, drain_timeout_s=360.0, seed=15, canvas_polls=1)

    result, details = outcome["result"], outcome["details"]
    assert details["webhook_5xx"] == []  # a signed order never meets a server error
    assert result["acknowledged"] == 50, details["unacknowledged"]
    assert details["unfinished"] == [] and result["lost"] == 0
    assert details["unexpected"] == [] and result["unexpected_outcomes"] == 0
    assert result["emails_sent_twice"] == 0, "\n".join(details["emails_twice"])
    for key in bench.CORRECTNESS_KEYS:
        assert result[key] == 0, (key, result, details)
    planned = Counter(order.expect for order in bench.plan(50))
    assert details["outcomes"] == dict(planned)  # every order Success or Failed, as meant
    assert details["jobs_leased_by_the_crashed_run"] > 0  # the crash really happened
    print(json.dumps(result))  # the figures, for whoever runs it with -s
