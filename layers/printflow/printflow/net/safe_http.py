"""httpx clients that only ever connect to addresses the SSRF guard checked.

:class:`PinnedTransport` runs :meth:`EgressGuard.check` on every request and rewrites the
request so the socket dials the checked IP: the URL's host becomes the address, the ``Host``
header keeps the original name, and for https the ``sni_hostname`` extension makes httpcore
send the original name as SNI *and* verify the certificate against it. There is no second
DNS lookup between check and connect, so a rebinding resolver gains nothing.

Each original ``scheme://host:port`` gets its own connection pool: a pooled TLS connection
verified for one hostname is never reused for another name that resolves to the same IP.

Redirects are never followed by these clients; code that wants to follow one checks the
``Location`` with :func:`printflow.net.ssrf.check_url` and sends a new request.
"""

from __future__ import annotations

import functools
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping

import anyio.to_thread
import httpx

from printflow.net.ssrf import DEFAULT_PORTS, CheckedTarget, EgressGuard

Verify = ssl.SSLContext | bool
_PoolKey = tuple[str, str, int]
MAX_POOLS = 32


@functools.cache
def _default_tls() -> ssl.SSLContext:
    """httpx's default verifying context, made once per process.

    httpx builds one (loading the whole CA bundle, ~20 ms of CPU) for every transport, and
    the poller opens a transport per provider origin per client per batch: profiled, that
    was a visible share of a poll batch's CPU. An ``SSLContext`` is safe to share.
    """
    return httpx.create_ssl_context(verify=True, trust_env=False)


def _tls(verify: Verify) -> Verify:
    return _default_tls() if verify is True else verify


def pin_request(request: httpx.Request, target: CheckedTarget) -> httpx.Request:
    """``request`` aimed at ``target.address``, still naming (and verifying) the original host.

    The request's own path and query are kept: ``target`` may come from the cache, checked
    for an earlier request to the same origin. The request is changed in place: the client
    built it for this one send, and rebuilding it costs more CPU than the poll itself saves.
    """
    if target.scheme == "https" and not target.host_is_ip:
        request.extensions = {**request.extensions, "sni_hostname": target.host}
    if "host" not in request.headers:
        request.headers["Host"] = request.url.netloc.decode("ascii")
    url = request.url
    address = str(target.address)
    if (url.scheme, url.host, url.port or DEFAULT_PORTS[url.scheme]) != (
        target.scheme,
        address,
        target.port,
    ):
        request.url = url.copy_with(scheme=target.scheme, host=address, port=target.port)
    return request


class PinnedTransport(httpx.BaseTransport):
    """A sync transport that checks, then connects to the checked address only.

    ``inner`` replaces the real network transport (tests pass ``httpx.MockTransport`` and see
    the pinned request); without it one ``httpx.HTTPTransport`` per origin is created.
    """

    def __init__(
        self,
        guard: EgressGuard,
        *,
        inner: httpx.BaseTransport | None = None,
        verify: Verify = True,
    ) -> None:
        self.guard = guard
        self._inner = inner
        self._verify = verify
        self._pools: OrderedDict[_PoolKey, httpx.HTTPTransport] = OrderedDict()
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        target = self.guard.check(request.url)
        return self._transport_for(target).handle_request(pin_request(request, target))

    def _transport_for(self, target: CheckedTarget) -> httpx.BaseTransport:
        if self._inner is not None:
            return self._inner
        key = (target.scheme, target.host, target.port)
        with self._lock:
            transport = self._pools.get(key)
            if transport is None:
                transport = httpx.HTTPTransport(verify=_tls(self._verify), retries=0)
                self._pools[key] = transport
                if len(self._pools) > MAX_POOLS:
                    _, oldest = self._pools.popitem(last=False)
                    oldest.close()
            else:
                self._pools.move_to_end(key)
            return transport

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), OrderedDict()
        for transport in pools:
            transport.close()
        if self._inner is not None:
            self._inner.close()


# How long a checked origin (scheme, host, port) is reused before it is resolved and checked
# again. Requests in that window connect to the same checked address, so the cache can
# neither skip the check nor let DNS rebinding in; it spares the poller a thread hop and a
# resolution per request to the same provider.
CHECK_TTL_S = 30.0


class AsyncPinnedTransport(httpx.AsyncBaseTransport):
    """The async twin of :class:`PinnedTransport` (DNS resolution runs in a worker thread)."""

    def __init__(
        self,
        guard: EgressGuard,
        *,
        inner: httpx.AsyncBaseTransport | None = None,
        verify: Verify = True,
        limits: httpx.Limits | None = None,
    ) -> None:
        self.guard = guard
        self._inner = inner
        self._verify = verify
        # Per-origin pool size: the poller keeps up to its concurrency alive to one provider.
        self._limits = limits or httpx.Limits()
        self._pools: OrderedDict[_PoolKey, httpx.AsyncHTTPTransport] = OrderedDict()
        self._checked: dict[tuple[str, bytes], tuple[float, CheckedTarget]] = {}

    async def _check(self, url: httpx.URL) -> CheckedTarget:
        key = (url.scheme, url.netloc)
        cached = self._checked.get(key)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        target = await anyio.to_thread.run_sync(self.guard.check, url)
        self._checked[key] = (now + CHECK_TTL_S, target)
        return target

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        target = await self._check(request.url)
        transport = await self._transport_for(target)
        return await transport.handle_async_request(pin_request(request, target))

    async def _transport_for(self, target: CheckedTarget) -> httpx.AsyncBaseTransport:
        if self._inner is not None:
            return self._inner
        key = (target.scheme, target.host, target.port)
        transport = self._pools.get(key)
        if transport is None:
            transport = httpx.AsyncHTTPTransport(
                verify=_tls(self._verify), retries=0, limits=self._limits
            )
            self._pools[key] = transport
            if len(self._pools) > MAX_POOLS:
                _, oldest = self._pools.popitem(last=False)
                await oldest.aclose()
        else:
            self._pools.move_to_end(key)
        return transport

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), OrderedDict()
        for transport in pools:
            await transport.aclose()
        if self._inner is not None:
            await self._inner.aclose()


def guarded_client(
    guard: EgressGuard,
    *,
    timeout: httpx.Timeout | float = 10.0,
    verify: Verify = True,
    headers: Mapping[str, str] | None = None,
    inner: httpx.BaseTransport | None = None,
) -> httpx.Client:
    """An ``httpx.Client`` for user-configured URLs.

    ``trust_env=False`` matters: with it on, an ``HTTPS_PROXY`` variable would route requests
    through a proxy transport and around the guard. Redirects are not followed.
    """
    return httpx.Client(
        transport=PinnedTransport(guard, inner=inner, verify=verify),
        timeout=timeout,
        headers=headers,
        follow_redirects=False,
        trust_env=False,
    )


def guarded_async_client(
    guard: EgressGuard,
    *,
    timeout: httpx.Timeout | float = 10.0,
    verify: Verify = True,
    headers: Mapping[str, str] | None = None,
    inner: httpx.AsyncBaseTransport | None = None,
    limits: httpx.Limits | None = None,
) -> httpx.AsyncClient:
    """The async twin of :func:`guarded_client`; ``limits`` sizes each origin's pool."""
    return httpx.AsyncClient(
        transport=AsyncPinnedTransport(guard, inner=inner, verify=verify, limits=limits),
        timeout=timeout,
        headers=headers,
        follow_redirects=False,
        trust_env=False,
    )
