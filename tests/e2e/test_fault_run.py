"""The fault run, short: 50 orders through the local stack under injected faults.

The same code as ``bench/fault_run.py`` (which runs it at 200-1,000 orders and prints the
figures); here only correctness is asserted, never a time.
"""

from __future__ import annotations

import importlib.util
from types import ModuleType

import pytest

from printflow_tools.localstack.template import REPO_ROOT

pytestmark = pytest.mark.e2e


def fault_run() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fault_run", REPO_ROOT / "bench" / "fault_run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fifty_orders_under_faults_are_all_accounted_for() -> None:
    bench = fault_run()

    outcome = bench.run(50, pause_s=5.0, drain_timeout_s=240.0, seed=15)

    result, details = outcome["result"], outcome["details"]
    assert result["acknowledged"] == 50
    assert details["unfinished"] == [] and result["lost"] == 0
    assert details["unexpected"] == [] and result["unexpected_outcomes"] == 0
    for key in bench.CORRECTNESS_KEYS:
        assert result[key] == 0, (key, result, details)
    assert details["outcomes"] == {"Success": 45, "Failed": 5}
