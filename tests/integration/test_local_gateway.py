"""The local HTTP API over real sockets: odd requests get API Gateway's answers, never a 501,
a dropped connection or a hang."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from printflow_tools.localstack.gateway import HttpApiGateway
from printflow_tools.localstack.resources import LocalResources

from .test_webhook import Context, storefronts  # noqa: F401 (fixture)

TIMEOUT_S = 5.0


@pytest.fixture
def gateway(
    local_aws: LocalResources,
    handler_of: Any,
    storefronts: None,  # noqa: F811
) -> Iterator[HttpApiGateway]:
    handlers: dict[str, Any] = {}

    def invoke(function: str, event: dict[str, Any]) -> Any:
        if function not in handlers:
            handlers[function] = handler_of(function)
        return handlers[function](event, Context())

    api = HttpApiGateway(local_aws.functions, invoke, port=0)
    api.start()
    yield api
    api.stop()


def exchange(api: HttpApiGateway, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``raw`` as is; read one whole response (the test fails on a hang or a drop)."""
    host, port = api.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=TIMEOUT_S) as conn:
        conn.sendall(raw)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            assert chunk, f"connection dropped before a response: {data!r}"
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in header_lines)}
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = conn.recv(65536)
            assert chunk, "connection dropped mid-body"
            body += chunk
    return int(status_line.split()[1]), headers, body


def request(
    method: bytes, path: bytes = b"/webhooks/shopify/demo-shopify", **headers: str
) -> bytes:
    lines = [method + b" " + path + b" HTTP/1.1", b"Host: 127.0.0.1"]
    lines += [f"{k.replace('_', '-')}: {v}".encode() for k, v in headers.items()]
    return b"\r\n".join(lines) + b"\r\n\r\n"


@pytest.mark.parametrize("method", [b"FOO", b"PROPFIND", b"TRACE", b"post", b"DELETE"])
def test_any_method_on_an_any_route_reaches_the_function_which_answers_405(
    gateway: HttpApiGateway, method: bytes
) -> None:
    status, _, body = exchange(gateway, request(method, Content_Length="0"))

    assert status == 405, body
    assert "use POST" in json.loads(body)["message"]


@pytest.mark.parametrize("method", [b"FOO", b"post", b"TRACE"])
def test_an_odd_method_on_a_get_route_is_not_found(gateway: HttpApiGateway, method: bytes) -> None:
    status, _, body = exchange(gateway, request(method, b"/orders/demo-shopify/1"))

    assert status == 404, body
    assert json.loads(body) == {"message": "Not Found"}


@pytest.mark.parametrize(
    "raw",
    [
        request(b"GET\x00"),
        request(b"PO(ST"),
        request(b"POST", Content_Length="abc"),
        request(b"POST", Content_Length="-5"),
        request(b"POST", Content_Length="1.5"),
        request(b"POST", Content_Length="\u00b2".encode().decode("latin-1")),
    ],
    ids=["nul-in-method", "not-a-token", "length-abc", "length-negative", "length-1.5", "length-2"],
)
def test_unframeable_requests_are_400_and_closed(gateway: HttpApiGateway, raw: bytes) -> None:
    status, headers, body = exchange(gateway, raw)

    assert status == 400, body
    assert json.loads(body) == {"message": "Bad Request"}
    assert headers.get("connection") == "close"


def test_a_normal_post_still_works_after_odd_requests(gateway: HttpApiGateway) -> None:
    exchange(gateway, request(b"FOO", Content_Length="0"))
    exchange(gateway, request(b"POST", Content_Length="abc"))

    status, _, body = exchange(gateway, request(b"POST", Content_Length="2") + b"{}")

    assert status == 401, body  # reached the function: no signature
