"""POST /webhooks/{platform}/{storefrontId}: verify, record, start the order's flow."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from printflow.adapters.http_api import (
    error_response,
    json_response,
    parse_http_event,
    server_error_response,
)
from printflow.cold_start import ColdStart
from printflow.errors import ClientInputError
from printflow.intake.service import IntakeUnavailable, WebhookRequest
from printflow.intake.wiring import build_intake_service
from printflow.observability import logger, metrics
from printflow.settings import IntakeSettings

SETTINGS = IntakeSettings.from_env()
# Built on the first request, not at import (see printflow.cold_start).
service = ColdStart(lambda: build_intake_service(SETTINGS))


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        http = parse_http_event(event)
        outcome = service().receive(
            WebhookRequest(
                method=http.method,
                platform=http.path_parameters.get("platform", ""),
                storefront_id=http.path_parameters.get("storefrontId", ""),
                headers=http.headers,
                body=http.body,
            )
        )
    except ClientInputError as exc:
        logger.info("webhook rejected", extra={"status": exc.status, "reason": exc.code})
        return error_response(exc)
    except IntakeUnavailable as exc:
        return server_error_response(503, str(exc))
    except Exception:
        logger.exception("webhook failed")
        return server_error_response()
    return json_response(outcome.status, outcome.body)
