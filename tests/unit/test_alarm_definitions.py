"""Every alarm tells on-call what to run first, and its threshold is a stack parameter."""

from __future__ import annotations

from typing import Any

import pytest

from printflow_tools.localstack.template import load_template, resources_of_type

TEMPLATE = load_template()
ALARMS = resources_of_type(TEMPLATE, "AWS::CloudWatch::Alarm")


def test_there_are_alarms_to_check() -> None:
    assert len(ALARMS) >= 20


@pytest.mark.parametrize("name", sorted(ALARMS))
def test_an_alarm_names_the_cli_command_to_run_first(name: str) -> None:
    description = ALARMS[name]["Properties"]["AlarmDescription"]
    assert "printflow " in description, f"{name}: say which printflow command to run first"


@pytest.mark.parametrize("name", sorted(ALARMS))
def test_an_alarm_takes_its_threshold_and_period_from_parameters(name: str) -> None:
    properties: dict[str, Any] = ALARMS[name]["Properties"]
    threshold = properties["Threshold"]
    assert isinstance(threshold, dict) and threshold.get("Ref") in TEMPLATE["Parameters"], name
    periods = [properties.get("Period")] if "Period" in properties else [
        m["MetricStat"]["Period"] for m in properties["Metrics"] if "MetricStat" in m
    ]  # fmt: skip
    assert periods and all(p == {"Ref": "AlarmPeriodSeconds"} for p in periods), name
