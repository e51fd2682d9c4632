"""The template's alarm topic, alarms and dashboard on the local stack (moto supports all three).

Created from ``template.yaml`` unchanged, after the other resources, so every alarm's
dimensions and the dashboard's ARNs resolve to the local names. Conditions (the optional
email subscription) are evaluated from the parameters.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from printflow_tools.localstack.template import LOCAL_ACCOUNT, LOCAL_REGION, Resolver

PREFIX = "printflow-local"
MONITORING_TYPES = (
    "AWS::SNS::Topic",
    "AWS::SNS::Subscription",
    "AWS::CloudWatch::Alarm",
    "AWS::CloudWatch::Dashboard",
)
_ALARM_FIELDS = (
    "AlarmDescription",
    "Namespace",
    "MetricName",
    "Dimensions",
    "Statistic",
    "ExtendedStatistic",
    "Period",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
    "AlarmActions",
    "OKActions",
    "InsufficientDataActions",
    "Metrics",
)
_INTEGERS = ("Period", "EvaluationPeriods", "DatapointsToAlarm")


def name_monitoring_resource(logical_id: str, kind: str) -> tuple[str, str] | None:
    """(Ref value, ARN) of a monitoring resource, or None for other types."""
    if kind == "AWS::SNS::Topic":
        arn = f"arn:aws:sns:{LOCAL_REGION}:{LOCAL_ACCOUNT}:{PREFIX}-{logical_id}"
        return arn, arn  # Ref of a topic is its ARN
    if kind == "AWS::CloudWatch::Alarm":
        name = f"{PREFIX}-{logical_id}"
        return name, f"arn:aws:cloudwatch:{LOCAL_REGION}:{LOCAL_ACCOUNT}:alarm:{name}"
    if kind == "AWS::CloudWatch::Dashboard":
        name = f"{PREFIX}-{logical_id}"
        return name, f"arn:aws:cloudwatch::{LOCAL_ACCOUNT}:dashboard/{name}"
    return None


def condition_holds(template: dict[str, Any], resolver: Resolver, name: str) -> bool:
    """Evaluate a template condition (Fn::Equals, Fn::Not, Fn::And, Fn::Or, Condition)."""

    def evaluate(expression: Any) -> bool:
        if isinstance(expression, dict) and len(expression) == 1:
            ((key, arg),) = expression.items()
            if key == "Fn::Equals":
                return str(resolver.resolve(arg[0])) == str(resolver.resolve(arg[1]))
            if key == "Fn::Not":
                return not evaluate(arg[0])
            if key == "Fn::And":
                return all(evaluate(a) for a in arg)
            if key == "Fn::Or":
                return any(evaluate(a) for a in arg)
            if key == "Condition":
                return evaluate(template["Conditions"][arg])
        raise ValueError(f"template: condition {name!r} cannot be evaluated locally")

    return evaluate((template.get("Conditions") or {})[name])


def create_monitoring(
    client: Callable[[str], Any], template: dict[str, Any], resolver: Resolver
) -> dict[str, str]:
    """Create the topic(s), subscriptions, alarms and dashboards; return logical id -> name."""
    created: dict[str, str] = {}
    resources = template.get("Resources") or {}
    sns, cloudwatch = client("sns"), client("cloudwatch")
    ordered = sorted(
        resources.items(), key=lambda item: MONITORING_TYPES.index(item[1].get("Type"))
        if item[1].get("Type") in MONITORING_TYPES else len(MONITORING_TYPES),
    )  # fmt: skip
    for logical_id, resource in ordered:
        kind = resource.get("Type")
        if kind not in MONITORING_TYPES:
            continue
        condition = resource.get("Condition")
        if condition and not condition_holds(template, resolver, condition):
            continue
        props = resolver.resolve(resource.get("Properties") or {})
        if kind == "AWS::SNS::Topic":
            sns.create_topic(Name=f"{PREFIX}-{logical_id}")
        elif kind == "AWS::SNS::Subscription":
            sns.subscribe(
                TopicArn=props["TopicArn"], Protocol=props["Protocol"], Endpoint=props["Endpoint"]
            )
        elif kind == "AWS::CloudWatch::Alarm":
            request = {k: props[k] for k in _ALARM_FIELDS if k in props}
            for name in _INTEGERS:
                if name in request:
                    request[name] = int(request[name])
            if "Threshold" in request:
                request["Threshold"] = float(request["Threshold"])
            for query in request.get("Metrics", []):
                stat = query.get("MetricStat")
                if stat:
                    stat["Period"] = int(stat["Period"])
            cloudwatch.put_metric_alarm(AlarmName=resolver.physical[logical_id], **request)
        else:
            body = props["DashboardBody"]
            json.loads(body)  # a broken body fails here, as CloudFormation would refuse it
            cloudwatch.put_dashboard(
                DashboardName=resolver.physical[logical_id], DashboardBody=body
            )
        created[logical_id] = resolver.physical.get(logical_id, logical_id)
    return created
