"""The SSRF guard: address rules, URL rules, the allowlist, and pinned connections."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
import threading
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from printflow.errors import ConfigurationError
from printflow.net.safe_http import PinnedTransport, guarded_async_client, guarded_client
from printflow.net.ssrf import (
    BlockedDestination,
    EgressGuard,
    EgressPolicy,
    UnresolvableDestination,
    check_url,
    parse_ipv4_literal,
)

PUBLIC_V4 = "93.184.216.34"
PUBLIC_V6 = "2606:2800:220:1:248:1893:25c8:1946"


def dns(*answers: str) -> Callable[[str, int], Sequence[str]]:
    """A resolver that answers every name with ``answers`` (no network)."""

    def resolve(host: str, port: int) -> Sequence[str]:
        return list(answers)

    return resolve


def no_dns(host: str, port: int) -> Sequence[str]:
    raise AssertionError(f"an IP literal must not be resolved (asked for {host})")


def blocked(url: str, *answers: str, policy: EgressPolicy | None = None) -> str:
    resolver = dns(*answers) if answers else no_dns
    with pytest.raises(BlockedDestination) as caught:
        check_url(url, policy=policy, resolver=resolver)
    return str(caught.value)


# -- addresses a name resolves to -----------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.8.9.10", "a loopback address"),
        ("10.0.0.5", "a private address"),
        ("172.16.0.1", "a private address"),
        ("172.31.255.254", "a private address"),
        ("192.168.1.1", "a private address"),
        ("169.254.169.254", "a link-local address"),
        ("100.64.0.1", "a shared (carrier-grade NAT) address"),
        ("100.127.255.254", "a shared (carrier-grade NAT) address"),
        ("0.0.0.0", "an unspecified"),  # noqa: S104
        ("224.0.0.251", "a multicast address"),
        ("240.0.0.1", "a reserved address"),
        ("255.255.255.255", "a reserved address"),
        ("192.0.2.10", "a documentation address"),
        ("198.51.100.10", "a documentation address"),
        ("203.0.113.10", "a documentation address"),
        ("198.18.0.1", "benchmarking"),
        ("::1", "a loopback address"),
        ("::", "an unspecified address"),
        ("fd00::1", "a private (unique local) address"),
        ("fc00::1", "a private (unique local) address"),
        ("fe80::1", "a link-local address"),
        ("ff02::1", "a multicast address"),
        ("2001:db8::1", "a documentation address"),
        ("::ffff:127.0.0.1", "an IPv4-mapped form of 127.0.0.1, a loopback address"),
        ("::ffff:10.1.2.3", "an IPv4-mapped form of 10.1.2.3, a private address"),
        ("64:ff9b::a9fe:a9fe", "a NAT64 form of 169.254.169.254, a link-local address"),
        ("2002:7f00:1::1", "a 6to4 form of 127.0.0.1, a loopback address"),
        ("2002:c0a8:101::1", "a 6to4 form of 192.168.1.1, a private address"),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "a Teredo tunnel address"),
    ],
)
def test_a_name_resolving_to_a_non_public_address_is_blocked(address: str, reason: str) -> None:
    message = blocked("https://orders.example.com/hook", address)

    assert f"destination {ipaddress.ip_address(address)} (from orders.example.com)" in message
    assert reason in message


def test_the_message_says_which_address_and_why() -> None:
    assert (
        blocked("https://orders.example.com/", "10.0.0.5")
        == "destination 10.0.0.5 (from orders.example.com) is a private address"
    )


def test_one_private_answer_among_public_ones_blocks_the_name() -> None:
    # A rebinding resolver mixes answers, hoping the client picks the private one.
    message = blocked("https://orders.example.com/", PUBLIC_V4, "10.0.0.5")
    assert "10.0.0.5" in message


def test_a_public_name_passes_and_ipv4_is_preferred() -> None:
    target = check_url("https://Orders.Example.com/hook?x=1", resolver=dns(PUBLIC_V6, PUBLIC_V4))

    assert target.host == "orders.example.com"
    assert target.port == 443
    assert str(target.address) == PUBLIC_V4
    assert str(target.connect_url()) == f"https://{PUBLIC_V4}/hook?x=1"
    assert not target.allowlisted


def test_an_ipv4_mapped_public_address_is_dialled_as_ipv4() -> None:
    target = check_url("https://[::ffff:93.184.216.34]/", resolver=no_dns)
    assert str(target.address) == PUBLIC_V4


def test_a_public_6to4_address_passes() -> None:
    # 2002:5db8:d822:: embeds 93.184.216.34: the tunnel exits to a public host.
    check_url("https://[2002:5db8:d822::1]/", resolver=no_dns)


# -- IP literals in every spelling ----------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "means"),
    [
        ("https://127.0.0.1/", "127.0.0.1"),
        ("https://127.0.0.1./", "127.0.0.1"),
        ("https://2130706433/", "127.0.0.1"),  # one 32-bit integer
        ("https://0x7f000001/", "127.0.0.1"),  # hex
        ("https://0x7f.1/", "127.0.0.1"),  # hex, short
        ("https://127.1/", "127.0.0.1"),  # short: a.b -> a.0.0.b
        ("https://10.1/", "10.0.0.1"),
        ("https://0xa9fea9fe/", "169.254.169.254"),
        ("https://0251.0376.0251.0376/", "169.254.169.254"),  # octal (httpx refuses it)
        ("https://0177.0.0.1/", "127.0.0.1"),  # octal (httpx refuses it)
        ("https://0/", "0.0.0.0"),  # noqa: S104
        ("https://[::1]/", "::1"),
        ("https://[::ffff:127.0.0.1]/", "::ffff:7f00:1"),
        ("https://[::ffff:7f00:1]/", "::ffff:7f00:1"),
    ],
)
def test_ip_literals_are_normalised_and_checked_without_dns(url: str, means: str) -> None:
    message = blocked(url)
    assert means in message


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0X7F.0.0.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("1.2.3.4", "1.2.3.4"),
        ("0x", "0.0.0.0"),  # noqa: S104
        ("example.com", None),
        ("1.example", None),
    ],
)
def test_parse_ipv4_literal_matches_inet_aton(host: str, address: str | None) -> None:
    parsed = parse_ipv4_literal(host)
    assert (str(parsed) if parsed else None) == address


@pytest.mark.parametrize("host", ["256.1.1.1", "1.2.3.4.5", "08.1.1.1", "1.2.3.16777216"])
def test_a_host_ending_in_a_number_must_be_a_valid_ipv4_address(host: str) -> None:
    with pytest.raises(BlockedDestination, match="not a valid IPv4 address"):
        parse_ipv4_literal(host)


# -- URL rules --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["http://orders.example.com/", "ftp://orders.example.com/", "file:///etc/passwd", "/relative"],
)
def test_only_https_is_allowed(url: str) -> None:
    assert "is not allowed; use https" in blocked(url, PUBLIC_V4)


@pytest.mark.parametrize(
    "url",
    [
        "https://user:secret@orders.example.com/",
        "https://orders.example.com@evil.example.net/",
        "https://evil.example.net\\@orders.example.com/",
    ],
)
def test_userinfo_is_rejected(url: str) -> None:
    assert "credentials in the URL" in blocked(url, PUBLIC_V4)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://[fe80::1%25eth0]/", "zone id"),
        ("https://%31%32%37.0.0.1/", "percent-encoding"),
        ("https://orders.example.com:0/", "port 0"),
        ("https://exa mple.com/", "percent-encoding"),
        ("https://under_score-.example.com/", "not a valid DNS name"),
        ("https://orders.example.com\r\n/", "not a valid URL"),
    ],
)
def test_malformed_hosts_are_rejected(url: str, problem: str) -> None:
    assert problem in blocked(url, PUBLIC_V4)


def test_a_name_that_does_not_resolve_is_unresolvable_not_blocked() -> None:
    with pytest.raises(UnresolvableDestination):
        check_url("https://orders.example.com/", resolver=dns())


def test_the_system_resolver_is_used_by_default() -> None:
    # localhost resolves from /etc/hosts, without network.
    with pytest.raises(BlockedDestination, match="a loopback address"):
        check_url("https://localhost/")


# -- the allowlist ----------------------------------------------------------------------------

LOCAL = EgressPolicy.parse("127.0.0.1:8123, localhost:8123")


def test_without_an_allowlist_a_loopback_sink_is_blocked() -> None:
    assert "a loopback address" in blocked("https://127.0.0.1:8123/sink")
    assert "use https" in blocked("http://127.0.0.1:8123/sink")


def test_an_allowlisted_host_port_may_be_loopback_and_use_http() -> None:
    by_address = check_url("http://127.0.0.1:8123/sink", policy=LOCAL, resolver=no_dns)
    by_name = check_url("http://localhost:8123/sink", policy=LOCAL, resolver=dns("127.0.0.1"))

    assert by_address.allowlisted
    assert str(by_address.address) == "127.0.0.1"
    assert by_name.allowlisted
    assert str(by_name.address) == "127.0.0.1"


def test_another_spelling_of_an_allowlisted_address_matches_it() -> None:
    assert check_url("http://2130706433:8123/", policy=LOCAL, resolver=no_dns).allowlisted


def test_the_allowlist_is_per_port() -> None:
    assert "a loopback address" in blocked("https://127.0.0.1:8124/", policy=LOCAL)
    assert "use https" in blocked("http://localhost:9999/", "127.0.0.1", policy=LOCAL)


def test_http_to_an_allowlisted_host_can_be_switched_off() -> None:
    strict = EgressPolicy.parse("127.0.0.1:8123", allow_http_for_allowlisted=False)

    assert "use https" in blocked("http://127.0.0.1:8123/", policy=strict)
    assert check_url("https://127.0.0.1:8123/", policy=strict, resolver=no_dns).allowlisted


def test_the_allowlist_comes_from_egress_allowlist() -> None:
    policy = EgressPolicy.from_env({"EGRESS_ALLOWLIST": " LocalHost:8123 ,[::1]:9000, sink "})

    assert policy.allow_hosts == frozenset({"localhost:8123", "[::1]:9000", "sink"})
    assert EgressPolicy.from_env({}).allow_hosts == frozenset()
    # A bare host matches every port.
    assert check_url("http://sink:4000/", policy=policy, resolver=dns("10.0.0.9")).allowlisted


@pytest.mark.parametrize("entry", ["user@host:1", "host:1/path", "host:notaport"])
def test_a_malformed_allowlist_entry_fails_the_cold_start(entry: str) -> None:
    with pytest.raises(ConfigurationError, match="EGRESS_ALLOWLIST"):
        EgressPolicy.parse(entry)


# -- connecting to the checked address --------------------------------------------------------


class Recorder:
    """An inner transport that records what would have gone on the wire."""

    def __init__(self, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.status = status
        self.headers = headers or {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status, headers=self.headers, text="ok")


def test_the_request_dials_the_checked_ip_and_keeps_host_and_sni() -> None:
    recorder = Recorder()
    client = guarded_client(
        EgressGuard(resolver=dns(PUBLIC_V4)), inner=httpx.MockTransport(recorder)
    )

    client.post("https://api.example.com:8443/hooks/a?b=1", content=b"{}")

    (sent,) = recorder.requests
    assert sent.url.host == PUBLIC_V4
    assert sent.url.port == 8443
    assert sent.url.raw_path == b"/hooks/a?b=1"
    assert sent.headers["host"] == "api.example.com:8443"
    assert sent.extensions["sni_hostname"] == "api.example.com"
    assert sent.content == b"{}"


def test_each_request_resolves_once_and_dials_that_answer() -> None:
    # A rebinding resolver: public for the check, private for any later lookup.
    answers = iter([PUBLIC_V4, "169.254.169.254"])
    calls: list[str] = []

    def rebinding(host: str, port: int) -> Sequence[str]:
        calls.append(host)
        return [next(answers)]

    recorder = Recorder()
    client = guarded_client(EgressGuard(resolver=rebinding), inner=httpx.MockTransport(recorder))

    client.get("https://api.example.com/")
    assert calls == ["api.example.com"]
    assert recorder.requests[0].url.host == PUBLIC_V4

    # The next request's lookup gives the private answer: it is blocked before any I/O.
    with pytest.raises(BlockedDestination, match=r"169\.254\.169\.254"):
        client.get("https://api.example.com/")
    assert len(recorder.requests) == 1


def test_a_blocked_url_never_reaches_the_network() -> None:
    recorder = Recorder()
    client = guarded_client(
        EgressGuard(resolver=dns("10.0.0.5")), inner=httpx.MockTransport(recorder)
    )

    with pytest.raises(BlockedDestination):
        client.get("https://api.example.com/")
    assert recorder.requests == []


def test_redirects_are_not_followed() -> None:
    recorder = Recorder(302, {"location": "https://169.254.169.254/latest/meta-data/"})
    client = guarded_client(
        EgressGuard(resolver=dns(PUBLIC_V4)), inner=httpx.MockTransport(recorder)
    )

    response = client.get("https://api.example.com/")

    assert response.status_code == 302
    assert len(recorder.requests) == 1


def test_proxy_variables_cannot_route_around_the_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://10.0.0.1:3128")
    monkeypatch.setenv("ALL_PROXY", "http://10.0.0.1:3128")
    recorder = Recorder()
    client = guarded_client(
        EgressGuard(resolver=dns(PUBLIC_V4)), inner=httpx.MockTransport(recorder)
    )

    client.get("https://api.example.com/")

    assert recorder.requests[0].url.host == PUBLIC_V4


def test_plain_http_to_an_allowlisted_sink_has_no_sni() -> None:
    recorder = Recorder()
    guard = EgressGuard(EgressPolicy.parse("localhost:8123"), resolver=dns("127.0.0.1"))
    client = guarded_client(guard, inner=httpx.MockTransport(recorder))

    client.get("http://localhost:8123/sink")

    (sent,) = recorder.requests
    assert str(sent.url) == "http://127.0.0.1:8123/sink"
    assert sent.headers["host"] == "localhost:8123"
    assert "sni_hostname" not in sent.extensions


def test_the_async_client_pins_the_same_way() -> None:
    seen: list[httpx.Request] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    async def run() -> None:
        guard = EgressGuard(resolver=dns(PUBLIC_V4))
        async with guarded_async_client(guard, inner=httpx.MockTransport(handler)) as client:
            await client.get("https://api.example.com/x")
            with pytest.raises(BlockedDestination):
                await client.get("https://127.0.0.1/x")

    asyncio.run(run())
    assert [r.url.host for r in seen] == [PUBLIC_V4]
    assert seen[0].extensions["sni_hostname"] == "api.example.com"


# -- a real TLS handshake against the pinned address ------------------------------------------


@pytest.fixture(scope="module")
def localhost_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate valid for the name ``localhost`` only (no IP SAN)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_server(localhost_cert: tuple[Path, Path]) -> Iterator[tuple[int, list[str], list[str]]]:
    """An https server on 127.0.0.1; yields its port, the SNI names and Host headers seen."""
    sni_names: list[str] = []
    hosts: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hosts.append(self.headers.get("Host", ""))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            pass

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*localhost_cert)
    context.sni_callback = lambda sock, name, ctx: sni_names.append(name or "") or None
    server = HTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server.server_address[1], sni_names, hosts
    finally:
        server.shutdown()
        server.server_close()


def test_tls_is_verified_against_the_url_host_while_dialling_the_checked_ip(
    localhost_cert: tuple[Path, Path], tls_server: tuple[int, list[str], list[str]]
) -> None:
    port, sni_names, hosts = tls_server
    trust = ssl.create_default_context(cafile=str(localhost_cert[0]))
    lookups: list[str] = []

    def resolve(host: str, port: int) -> Sequence[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    guard = EgressGuard(EgressPolicy.parse(f"localhost:{port},wrong.example:{port}"), resolve)
    with guarded_client(guard, verify=trust, timeout=5) as client:
        response = client.get(f"https://localhost:{port}/")
        # The certificate names localhost, not 127.0.0.1: had the check used the dialled
        # IP, the handshake above would have failed. A different name must fail.
        with pytest.raises(httpx.ConnectError, match="certificate verify failed"):
            client.get(f"https://wrong.example:{port}/")

    assert response.status_code == 200
    assert response.text == "ok"
    assert sni_names[0] == "localhost"
    assert hosts == [f"localhost:{port}"]
    assert lookups == ["localhost", "wrong.example"]


def test_pinned_transport_keeps_one_pool_per_origin() -> None:
    transport = PinnedTransport(EgressGuard(resolver=dns(PUBLIC_V4)))
    one = check_url("https://a.example.com/", resolver=dns(PUBLIC_V4))
    two = check_url("https://b.example.com/", resolver=dns(PUBLIC_V4))

    # Same IP, different names: a connection verified for one name never serves the other.
    assert transport._transport_for(one) is not transport._transport_for(two)
    assert transport._transport_for(one) is transport._transport_for(one)
    transport.close()


def test_an_allowlisted_ip_literal_is_named_canonically_and_gets_no_sni() -> None:
    recorder = Recorder()
    guard = EgressGuard(EgressPolicy.parse("127.0.0.1:8443"), resolver=no_dns)
    client = guarded_client(guard, inner=httpx.MockTransport(recorder))

    client.get("https://0x7f000001:8443/")

    (sent,) = recorder.requests
    assert str(sent.url) == "https://127.0.0.1:8443/"
    assert "sni_hostname" not in sent.extensions
    assert check_url("https://2130706433:8443/", policy=guard.policy, resolver=no_dns).host_is_ip


class TestReroutes:
    """Local-stack only: a flow's real https URI sent to a loopback sink."""

    def test_a_rerouted_host_goes_to_its_loopback_target(self) -> None:
        from printflow.net.ssrf import EgressPolicy, check_url

        policy = EgressPolicy.from_env(
            {"EGRESS_REROUTES": "orders.example.com=http://127.0.0.1:8123"}
        )
        target = check_url(
            "https://orders.example.com/printflow?x=1",
            policy=policy,
            resolver=lambda host, port: ["203.0.113.9"],
        )
        assert (target.scheme, str(target.address), target.port) == ("http", "127.0.0.1", 8123)
        assert target.url.path == "/printflow" and target.allowlisted

    def test_other_hosts_are_not_rerouted(self) -> None:
        from printflow.net.ssrf import BlockedDestination, EgressPolicy, check_url

        policy = EgressPolicy.from_env(
            {"EGRESS_REROUTES": "orders.example.com=http://127.0.0.1:8123"}
        )
        with pytest.raises(BlockedDestination):
            check_url("http://127.0.0.1:8123/", policy=policy)

    @pytest.mark.parametrize(
        "entry",
        [
            "orders.example.com=http://10.0.0.5:80",
            "orders.example.com=http://example.org",
            "=http://127.0.0.1:1",
        ],
    )
    def test_reroutes_may_only_point_at_loopback(self, entry: str) -> None:
        from printflow.errors import ConfigurationError
        from printflow.net.ssrf import EgressPolicy

        with pytest.raises(ConfigurationError, match="loopback"):
            EgressPolicy.from_env({"EGRESS_REROUTES": entry})
