"""The operations alarms in template.yaml cover every function and reach the dashboard."""

from __future__ import annotations

from typing import Any

from printflow_tools.localstack.template import load_template

TEMPLATE: dict[str, Any] = load_template()
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]


def alarms() -> dict[str, dict[str, Any]]:
    return {
        name: resource["Properties"]
        for name, resource in RESOURCES.items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    }


def test_every_function_has_an_errors_and_a_throttles_alarm() -> None:
    functions = [n for n, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::Function"]
    watched = {
        (a["Dimensions"][0]["Value"]["Ref"], a["MetricName"])
        for a in alarms().values()
        if a.get("Namespace") == "AWS/Lambda"
    }
    assert "ReconcileFunction" in functions
    missing = [
        (name, metric)
        for name in functions
        for metric in ("Errors", "Throttles")
        if (name, metric) not in watched
    ]
    assert missing == []


def test_orders_recovered_by_reconciliation_raise_an_alarm() -> None:
    alarm = alarms()["OrdersRecoveredAlarm"]
    # the metric the reconciler sends every run (printflow.reconcile.service)
    assert (alarm["Namespace"], alarm["MetricName"]) == ("PrintFlow", "OrdersRecovered")
    # its threshold is a parameter (as for every alarm) whose default is one recovered order
    assert alarm["Threshold"] == {"Ref": "OrdersRecoveredThreshold"}
    assert TEMPLATE["Parameters"]["OrdersRecoveredThreshold"]["Default"] == 1
    assert alarm["ComparisonOperator"].startswith("GreaterThanOrEqual")
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_every_alarm_and_the_recovered_orders_are_on_the_dashboard() -> None:
    body = RESOURCES["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    assert [name for name in alarms() if f"${{{name}.Arn}}" not in body] == []
    assert '["PrintFlow","OrdersRecovered"' in body
