"""The fault run, short: 50 orders through the local stack under injected faults.

The same code as ``bench/fault_run.py`` (which runs it at 200-1,000 orders and prints the
figures); here only correctness is asserted, never a time.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections import Counter
from types import ModuleType

import pytest

from printflow_tools.localstack.template import REPO_ROOT

# Not part of `make test` yet: on a quiet machine one Customer's Canvas order was still
# downloading when the 420 s drain ran out (issue 15 stays open for it), and the run shares
# in-process moto with the e2e stack that follows it. Run it with PRINTFLOW_E2E_FAULT_RUN=1.
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        os.environ.get("PRINTFLOW_E2E_FAULT_RUN") != "1",
        reason="the fault run is opt-in: set PRINTFLOW_E2E_FAULT_RUN=1",
    ),
]


def fault_run() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fault_run", REPO_ROOT / "bench" / "fault_run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_fifty_orders_under_faults_are_all_accounted_for() -> None:
    bench = fault_run()

    # Jobs whose timer fired while the crashed run held their lease wait for the safety-net
    # run's rescue: 300 s on AWS, 20 s here so that the test ends in minutes.
    outcome = bench.run(50, pause_s=5.0, drain_timeout_s=420.0, seed=15, rescue_after_s=20.0)

    result, details = outcome["result"], outcome["details"]
    assert result["acknowledged"] == 50
    assert details["unfinished"] == [] and result["lost"] == 0
    assert details["unexpected"] == [] and result["unexpected_outcomes"] == 0
    for key in bench.CORRECTNESS_KEYS:
        assert result[key] == 0, (key, result, details)
    planned = Counter(order.expect for order in bench.plan(50))
    assert details["outcomes"] == dict(planned)  # every order Success or Failed, as meant
    print(json.dumps(result))  # the figures, for whoever runs it with -s
