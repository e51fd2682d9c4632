from __future__ import annotations

import base64
import json

import pytest

from printflow.adapters.http_api import error_response, parse_http_event
from printflow.errors import MalformedPayload, MethodNotAllowed, NotFound
from printflow_tools.webhook_events import webhook_event


def test_base64_bodies_are_decoded_exactly() -> None:
    raw = b"webhook_id=17\xff"
    event = webhook_event("woocommerce", "w", raw, {}, base64_body=True)
    assert event["body"] == base64.b64encode(raw).decode()
    request = parse_http_event(event)
    assert request.body == raw
    assert request.path_parameters == {"platform": "woocommerce", "storefrontId": "w"}


def test_invalid_base64_is_a_client_error() -> None:
    event = webhook_event("shopify", "s", b"{}", {})
    event["body"], event["isBase64Encoded"] = "%%%", True
    with pytest.raises(MalformedPayload, match="not valid base64"):
        parse_http_event(event)


def test_headers_are_lower_cased() -> None:
    request = parse_http_event(webhook_event("shopify", "s", b"{}", {"X-Shopify-Topic": "t"}))
    assert request.headers["x-shopify-topic"] == "t"


def test_error_responses_say_what_was_wrong() -> None:
    response = error_response(NotFound("unknown storefront 'x'"))
    assert response["statusCode"] == 404
    assert json.loads(response["body"]) == {
        "error": "not_found",
        "message": "unknown storefront 'x'",
    }
    assert error_response(MethodNotAllowed("no", allow="GET"))["headers"]["allow"] == "GET"
