"""GET /orders/{storefrontId}/{orderId} (IAM auth): the order's status, history and artifacts."""

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
from printflow.domain.order import OrderKey
from printflow.errors import ClientInputError, MethodNotAllowed, NotFound
from printflow.observability import logger, metrics
from printflow.order_status.wiring import build_order_status_reader
from printflow.settings import CoreSettings

SETTINGS = CoreSettings.from_env()
reader = ColdStart(lambda: build_order_status_reader(SETTINGS))


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        http = parse_http_event(event)
        if http.method != "GET":
            raise MethodNotAllowed(f"method {http.method} is not allowed; use GET", allow="GET")
        storefront_id = http.path_parameters.get("storefrontId", "")
        order_id = http.path_parameters.get("orderId", "")
        if not storefront_id or not order_id:
            raise NotFound("path must be /orders/{storefrontId}/{orderId}")
        view = reader().status_of(OrderKey(storefront_id, order_id))
    except ClientInputError as exc:
        return error_response(exc)
    except Exception:
        logger.exception("order status failed")
        return server_error_response()
    return json_response(200, view)
