"""The SSRF guard: decides whether PrintFlow may connect to a user-configured URL.

Flows, storefront configs and provider responses carry URLs that PrintFlow then calls from
inside AWS, next to the instance metadata service and whatever the account can reach. Every
such URL goes through :func:`check_url` (or :class:`EgressGuard`), which

1. parses the URL with httpx's own parser (the one that later sends the request, so the
   guard and the client cannot disagree about the host);
2. accepts only ``https`` (``http`` only for allowlisted ``host:port`` pairs), rejects
   userinfo, zone ids, odd host characters and port 0;
3. normalises IPv4 literals the way ``inet_aton`` and browsers do (``2130706433``,
   ``0x7f000001``, ``0177.0.0.1``, ``127.1`` are all 127.0.0.1) instead of passing them to
   a resolver that would do the same behind our back;
4. resolves names once and rejects the target when *any* address is not globally routable
   (an attacker's DNS may mix a public and a private answer);
5. returns a :class:`CheckedTarget` naming the exact address to connect to.

:mod:`printflow.net.safe_http` then connects to that address and nothing else (no second
lookup, so DNS rebinding between check and connect is impossible), sends the original
``Host`` header and verifies TLS against the original hostname.

An explicit allowlist (``EGRESS_ALLOWLIST``, off by default) lets the local stack reach its
loopback sinks: allowlisted ``host[:port]`` pairs skip the address rules and may use http.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

import httpx

from printflow.errors import ConfigurationError, PrintFlowError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# host, port -> the addresses the name resolves to (textual IPs).
Resolver = Callable[[str, int], Sequence[str]]

DEFAULT_PORTS = {"https": 443, "http": 80}
MAX_URL_LENGTH = 4096
# DNS names after IDNA encoding; "_" appears in real service names, so it is allowed.
_HOST_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
# WHATWG "ends in a number": such a host is an IPv4 literal (or invalid), never a DNS name.
_NUMERIC_LABEL = re.compile(r"^(?:0[xX][0-9a-fA-F]*|[0-9]+)$")


class BlockedDestination(PrintFlowError):
    """The URL may not be called; the message says why (safe to show to an operator)."""


class UnresolvableDestination(PrintFlowError):
    """The host did not resolve. Possibly transient (DNS outage), unlike a blocked target."""


# -- address classification -----------------------------------------------------------------

_V4_RULES: tuple[tuple[ipaddress.IPv4Network, str], ...] = tuple(
    (ipaddress.IPv4Network(net), reason)
    for net, reason in (
        ("0.0.0.0/8", "an unspecified ('this network') address"),
        ("10.0.0.0/8", "a private address"),
        ("100.64.0.0/10", "a shared (carrier-grade NAT) address"),
        ("127.0.0.0/8", "a loopback address"),
        ("169.254.0.0/16", "a link-local address (instance metadata lives here)"),
        ("172.16.0.0/12", "a private address"),
        ("192.0.0.0/24", "a reserved (IETF protocol assignment) address"),
        ("192.0.2.0/24", "a documentation address"),
        ("192.88.99.0/24", "a reserved (6to4 relay) address"),
        ("192.168.0.0/16", "a private address"),
        ("198.18.0.0/15", "a reserved (benchmarking) address"),
        ("198.51.100.0/24", "a documentation address"),
        ("203.0.113.0/24", "a documentation address"),
        ("224.0.0.0/4", "a multicast address"),
        ("240.0.0.0/4", "a reserved address"),
    )
)

_V6_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_V6_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_V6_6TO4 = ipaddress.IPv6Network("2002::/16")
_V6_TEREDO = ipaddress.IPv6Network("2001::/32")
_V6_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_V6_RULES: tuple[tuple[ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.IPv6Network(net), reason)
    for net, reason in (
        ("::/128", "an unspecified address"),
        ("::1/128", "a loopback address"),
        ("::/96", "a deprecated IPv4-compatible address"),
        ("64:ff9b:1::/48", "a private (local-use NAT64) address"),
        ("100::/64", "a reserved (discard-only) address"),
        ("2001:db8::/32", "a documentation address"),
        ("2001::/23", "a reserved (IETF protocol assignment) address"),
        ("3fff::/20", "a documentation address"),
        ("5f00::/16", "a reserved (segment routing) address"),
        ("fc00::/7", "a private (unique local) address"),
        ("fe80::/10", "a link-local address"),
        ("fec0::/10", "a deprecated site-local address"),
        ("ff00::/8", "a multicast address"),
    )
)


def blocked_reason(address: IPAddress) -> str | None:
    """Why ``address`` is not a public destination, or None when it is.

    The explicit tables come first so the message is precise; ``is_global`` is the final
    net for anything they miss. Embedded IPv4 addresses (mapped, NAT64, 6to4, Teredo) are
    judged by the IPv4 address a packet would finally reach.
    """
    if isinstance(address, ipaddress.IPv4Address):
        for network, reason in _V4_RULES:
            if address in network:
                return reason
        return None if address.is_global else "not a globally routable address"

    if address.scope_id:
        return "a scoped (zone id) address"
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        kind, v4 = embedded
        inner = blocked_reason(v4)
        if inner is not None:
            return f"{kind} of {v4}, {inner}"
        if kind == "a Teredo tunnel address":
            # The Teredo server and client are public, but the tunnel still exits through
            # an unknown relay; there is no legitimate webhook behind one.
            return kind
        return None
    for network6, reason in _V6_RULES:
        if address in network6:
            return reason
    if address not in _V6_GLOBAL_UNICAST:
        return "not a global unicast address"
    return None if address.is_global else "not a globally routable address"


def _embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    if address in _V6_MAPPED:
        assert address.ipv4_mapped is not None
        return "an IPv4-mapped form", address.ipv4_mapped
    if address in _V6_NAT64:
        return "a NAT64 form", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _V6_6TO4:
        assert address.sixtofour is not None
        return "a 6to4 form", address.sixtofour
    if address in _V6_TEREDO:
        assert address.teredo is not None
        server, client = address.teredo
        # Report the worse of the two ends: either one may be where the packet goes.
        return "a Teredo tunnel address", client if blocked_reason(client) else server
    return None


# -- IPv4 literal normalisation -------------------------------------------------------------


def parse_ipv4_literal(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address a numeric host means, in every form ``inet_aton`` and browsers accept.

    Returns None when ``host`` is a DNS name. A host whose last label is numeric is an IPv4
    literal by the WHATWG URL rules; when it is not a *valid* one, :class:`BlockedDestination`
    is raised rather than letting a resolver guess.
    """
    labels = host.split(".")
    if labels and labels[-1] == "" and len(labels) > 1:
        labels = labels[:-1]  # one trailing dot is allowed: "127.0.0.1."
    if not labels or not _NUMERIC_LABEL.match(labels[-1]):
        return None
    if len(labels) > 4:
        raise BlockedDestination(f"host {host!r} is not a valid IPv4 address")
    numbers: list[int] = []
    for label in labels:
        number = _ipv4_number(label)
        if number is None:
            raise BlockedDestination(f"host {host!r} is not a valid IPv4 address")
        numbers.append(number)
    *leading, last = numbers
    if any(n > 255 for n in leading) or last >= 256 ** (5 - len(numbers)):
        raise BlockedDestination(f"host {host!r} is not a valid IPv4 address")
    value = last
    for index, number in enumerate(leading):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _ipv4_number(label: str) -> int | None:
    if not label:
        return None
    try:
        if label[:2] in ("0x", "0X"):
            return int(label[2:], 16) if label[2:] else 0
        if len(label) > 1 and label.startswith("0"):
            return int(label[1:], 8)
        return int(label, 10)
    except ValueError:
        return None


# -- policy -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    """Which destinations are allowed beyond the public internet over https.

    ``allow_hosts`` holds lower-case ``host:port`` pairs (IPv6 hosts in brackets) or bare
    hosts, which match any port. Empty by default: production never needs it.
    """

    allow_hosts: frozenset[str] = frozenset()
    allow_http_for_allowlisted: bool = True
    # host[:port] -> loopback base URL: the local stack sends a flow's real https URI to a
    # loopback sink without editing the flow. Empty by default; loopback targets only.
    reroutes: tuple[tuple[str, httpx.URL], ...] = ()

    @classmethod
    def parse(cls, allowlist: str, *, allow_http_for_allowlisted: bool = True) -> EgressPolicy:
        """Build a policy from ``"127.0.0.1:8123, localhost:8123"`` (comma separated)."""
        return cls(
            allow_hosts=frozenset(
                _allowlist_entry(part) for part in allowlist.split(",") if part.strip()
            ),
            allow_http_for_allowlisted=allow_http_for_allowlisted,
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> EgressPolicy:
        """``EGRESS_ALLOWLIST`` (comma-separated ``host[:port]``) and ``EGRESS_REROUTES``
        (comma-separated ``host[:port]=http://127.0.0.1:PORT``); unset means no exceptions."""
        policy = cls.parse(env.get("EGRESS_ALLOWLIST", ""))
        reroutes = tuple(
            _reroute_entry(part)
            for part in env.get("EGRESS_REROUTES", "").split(",")
            if part.strip()
        )
        return replace(policy, reroutes=reroutes)

    def reroute(self, url: httpx.URL) -> httpx.URL | None:
        """The loopback URL ``url`` is sent to instead, if its host is rerouted."""
        host = _canonical_host(url.raw_host.decode("ascii", "replace"))
        port = url.port if url.port is not None else DEFAULT_PORTS.get(url.scheme, 0)
        for source, target in self.reroutes:
            if source in (host, f"{host}:{port}"):
                return url.copy_with(scheme=target.scheme, host=target.host, port=target.port)
        return None

    def allows(self, host: str, port: int) -> bool:
        """Is ``host:port`` allowlisted? ``host`` is normalised (lower case, IPv6 bare)."""
        if not self.allow_hosts:
            return False
        shown = f"[{host}]" if ":" in host else host
        return f"{shown}:{port}" in self.allow_hosts or shown in self.allow_hosts


def _allowlist_entry(raw: str) -> str:
    entry = raw.strip().lower()
    problem = f"EGRESS_ALLOWLIST entry {raw.strip()!r} is not host[:port]"
    try:
        url = httpx.URL(f"http://{entry}")
    except httpx.InvalidURL:
        raise ConfigurationError(problem) from None
    if url.userinfo or url.raw_path not in (b"/", b"") or url.query or not url.host:
        raise ConfigurationError(problem)
    host = _canonical_host(url.raw_host.decode("ascii"))
    shown = f"[{host}]" if ":" in host else host
    return shown if url.port is None else f"{shown}:{url.port}"


def _reroute_entry(raw: str) -> tuple[str, httpx.URL]:
    source, _, target = raw.partition("=")
    problem = f"EGRESS_REROUTES entry {raw.strip()!r} is not host[:port]=http://127.0.0.1:PORT"
    try:
        url = httpx.URL(target.strip())
    except httpx.InvalidURL:
        raise ConfigurationError(problem) from None
    literal = _ip_literal(url.host)
    loopback = url.host == "localhost" or (literal is not None and literal.is_loopback)
    if not source.strip() or url.scheme not in ("http", "https") or not loopback:
        raise ConfigurationError(problem + " (reroutes may only point at loopback)")
    return _allowlist_entry(source), url


def _canonical_host(host: str) -> str:
    """One spelling per host, so allowlist matching cannot be dodged by another form."""
    host = host.lower()
    if len(host) > 1 and host.endswith("."):
        host = host[:-1]
    try:
        v4 = parse_ipv4_literal(host)
    except BlockedDestination:
        return host
    if v4 is not None:
        return str(v4)
    if ":" in host:
        try:
            return str(ipaddress.IPv6Address(host))
        except ValueError:
            return host
    return host


# -- resolution -------------------------------------------------------------------------------


def system_resolver(host: str, port: int) -> list[str]:
    """Addresses of ``host`` from the system resolver (TCP only, each once, in order)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnresolvableDestination(f"host {host!r} does not resolve: {exc}") from None
    seen: dict[str, None] = {}
    for _family, _type, _proto, _canon, sockaddr in infos:
        seen.setdefault(str(sockaddr[0]), None)
    return list(seen)


# -- the check --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckedTarget:
    """A URL that passed the guard, and the one address the request must connect to."""

    url: httpx.URL
    scheme: str
    # Host as the URL names it (lower case, IDNA-encoded, IPv6 without brackets): the Host
    # header, TLS SNI and certificate checks use it.
    host: str
    port: int
    address: IPAddress
    allowlisted: bool = False
    # Every address the host resolved to (all were checked); ``address`` is the one used.
    resolved: tuple[IPAddress, ...] = field(default=())

    @property
    def host_is_ip(self) -> bool:
        return _is_ip_text(self.host)

    def connect_url(self) -> httpx.URL:
        """The URL with its host replaced by the checked address (what the socket dials)."""
        return self.url.copy_with(host=str(self.address))


class EgressGuard:
    """:func:`check_url` bound to a policy and a resolver, so clients can be injected."""

    def __init__(
        self, policy: EgressPolicy | None = None, resolver: Resolver | None = None
    ) -> None:
        self.policy = policy or EgressPolicy()
        self.resolver: Resolver = resolver or system_resolver

    def check(self, url: str | httpx.URL) -> CheckedTarget:
        return check_url(url, policy=self.policy, resolver=self.resolver)


def check_url(
    url: str | httpx.URL,
    *,
    policy: EgressPolicy | None = None,
    resolver: Resolver | None = None,
) -> CheckedTarget:
    """Check ``url`` against the egress rules; return the target to connect to.

    Raises :class:`BlockedDestination` (with the reason) or :class:`UnresolvableDestination`.
    The download code uses this to vet each redirect ``Location`` before following it.
    """
    policy = policy or EgressPolicy()
    resolve = resolver or system_resolver
    parsed = _parse(url)
    rerouted = policy.reroute(parsed) if policy.reroutes else None
    if rerouted is not None:
        parsed = rerouted

    scheme = parsed.scheme
    if scheme not in DEFAULT_PORTS:
        raise BlockedDestination(f"scheme {scheme!r} is not allowed; use https")
    if parsed.userinfo:
        raise BlockedDestination("credentials in the URL (user@host) are not allowed")
    raw_host = parsed.raw_host.decode("ascii", "replace")
    if not raw_host:
        raise BlockedDestination("the URL has no host")
    if "%" in raw_host:
        raise BlockedDestination(f"host {raw_host!r} has a zone id or percent-encoding")
    port = parsed.port if parsed.port is not None else DEFAULT_PORTS[scheme]
    if not 0 < port < 65536:
        raise BlockedDestination(f"port {port} is not allowed")

    literal = _ip_literal(raw_host)
    host = raw_host.lower()
    if literal is None:
        _check_dns_name(host)
    allowlisted = rerouted is not None or policy.allows(_canonical_host(host), port)
    if scheme != "https" and not (allowlisted and policy.allow_http_for_allowlisted):
        raise BlockedDestination(f"scheme {scheme!r} is not allowed; use https")

    if literal is not None:
        addresses: tuple[IPAddress, ...] = (literal,)
    else:
        addresses = _resolve(resolve, host, port)
    if not allowlisted:
        for address in addresses:
            reason = blocked_reason(address)
            if reason is not None:
                source = "" if str(address) == host else f" (from {host})"
                raise BlockedDestination(f"destination {address}{source} is {reason}")
    return CheckedTarget(
        url=parsed,
        scheme=scheme,
        # An IP literal in any spelling is named by its canonical form (no SNI is sent).
        host=str(literal) if literal is not None else host,
        port=port,
        address=_preferred(addresses),
        allowlisted=allowlisted,
        resolved=addresses,
    )


def _parse(url: str | httpx.URL) -> httpx.URL:
    if isinstance(url, httpx.URL):
        return url
    if len(url) > MAX_URL_LENGTH:
        raise BlockedDestination(f"the URL is longer than {MAX_URL_LENGTH} characters")
    try:
        return httpx.URL(url)
    except httpx.InvalidURL as exc:
        # httpx refuses some IPv4 spellings (0177.0.0.1) that other stacks accept; say what
        # they would have reached, so the operator sees the real problem.
        hint = _literal_hint(url)
        raise BlockedDestination(f"not a valid URL: {exc}{hint}") from None


def _literal_hint(url: str) -> str:
    try:
        host = urlsplit(url).hostname or ""
        literal = parse_ipv4_literal(host)
    except (ValueError, BlockedDestination):
        return ""
    if literal is None:
        return ""
    reason = blocked_reason(literal)
    return f" (host {host!r} means {literal}{', ' + reason if reason else ''})"


def _ip_literal(host: str) -> IPAddress | None:
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            raise BlockedDestination(f"host {host!r} is not a valid IPv6 address") from None
    return parse_ipv4_literal(host)


def _is_ip_text(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _check_dns_name(host: str) -> None:
    name = host[:-1] if host.endswith(".") else host
    labels = name.split(".")
    if len(name) > 253 or not all(_HOST_LABEL.match(label) for label in labels):
        raise BlockedDestination(f"host {host!r} is not a valid DNS name")


def _resolve(resolve: Resolver, host: str, port: int) -> tuple[IPAddress, ...]:
    answers = resolve(host, port)
    addresses: list[IPAddress] = []
    for answer in answers:
        try:
            addresses.append(ipaddress.ip_address(answer))
        except ValueError:
            raise UnresolvableDestination(f"host {host!r} resolved to {answer!r}") from None
    if not addresses:
        raise UnresolvableDestination(f"host {host!r} has no addresses")
    return tuple(addresses)


def _preferred(addresses: Iterable[IPAddress]) -> IPAddress:
    """IPv4 first: Lambda functions outside a dual-stack VPC have no IPv6 egress.

    An IPv4-mapped IPv6 address is dialled as the IPv4 address it stands for.
    """
    ordered = [
        a.ipv4_mapped if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped else a
        for a in addresses
    ]
    for address in ordered:
        if isinstance(address, ipaddress.IPv4Address):
            return address
    return ordered[0]
