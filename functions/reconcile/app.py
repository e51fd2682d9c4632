"""Scheduled every few minutes: pull the due storefronts' orders the webhook missed."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from printflow.cold_start import ColdStart
from printflow.observability import logger, metrics, tracer
from printflow.reconcile.wiring import build_reconciler
from printflow.settings import ReconcileSettings

SETTINGS = ReconcileSettings.from_env()
reconciler = ColdStart(lambda: build_reconciler(SETTINGS))


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
@tracer().capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = reconciler().run(lambda: context.get_remaining_time_in_millis() / 1000)
    if report.pulls:
        logger.info("reconciliation run", extra=report.to_dict())
    return report.to_dict()
