"""What both provider sandboxes share: a threaded loopback HTTP server, routing, behaviour
knobs, a request log, a controllable clock and a client-credentials token issuer.

Why the standard library's ``ThreadingHTTPServer``: the sandboxes must need no new dependency,
and one thread per connection makes artificial latency a plain ``time.sleep`` that blocks only
its own request. ``HTTP/1.1`` with an exact ``Content-Length`` on every response keeps
connections alive, so a client polling thousands of times reuses its pool.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import math
import random
import re
import secrets
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar, Self
from urllib.parse import parse_qs, unquote, urlsplit

from printflow_tools.loopback_http import LoopbackHTTPServer

Clock = Callable[[], float]


class ManualClock:
    """A clock tests move by hand; pass the same one to a sandbox and to the code under test."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


@dataclass
class Behaviour:
    """Knobs every sandbox honours; attributes may be changed while the server runs.

    Injected failures (``failure_rate``, ``throttle_rate``) hit API and download routes, never
    the token endpoints, and are drawn from an RNG seeded with ``seed`` so a run repeats.
    The default failure status is 503, not 500: on CHILI a 500 means "the task failed".
    """

    latency_s: float = 0.0
    failure_rate: float = 0.0
    failure_status: int = 503
    throttle_rate: float = 0.0
    retry_after_s: int = 1
    # Streamed bodies (file downloads) cut after their first chunk, the connection reset.
    reset_rate: float = 0.0
    file_size: int = 64 * 1024
    content_type: str | None = None
    seed: int = 0


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    method: str
    path: str
    query: str
    status: int
    at: float


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Message
    body: bytes
    params: dict[str, str]

    def json(self) -> Any:
        """The body as JSON; :class:`HttpError` 400 when it is not."""
        try:
            return json.loads(self.body or b"null")
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise HttpError(problem(400, "Bad Request", "request body is not valid JSON")) from None

    def form(self) -> dict[str, str]:
        parsed = parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)
        return {k: v[0] for k, v in parsed.items()}

    @property
    def content_type(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()

    @property
    def bearer_token(self) -> str | None:
        value = self.headers.get("Authorization") or ""
        scheme, _, token = value.partition(" ")
        return (token.strip() or None) if scheme.lower() == "bearer" else None


@dataclass(slots=True)
class Response:
    """A response; ``body`` may be an iterable of chunks when ``content_length`` is given."""

    status: int
    body: bytes | Iterable[bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_length: int | None = None


class HttpError(Exception):
    """Raised by a route to answer with ``response`` at once."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def json_response(status: int, doc: Any, headers: Mapping[str, str] | None = None) -> Response:
    body = json.dumps(doc, separators=(",", ":")).encode()
    return Response(status, body, {"Content-Type": "application/json", **(headers or {})})


def problem(
    status: int, title: str, detail: str, headers: Mapping[str, str] | None = None
) -> Response:
    """An RFC 7807 problem-details response, the error shape both real APIs use."""
    doc = {
        "type": f"https://httpstatuses.io/{status}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    response = json_response(status, doc, headers)
    response.headers["Content-Type"] = "application/problem+json"
    return response


RouteHandler = Callable[[Request], Response]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: RouteHandler
    inject: bool


class _Server(LoopbackHTTPServer):
    daemon_threads = True
    # Idle keep-alive connections must not hold up stop(): connections are closed by hand.
    block_on_close = False
    # ~100 clients may connect at once; the default backlog of 5 would refuse some.
    request_queue_size = 512
    allow_reuse_address = True

    def __init__(self, sandbox: SandboxServer) -> None:
        self.sandbox = sandbox
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: with Nagle on, a keep-alive client waits
    # for its delayed ACK (~40 ms) on every response.
    disable_nagle_algorithm = True
    # Idle keep-alive connections are dropped after this many seconds.
    timeout = 30
    server: _Server

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default per-request stderr line; the sandbox keeps its own log."""

    def _dispatch(self) -> None:
        sandbox = self.server.sandbox
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self._send(Response(411, b"", {}))
            self.close_connection = True
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        response = sandbox.handle(self.command, split.path, query, self.headers, body)
        # Logged before it is sent: a client that has its answer must find it in the log.
        sandbox.log(self.command, split.path, split.query, response.status)
        self._send(response)

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if isinstance(response.body, bytes):
            chunks: Iterable[bytes] = (response.body,)
            length = len(response.body)
        else:
            chunks = response.body
            length = response.content_length or 0
        if response.status not in (204, 304):
            self.send_header("Content-Length", str(length))
        self.end_headers()
        if response.status in (204, 304):
            return
        reset = not isinstance(response.body, bytes) and (
            self.server.sandbox.behaviour.reset_rate > 0
            and self.server.sandbox.chance(self.server.sandbox.behaviour.reset_rate)
        )
        try:
            for chunk in chunks:
                self.wfile.write(chunk)
                if reset:
                    self._reset_mid_stream()
                    return
        except (BrokenPipeError, ConnectionResetError):
            # The client went away mid-body (e.g. a test read only the head): drop it.
            self.close_connection = True

    def _reset_mid_stream(self) -> None:
        """Drop the connection with a TCP reset, as a proxy or a flaky network would."""
        self.wfile.flush()
        # SO_LINGER 0: close() sends RST instead of FIN, so the client sees a reset mid-body.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True


class SandboxServer:
    """A loopback HTTP server with routes, knobs and a request log.

    ``start()``/``stop()`` or ``with Sandbox(...) as sandbox:``; ``base_url`` is known once
    started (port 0: the OS picks a free port).
    """

    name: ClassVar[str] = "sandbox"

    def __init__(self, *, behaviour: Behaviour | None = None, clock: Clock = time.time) -> None:
        self.behaviour = behaviour or Behaviour()
        self.clock = clock
        self._routes: list[Route] = []
        self._log: list[LoggedRequest] = []
        self._lock = threading.RLock()
        self._rng = random.Random(self.behaviour.seed)
        self._ids = _id_stream(self.name, self.behaviour.seed)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._address: tuple[str, int] | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            return self
        self._server = _Server(self)
        host, port = self._server.server_address[:2]
        self._address = (str(host), int(port))
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{self.name}-sandbox",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with server.connections_lock:
            open_connections = list(server.connections)
        for connection in open_connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:{port}``; still readable after ``stop()``, for assertions."""
        if self._address is None:
            raise RuntimeError(f"the {self.name} sandbox was never started")
        host, port = self._address
        return f"http://{host}:{port}"

    @property
    def host(self) -> str:
        """The host part of ``base_url``, for ``allow_insecure_hosts`` lists."""
        return "127.0.0.1"

    # -- routing --------------------------------------------------------------------------

    def route(
        self, method: str, pattern: str, handler: RouteHandler, *, inject: bool = True
    ) -> None:
        """Register ``handler`` for ``method`` and a path pattern with ``{name}`` segments."""
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)
        self._routes.append(Route(method, re.compile(f"^{regex}$"), handler, inject))

    def handle(
        self, method: str, path: str, query: dict[str, str], headers: Message, body: bytes
    ) -> Response:
        """Answer one request (runs on the connection's own thread)."""
        if self.behaviour.latency_s > 0:
            time.sleep(self.behaviour.latency_s)
        allowed: list[str] = []
        for route in self._routes:
            match = route.pattern.match(path)
            if not match:
                continue
            if route.method != method:
                allowed.append(route.method)
                continue
            if route.inject:
                injected = self._injected_failure()
                if injected is not None:
                    return injected
            params = {k: unquote(v) for k, v in match.groupdict().items()}
            request = Request(method, path, query, headers, body, params)
            try:
                return route.handler(request)
            except HttpError as exc:
                return exc.response
            except Exception as exc:  # a sandbox bug must still answer, and visibly
                return problem(500, "Sandbox Error", f"{type(exc).__name__}: {exc}")
        if allowed:
            return problem(
                405, "Method Not Allowed", f"{method} {path}", {"Allow": ", ".join(allowed)}
            )
        return problem(404, "Not Found", f"no route for {path}")

    def _injected_failure(self) -> Response | None:
        knobs = self.behaviour
        if knobs.throttle_rate > 0 and self.chance(knobs.throttle_rate):
            return problem(
                429,
                "Too Many Requests",
                "rate limit exceeded",
                {"Retry-After": str(knobs.retry_after_s)},
            )
        if knobs.failure_rate > 0 and self.chance(knobs.failure_rate):
            status = knobs.failure_status
            title = (
                HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
            )
            return problem(status, title, "injected failure")
        return None

    # -- shared helpers -------------------------------------------------------------------

    def chance(self, probability: float) -> bool:
        """True with ``probability``, from the sandbox's seeded RNG (thread-safe)."""
        with self._lock:
            return self._rng.random() < probability

    def random_uuid(self) -> str:
        """A UUID-shaped id from the seeded RNG, so ids repeat between runs.

        Each kind of sandbox draws from its own stream: with one seed shared by all, a
        CHILI task id and a Customer's Canvas artifact id would otherwise be the same.
        """
        with self._lock:
            value = self._ids.getrandbits(128)
        hex_ = f"{value:032x}"
        return f"{hex_[:8]}-{hex_[8:12]}-4{hex_[13:16]}-a{hex_[17:20]}-{hex_[20:]}"

    def reseed(self, seed: int) -> None:
        with self._lock:
            self.behaviour.seed = seed
            self._rng = random.Random(seed)
            self._ids = _id_stream(self.name, seed)

    def log(self, method: str, path: str, query: str, status: int) -> None:
        entry = LoggedRequest(method, path, query, status, self.clock())
        with self._lock:
            self._log.append(entry)

    @property
    def requests(self) -> list[LoggedRequest]:
        """Every request answered so far, in order (a copy)."""
        with self._lock:
            return list(self._log)

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()


def _id_stream(name: str, seed: int) -> random.Random:
    return random.Random(f"{name}:{seed}")


# -- OAuth2 client credentials -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IssuedToken:
    client_id: str
    scope: str
    expires_at: float


class TokenIssuer:
    """Issues and checks opaque bearer tokens for one client (both sandboxes use it).

    ``reissue_within_s`` models an endpoint that caches its tokens (CHILI's): it answers
    with the same token, and its remaining ``expires_in``, until that token has no more
    than ``reissue_within_s`` left. ``None`` issues a fresh token on every request.
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        ttl_s: int,
        clock: Clock,
        *,
        reissue_within_s: float | None = None,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.ttl_s = ttl_s
        self.reissue_within_s = reissue_within_s
        self._clock = clock
        self._tokens: dict[str, IssuedToken] = {}
        self._cached: dict[str, str] = {}  # scope -> the token the endpoint hands out
        self._refused: set[str] = set()
        self._lock = threading.Lock()
        self.issued = 0

    def authenticate(self, request: Request, fields: Mapping[str, Any]) -> None:
        """Check the client's credentials (body fields or HTTP Basic); 401 when wrong."""
        client_id, client_secret = fields.get("client_id"), fields.get("client_secret")
        basic = request.headers.get("Authorization") or ""
        if basic.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(basic[6:].strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            user, _, password = decoded.partition(":")
            client_id, client_secret = unquote(user), unquote(password)
        if client_id != self.client_id or client_secret != self.client_secret:
            raise HttpError(
                json_response(
                    401,
                    {"error": "invalid_client", "error_description": "Unauthorized"},
                    {"WWW-Authenticate": 'Basic realm="token"'},
                )
            )

    def issue(self, scope: str) -> dict[str, Any]:
        now = self._clock()
        with self._lock:
            token = self._cached.get(scope)
            issued = self._tokens.get(token) if token else None
            if (
                token is None
                or issued is None
                or self.reissue_within_s is None
                or issued.expires_at - now <= self.reissue_within_s
            ):
                token = secrets.token_urlsafe(24)
                issued = IssuedToken(self.client_id, scope, now + self.ttl_s)
                self._tokens[token] = issued
                self._cached[scope] = token
                self.issued += 1
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": max(math.ceil(issued.expires_at - now), 1),
            "scope": scope,
        }

    def refuse(self, token: str) -> None:
        """The API answers 401 to ``token`` while the endpoint still hands it out: a token
        that is valid but not for this environment, which no amount of re-asking fixes."""
        with self._lock:
            self._refused.add(token)

    def require(self, request: Request) -> None:
        """401 unless the request carries a known, unexpired bearer token."""
        token = request.bearer_token
        with self._lock:
            issued = self._tokens.get(token) if token else None
            refused = token in self._refused
        if issued is None or refused or issued.expires_at <= self._clock():
            error = "invalid_token" if token else "invalid_request"
            raise HttpError(
                problem(
                    401,
                    "Unauthorized",
                    "missing, unknown or expired bearer token",
                    {"WWW-Authenticate": f'Bearer error="{error}"'},
                )
            )

    def expire_all(self) -> None:
        """Make every token issued so far expired (clients must fetch a new one)."""
        with self._lock:
            self._tokens = {
                t: IssuedToken(i.client_id, i.scope, float("-inf")) for t, i in self._tokens.items()
            }
