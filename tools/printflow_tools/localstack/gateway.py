"""An HTTP API (payload v2) on localhost, built from the functions' ``HttpApi`` events.

Requests become the events API Gateway would send; handler responses become HTTP. Routes are
read from the template: a new route appears here without being declared twice. IAM
authorisation is not evaluated locally (there are no IAM principals); the route still exists.

Odd requests are answered the way API Gateway answers them, never with ``http.server``'s
own 501 or a dropped connection, so local runs tell the truth:

- any syntactically valid method (``FOO``, ``PROPFIND``, ``TRACE``, lower-case ``post``) is
  routed: an ``ANY`` route hands it to the function (which answers 405 itself), a route of
  another method does not match (404);
- a method that is not an HTTP token (``GET\x00``), or a ``Content-Length`` that is not a
  non-negative integer (``abc``, ``-5``), is a 400 and the connection is closed (the body
  cannot be framed).
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote, urlsplit

from printflow_tools.localstack.template import FunctionSpec
from printflow_tools.loopback_http import LoopbackHTTPServer

Invoke = Callable[[str, dict[str, Any]], Any]
# The body limit of API Gateway HTTP APIs (the function enforces its own, lower, limit).
MAX_BODY_BYTES = 10 * 1024 * 1024
_TEXT_TYPES = ("application/json", "text/", "application/xml")
# RFC 9110 token characters: what a method may be made of.
_METHOD = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}$")
_CONTENT_LENGTH = re.compile(r"^[0-9]{1,19}$")


class _GatewayServer(LoopbackHTTPServer):
    """API Gateway accepts every connection a client opens: the socketserver default backlog
    (5) would drop connections of a burst of concurrent deliveries."""

    request_queue_size = 128


@dataclass(frozen=True)
class Route:
    method: str  # "ANY" or an HTTP method
    path: str  # "/webhooks/{platform}/{storefrontId}"
    function: str
    pattern: re.Pattern[str]

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"


def routes_of(functions: dict[str, FunctionSpec]) -> list[Route]:
    routes = []
    for spec in functions.values():
        for event in spec.events.values():
            if event.get("Type") != "HttpApi":
                continue
            props = event.get("Properties") or {}
            path = str(props["Path"])
            regex = re.sub(r"\\\{([A-Za-z0-9_]+)\\\}", r"(?P<\1>[^/]+)", re.escape(path))
            routes.append(
                Route(
                    str(props.get("Method", "ANY")).upper(),
                    path,
                    spec.logical_id,
                    re.compile(f"^{regex}$"),
                )
            )
    return routes


class HttpApiGateway:
    def __init__(
        self,
        functions: dict[str, FunctionSpec],
        invoke: Invoke,
        host: str = "127.0.0.1",
        port: int = 3000,
    ) -> None:
        self.routes = routes_of(functions)
        self._invoke = invoke
        self._server = _GatewayServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, daemon=True, name="http-api"
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The route for ``method`` and ``path``; like HTTP API, no route is a plain 404."""
        for route in self.routes:
            found = route.pattern.match(path)
            if found and route.method in ("ANY", method):
                return route, {k: unquote(v) for k, v in found.groupdict().items()}
        return None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return  # the functions log; the access log would only repeat them

            def handle_one_request(self) -> None:
                # http.server answers 501 for any method without a do_<METHOD>; API Gateway
                # routes every method, so every parsed request goes to the gateway.
                try:
                    self.raw_requestline = self.rfile.readline(65537)
                    if len(self.raw_requestline) > 65536:
                        self.send_error(414)
                        return
                    if not self.raw_requestline:
                        self.close_connection = True
                        return
                    if not self.parse_request():
                        return
                    gateway.serve(self)
                    self.wfile.flush()
                except TimeoutError:
                    self.close_connection = True

        return Handler

    def serve(self, request: BaseHTTPRequestHandler) -> None:
        url = urlsplit(request.path)
        declared = (request.headers.get("Content-Length") or "0").strip()
        if not _METHOD.match(request.command) or not _CONTENT_LENGTH.match(declared):
            request.close_connection = True
            self._reply(request, 400, {"message": "Bad Request"})
            return
        length = int(declared)
        if length > MAX_BODY_BYTES:
            request.close_connection = True  # the body stays unread
            self._reply(request, 413, {"message": "Request Entity Too Large"})
            return
        body = request.rfile.read(length) if length else b""
        matched = self.match(request.command, url.path)
        if matched is None:
            self._reply(request, 404, {"message": "Not Found"})
            return
        route, params = matched
        event = self._event(request, route, params, url.query, body)
        try:
            result = self._invoke(route.function, event)
        except Exception:
            self._reply(request, 500, {"message": "Internal Server Error"})
            return
        self._reply_lambda(request, result)

    @staticmethod
    def _event(
        request: BaseHTTPRequestHandler,
        route: Route,
        params: dict[str, str],
        query: str,
        body: bytes,
    ) -> dict[str, Any]:
        headers = {k.lower(): v for k, v in request.headers.items()}
        content_type = headers.get("content-type", "")
        is_text = any(content_type.startswith(t) for t in _TEXT_TYPES)
        try:
            text = body.decode("utf-8") if is_text else None
        except UnicodeDecodeError:
            text = None
        now = time.time()
        return {
            "version": "2.0",
            "routeKey": route.route_key,
            "rawPath": urlsplit(request.path).path,
            "rawQueryString": query,
            "headers": headers,
            "pathParameters": params,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "local",
                "domainName": headers.get("host", "127.0.0.1"),
                "http": {
                    "method": request.command,
                    "path": urlsplit(request.path).path,
                    "protocol": request.request_version,
                    "sourceIp": request.client_address[0],
                    "userAgent": headers.get("user-agent", ""),
                },
                "requestId": uuid.uuid4().hex,
                "routeKey": route.route_key,
                "stage": "$default",
                "timeEpoch": int(now * 1000),
            },
            "body": text if text is not None else base64.b64encode(body).decode(),
            "isBase64Encoded": text is None,
        }

    @staticmethod
    def _reply(request: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        if request.close_connection:
            request.send_header("Connection", "close")
        request.end_headers()
        request.wfile.write(data)

    @classmethod
    def _reply_lambda(cls, request: BaseHTTPRequestHandler, result: Any) -> None:
        if not isinstance(result, dict) or "statusCode" not in result:
            # HTTP API's rule for a bare payload: 200 with the JSON of the result
            result = {"statusCode": 200, "body": json.dumps(result)}
        body = result.get("body") or ""
        data = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
        request.send_response(int(result["statusCode"]))
        for name, value in (result.get("headers") or {}).items():
            if name.lower() != "content-length":
                request.send_header(name, str(value))
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(data)
