"""Checks shared by every parser of PrintFlow's configuration: URLs, secret names, integers.

Storefront settings, provider settings, flow step options and environment variables are
judged here, when they are read (registration, flow validation, cold start). No check does
I/O and none keeps state, so a refusal leaves nothing behind: the caller raises it as a
:class:`~printflow.errors.ValidationError` (or the error class it passes) naming the field.

Two URL checks, on purpose:

- :func:`check_url` here is the **config-time** check: the syntax, the scheme (https, or http
  for the hosts a :class:`UrlPolicy` names), no credentials, no fragment. It answers the same
  way offline and online, so a document is valid or not whatever DNS says today.
- :func:`printflow.net.ssrf.check_url` is the **connect-time** check (the SSRF guard), run by
  the guarded HTTP clients of :mod:`printflow.net.safe_http` before every request: it resolves
  the host and refuses private, loopback and metadata addresses. It must run at connect time
  because a name that was public at registration may resolve to 169.254.169.254 later (DNS
  rebinding); running it at config time as well would prove nothing and need the network.

:meth:`UrlPolicy.from_egress` derives the config-time http exceptions from the same egress
allowlist the SSRF guard uses, so the two checks agree on which hosts may use plain http.

Each caller keeps its own messages (tests and operators read them): a :class:`UrlRules` names
the checks a caller runs, in its order, and the wording of each refusal.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, TypeGuard
from urllib.parse import SplitResult, urlsplit

from printflow.errors import PrintFlowError, ValidationError

if TYPE_CHECKING:
    from printflow.net.ssrf import EgressPolicy

# -- secret names ----------------------------------------------------------------------------

# Secrets Manager names: 1-512 of letters, digits and /_+=.@-
SECRET_NAME = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")


def is_secret_name(value: object) -> TypeGuard[str]:
    """Whether ``value`` can name a Secrets Manager secret (the whole string, no newline)."""
    return isinstance(value, str) and SECRET_NAME.fullmatch(value) is not None


# -- integers --------------------------------------------------------------------------------


def ascii_int(text: str, max_digits: int = 18) -> int | None:
    """``text`` as a non-negative integer when it is 1 to ``max_digits`` ASCII digits; else None.

    For numbers that arrive as text from outside (HTTP headers, ids in provider and store
    answers, CLI arguments). ``str.isdigit()`` alone is not a check: it accepts ``"²"`` and
    ``"¹²³"``, on which ``int()`` raises, and digits of other scripts; and a string of
    thousands of digits passes it and then exceeds Python's limit on parsing an int (or
    overflows what the value is used for).
    """
    if 0 < len(text) <= max_digits and text.isascii() and text.isdigit():
        return int(text)
    return None


def finite_float(value: object, *, text: bool = False) -> float | None:
    """A JSON number (with ``text``, a numeric string too) as a finite float; else None.

    ``True`` is no number here; ``inf``, ``nan`` and integers too large for a float (a
    400-digit one makes ``float()`` raise) are None too: a figure from outside that cannot be
    used, rather than an exception in the code that reads it.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    if isinstance(value, str) and not text:
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def bounded_int(
    value: object,
    message: str,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    text: bool = False,
    error: type[PrintFlowError] = ValidationError,
) -> int:
    """``value`` as an integer within ``[minimum, maximum]``; else ``error(message)``.

    JSON integers only (``True`` is an int to Python but not a count); with ``text``, a string
    is parsed the way ``int()`` does (environment variables).
    """
    if text and isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            raise error(message) from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise error(message)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise error(message)
    return value


# -- URLs (config time) ----------------------------------------------------------------------

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
MAX_URL_LENGTH = 2048
# C0, DEL, C1 and the Unicode line separators: never part of a URL or a header value.
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_HOST_NAME = re.compile(
    r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$"
)


@dataclass(frozen=True, slots=True)
class UrlPolicy:
    """Which configured URLs are acceptable. Default: https only.

    ``allow_insecure_hosts`` names hosts that may be reached over plain http: the local stack
    and the tests use ``UrlPolicy.loopback()`` for their sandboxes on 127.0.0.1.
    """

    allow_insecure_hosts: frozenset[str] = frozenset()

    @classmethod
    def loopback(cls) -> UrlPolicy:
        return cls(allow_insecure_hosts=LOOPBACK_HOSTS)

    @classmethod
    def from_egress(cls, egress: EgressPolicy) -> UrlPolicy:
        """http only for the hosts the SSRF guard's allowlist names (the local stack)."""
        return cls(
            allow_insecure_hosts=frozenset(
                entry.rsplit(":", 1)[0].strip("[]") for entry in egress.allow_hosts
            )
        )


# A check sees the split URL and answers the name of its refusal (a UrlWording field) or None.
UrlCheck = Callable[[SplitResult, "UrlRules"], str | None]


@dataclass(frozen=True, slots=True)
class UrlWording:
    """What each refusal says after ``<field>: ``."""

    missing: str
    too_long: str
    unprintable: str
    malformed: str
    bad_port: str
    no_host: str
    credentials: str
    not_https: str
    query_or_fragment: str = "must not have a query or fragment"
    port_out_of_range: str = "invalid port"


@dataclass(frozen=True, slots=True)
class UrlRules:
    """One caller's URL check: which checks run after the common ones, in which order."""

    checks: tuple[UrlCheck, ...]
    wording: UrlWording
    policy: UrlPolicy = field(default_factory=UrlPolicy)
    max_length: int = MAX_URL_LENGTH
    allow_query: bool = False
    # Any non-printable character (stricter), or only control characters and whitespace.
    printable_only: bool = True


def _port_parses(parts: SplitResult, rules: UrlRules) -> str | None:
    try:
        parts.port  # noqa: B018 -- raises ValueError for a malformed or out-of-range port
    except ValueError:
        return "bad_port"
    return None


def _port_in_range(parts: SplitResult, rules: UrlRules) -> str | None:
    port = parts.port
    return "port_out_of_range" if port is not None and not 0 < port < 65536 else None


def _has_host(parts: SplitResult, rules: UrlRules) -> str | None:
    return None if parts.hostname else "no_host"


def _valid_host(parts: SplitResult, rules: UrlRules) -> str | None:
    host = parts.hostname
    if not host:
        return "no_host"
    if _HOST_NAME.fullmatch(host):
        return None
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return "no_host"
    return None


def _no_credentials(parts: SplitResult, rules: UrlRules) -> str | None:
    return "credentials" if parts.username is not None or parts.password is not None else None


def _https(parts: SplitResult, rules: UrlRules) -> str | None:
    if parts.scheme == "https":
        return None
    host = (parts.hostname or "").lower()
    if parts.scheme == "http" and host in rules.policy.allow_insecure_hosts:
        return None
    return "not_https"


def _no_query_or_fragment(parts: SplitResult, rules: UrlRules) -> str | None:
    refused = parts.fragment or (parts.query and not rules.allow_query)
    return "query_or_fragment" if refused else None


# Provider, store-API and write-back URLs, checked when they are configured.
CONFIG_URL_RULES = UrlRules(
    checks=(
        _port_parses,
        _has_host,
        _no_credentials,
        _https,
        _no_query_or_fragment,
        _port_in_range,
    ),
    wording=UrlWording(
        missing="required, an https URL",
        too_long="not a valid URL",
        unprintable="not a valid URL",
        malformed="not a valid URL",
        bad_port="not a valid URL",
        no_host="the URL has no host",
        credentials="credentials in the URL are not allowed",
        not_https="must be an https URL",
    ),
)

# A flow step's endpoint (consume-rest-api ``uri``): https only, query and fragment allowed.
STEP_URI_RULES = UrlRules(
    checks=(_https, _no_credentials, _valid_host, _port_parses),
    wording=UrlWording(
        missing="must be an https URL",
        too_long=f"must be at most {MAX_URL_LENGTH} characters",
        unprintable="must not contain whitespace or control characters",
        malformed="must be an https URL with a valid host",
        bad_port="has an invalid port",
        no_host="must be an https URL with a valid host",
        credentials="must not contain user info (credentials belong in a secret)",
        not_https="must be an https URL",
    ),
    allow_query=True,
    printable_only=False,
)


def check_url_with(value: object, where: str, rules: UrlRules) -> str:
    """Judge a configured URL by ``rules``; return it (without a trailing slash when it has
    no query). Raises :class:`ValidationError` as ``<where>: <problem>``."""
    wording = rules.wording

    def refuse(problem: str) -> ValidationError:
        return ValidationError(f"{where}: {getattr(wording, problem)}")

    if not isinstance(value, str) or not value:
        raise refuse("missing")
    if len(value) > rules.max_length:
        raise refuse("too_long")
    if rules.printable_only:
        unprintable = any(c.isspace() or not c.isprintable() for c in value)
    else:
        unprintable = bool(CONTROL_CHARS.search(value)) or any(c.isspace() for c in value)
    if unprintable:
        raise refuse("unprintable")
    try:
        parts = urlsplit(value)
    except ValueError:
        raise refuse("malformed") from None
    for check in rules.checks:
        problem = check(parts, rules)
        if problem is not None:
            raise refuse(problem)
    return value.rstrip("/") if not parts.query else value


def check_url(value: object, field: str, policy: UrlPolicy, *, allow_query: bool = False) -> str:
    """Validate a configured or provider-supplied URL at config time; return it without a
    trailing slash. Raises :class:`ValidationError` naming ``field``.

    Syntax and scheme only: the connect-time SSRF guard (:mod:`printflow.net.ssrf`) still
    judges the resolved address of every request (see the module docstring for why both).
    """
    return check_url_with(
        value, field, replace(CONFIG_URL_RULES, policy=policy, allow_query=allow_query)
    )


def check_https_uri(value: object, where: str) -> str:
    """A flow step's https endpoint (query allowed), with the flow validator's wording."""
    return check_url_with(value, where, STEP_URI_RULES)
