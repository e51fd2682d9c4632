"""Per-type validation of a step's ``options`` (and its ``retry`` extension).

Every check raises :class:`~printflow.errors.ValidationError` with the full location of the
field (``step 'consume'.options.uri: must be an https URL``); where one document holds
several problems, :class:`~printflow.errors.ValidationErrors` carries them all (its message
is the first one). The step Lambdas can call
:func:`parse_options` on the ``step.options`` they receive to get the typed options back.

Keys ending in ``.$`` are refused anywhere inside options: the options are embedded in the
state machine's ``Parameters``, where such a key would be evaluated as a JSONPath (reading
the execution's data) instead of being passed through as text.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from printflow.errors import ValidationError, ValidationErrors
from printflow.flows.model import (
    ConsumeRestApiOptions,
    GenerateProductionFilesOptions,
    RetryPolicy,
    SendEmailOptions,
    StepOptions,
    StepType,
    UpdateStorefrontOrderOptions,
)
from printflow.flows.placeholders import (
    NOTE_PLACEHOLDERS,
    PLACEHOLDER_PATTERN,
    PLACEHOLDERS,
    RECIPIENT_PLACEHOLDERS,
    has_unterminated_placeholder,
    placeholder_names,
)

MAX_RECIPIENTS = 50
MAX_SUBJECT_LENGTH = 998  # RFC 5322 line length
MAX_MESSAGE_LENGTH = 100_000
MAX_URI_LENGTH = 2048
MAX_HEADERS = 50
MAX_HEADER_VALUE_LENGTH = 4096
MAX_PROVIDER_OPTIONS_BYTES = 4096

# Any C0/C1 control character (CR and LF included) or Unicode line/paragraph separator.
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# A message body may be multi-line: tab, LF and CR are allowed there, nothing else.
_BODY_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")

_EMAIL = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`|~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`|~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])$"
)
_HOST_NAME = re.compile(
    r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$"
)
# RFC 9110 token characters.
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")
# Headers the HTTP client sets itself; letting a flow override them breaks framing or routing.
FORBIDDEN_HEADERS = frozenset(
    {"host", "content-length", "content-type", "transfer-encoding", "connection"}
)
_SECRET_NAME = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")
_FILE_FORMAT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,31}$")

_OPTION_KEYS: dict[StepType, frozenset[str]] = {
    StepType.GENERATE_PRODUCTION_FILES: frozenset({"fileFormat", "provider"}),
    StepType.CONSUME_REST_API: frozenset({"uri", "headers", "signingSecret"}),
    StepType.SEND_EMAIL: frozenset({"recipients", "subject", "message"}),
    StepType.UPDATE_STOREFRONT_ORDER: frozenset({"tags", "status", "note"}),
}
MAX_TAGS = 20
MAX_TAG_LENGTH = 40  # Shopify's limit per tag
MAX_NOTE_LENGTH = 5000
# A status as the platforms name them: "completed", "on-hold", "Awaiting Shipment", "10".
_STATUS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _-]{0,39}$")

_RETRY_LIMITS: dict[str, tuple[int, int]] = {
    "maxAttempts": (0, 10),
    "intervalSeconds": (1, 300),
    "backoffRate": (1, 10),
    "maxDelaySeconds": (1, 3600),
}


def fail(where: str, problem: str) -> ValidationError:
    """The one message shape: ``<location>: <problem>``."""
    return ValidationError(f"{where}: {problem}")


def is_int(value: Any) -> bool:
    """JSON integers only: ``True`` is an int to Python but not a number of seconds."""
    return isinstance(value, int) and not isinstance(value, bool)


T = TypeVar("T")


class ErrorCollector:
    """Runs independent checks and keeps every validation error they raise, in order."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def check(self, check: Callable[..., T], *args: Any) -> T | None:
        """``check(*args)``'s result, or None after recording its error(s)."""
        try:
            return check(*args)
        except ValidationErrors as exc:
            self.messages.extend(exc.messages)
        except ValidationError as exc:
            self.messages.append(str(exc))
        return None

    def add(self, error: ValidationError) -> None:
        self.messages.append(str(error))

    def raise_if_any(self) -> None:
        if self.messages:
            raise ValidationErrors(self.messages)


def parse_options(step_type: StepType, raw: Any, where: str) -> StepOptions:
    """Validate ``raw`` as the options of ``step_type``; ``where`` locates them in messages.

    Raises :class:`ValidationErrors` with every problem found (its message is the first).
    """
    if raw is None:
        raise fail(where, "required (an object)")
    if not isinstance(raw, dict):
        raise fail(where, "must be an object")
    known = _OPTION_KEYS[step_type]
    errors = ErrorCollector()
    errors.check(lambda: refuse_substitution_markers(raw, where))
    for key in raw:
        if key not in known:
            errors.add(
                fail(f"{where}.{key}", f"unknown option (allowed: {', '.join(sorted(known))})")
            )
    options = errors.check(lambda: _OPTION_PARSERS[step_type](raw, where))
    errors.raise_if_any()
    assert options is not None  # no error was recorded, so the parser returned
    return options


def refuse_substitution_markers(value: Any, where: str) -> None:
    """Refuse ``${`` anywhere in ``value`` (keys included).

    The compiled definition is deployed with ``DefinitionSubstitutions``, which would treat
    ``${Name}`` in a flow's text as a deployment variable.
    """
    if isinstance(value, str):
        if "${" in value:
            raise fail(where, "'${' is reserved for deployment substitutions")
    elif isinstance(value, dict):
        for key, item in value.items():
            refuse_substitution_markers(key, f"{where}.{key}")
            refuse_substitution_markers(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            refuse_substitution_markers(item, f"{where}[{index}]")


def parse_retry(raw: Any, where: str) -> RetryPolicy | None:
    """Per-step retry overrides; keys left out keep the defaults."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise fail(where, "must be an object")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in _RETRY_LIMITS:
            allowed = ", ".join(sorted(_RETRY_LIMITS))
            raise fail(f"{where}.{key}", f"unknown retry setting (allowed: {allowed})")
        low, high = _RETRY_LIMITS[key]
        if key == "backoffRate":
            numeric = is_int(value) or (isinstance(value, float) and math.isfinite(value))
            if not numeric or not low <= value <= high:
                raise fail(f"{where}.{key}", f"must be a number from {low} to {high}")
            values[key] = float(value)
        elif not is_int(value) or not low <= value <= high:
            raise fail(f"{where}.{key}", f"must be an integer from {low} to {high}")
        else:
            values[key] = value
    defaults = RetryPolicy()
    return RetryPolicy(
        max_attempts=values.get("maxAttempts", defaults.max_attempts),
        interval_seconds=values.get("intervalSeconds", defaults.interval_seconds),
        backoff_rate=values.get("backoffRate", defaults.backoff_rate),
        max_delay_seconds=values.get("maxDelaySeconds", defaults.max_delay_seconds),
    )


# -- generate-production-files ----------------------------------------------------------------


def _generate_options(raw: dict[str, Any], where: str) -> GenerateProductionFilesOptions:
    errors = ErrorCollector()
    file_format = raw.get("fileFormat")
    if file_format is not None and (
        not isinstance(file_format, str) or not _FILE_FORMAT.fullmatch(file_format)
    ):
        errors.add(
            fail(
                f"{where}.fileFormat",
                "must be a short format name (letters, digits, '.', '_', '+', '-'; <= 32 chars)",
            )
        )
    provider = raw.get("provider")
    errors.check(lambda: _check_provider_options(provider, where))
    errors.raise_if_any()
    return GenerateProductionFilesOptions(file_format=file_format, provider=provider)


def _check_provider_options(provider: Any, where: str) -> None:
    if provider is not None:
        if not isinstance(provider, dict):
            raise fail(f"{where}.provider", "must be an object")
        try:
            encoded = json.dumps(provider, allow_nan=False, separators=(",", ":"))
        except (TypeError, ValueError):
            raise fail(f"{where}.provider", "must be JSON-serialisable") from None
        if len(encoded.encode()) > MAX_PROVIDER_OPTIONS_BYTES:
            raise fail(f"{where}.provider", f"must be at most {MAX_PROVIDER_OPTIONS_BYTES} bytes")
        _refuse_path_keys(provider, f"{where}.provider")


def _refuse_path_keys(value: Any, where: str) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if str(key).endswith(".$"):
                raise fail(f"{where}.{key}", "keys ending in '.$' are reserved by Step Functions")
            _refuse_path_keys(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_path_keys(item, f"{where}[{index}]")


# -- consume-rest-api -------------------------------------------------------------------------


def _consume_options(raw: dict[str, Any], where: str) -> ConsumeRestApiOptions:
    errors = ErrorCollector()
    uri = raw.get("uri")
    if uri is None:
        errors.add(fail(f"{where}.uri", "required (an https URL)"))
    else:
        errors.check(lambda: _check_https_uri(uri, f"{where}.uri"))
    headers = errors.check(lambda: _headers(raw.get("headers"), f"{where}.headers"))
    secret = raw.get("signingSecret")
    if secret is not None and (not isinstance(secret, str) or not _SECRET_NAME.fullmatch(secret)):
        errors.add(
            fail(
                f"{where}.signingSecret",
                "must be the name of a Secrets Manager secret ([A-Za-z0-9/_+=.@-], <= 512 chars)",
            )
        )
    errors.raise_if_any()
    assert isinstance(uri, str)
    return ConsumeRestApiOptions(uri=uri, headers=headers or (), signing_secret=secret)


def _check_https_uri(uri: Any, where: str) -> None:
    if not isinstance(uri, str) or not uri:
        raise fail(where, "must be an https URL")
    if len(uri) > MAX_URI_LENGTH:
        raise fail(where, f"must be at most {MAX_URI_LENGTH} characters")
    if CONTROL_CHARS.search(uri) or any(ch.isspace() for ch in uri):
        raise fail(where, "must not contain whitespace or control characters")
    parts = urlsplit(uri)
    if parts.scheme.lower() != "https":
        raise fail(where, "must be an https URL")
    if "@" in parts.netloc:
        raise fail(where, "must not contain user info (credentials belong in a secret)")
    host = parts.hostname
    if not host or not _valid_host(host):
        raise fail(where, "must be an https URL with a valid host")
    try:
        parts.port  # noqa: B018 -- raises ValueError for a malformed port
    except ValueError:
        raise fail(where, "has an invalid port") from None


def _valid_host(host: str) -> bool:
    if _HOST_NAME.fullmatch(host):
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _headers(raw: Any, where: str) -> tuple[tuple[str, str], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise fail(where, "must be an object of header name to string value")
    if len(raw) > MAX_HEADERS:
        raise fail(where, f"at most {MAX_HEADERS} headers")
    seen: set[str] = set()
    headers: list[tuple[str, str]] = []
    for name, value in raw.items():
        at = f"{where}.{name}"
        if not _HEADER_NAME.fullmatch(name):
            raise fail(at, "header name must be 1-128 token characters")
        if name.endswith(".$"):
            raise fail(at, "header names ending in '.$' are reserved by Step Functions")
        lowered = name.lower()
        if lowered in FORBIDDEN_HEADERS:
            raise fail(at, "this header is set by PrintFlow and cannot be overridden")
        if lowered in seen:
            raise fail(at, "duplicate header (names are case-insensitive)")
        seen.add(lowered)
        if not isinstance(value, str):
            raise fail(at, "header value must be a string")
        if CONTROL_CHARS.search(value.replace("\t", " ")):
            raise fail(at, "header value must not contain CR, LF or other control characters")
        if len(value) > MAX_HEADER_VALUE_LENGTH:
            raise fail(at, f"header value must be at most {MAX_HEADER_VALUE_LENGTH} characters")
        headers.append((name, value))
    return tuple(headers)


# -- send-email -------------------------------------------------------------------------------


def _email_options(raw: dict[str, Any], where: str) -> SendEmailOptions:
    errors = ErrorCollector()
    recipients = raw.get("recipients")
    errors.check(lambda: _check_recipients(recipients, where))
    subject = errors.check(lambda: _check_subject(raw.get("subject"), where))
    message = errors.check(lambda: _check_message(raw.get("message"), where))
    errors.raise_if_any()
    assert isinstance(recipients, list) and subject is not None and message is not None
    return SendEmailOptions(recipients=tuple(recipients), subject=subject, message=message)


def _check_recipients(recipients: Any, where: str) -> None:
    if recipients is None:
        raise fail(f"{where}.recipients", "required (a list of email addresses)")
    if not isinstance(recipients, list) or not recipients:
        raise fail(f"{where}.recipients", "must be a non-empty list of email addresses")
    if len(recipients) > MAX_RECIPIENTS:
        raise fail(f"{where}.recipients", f"at most {MAX_RECIPIENTS} recipients")
    errors = ErrorCollector()
    for index, recipient in enumerate(recipients):
        errors.check(_check_recipient, recipient, f"{where}.recipients[{index}]")
    errors.raise_if_any()


def _check_subject(subject: Any, where: str) -> str:
    if not isinstance(subject, str) or not subject.strip():
        raise fail(f"{where}.subject", "required (a non-empty string)")
    if CONTROL_CHARS.search(subject):
        raise fail(f"{where}.subject", "must not contain CR, LF or other control characters")
    if len(subject) > MAX_SUBJECT_LENGTH:
        raise fail(f"{where}.subject", f"must be at most {MAX_SUBJECT_LENGTH} characters")
    _check_placeholders(subject, f"{where}.subject")
    return subject


def _check_message(message: Any, where: str) -> str:
    if not isinstance(message, str) or not message.strip():
        raise fail(f"{where}.message", "required (a non-empty string)")
    if _BODY_CONTROL_CHARS.search(message):
        raise fail(f"{where}.message", "must not contain control characters (except newlines)")
    if len(message) > MAX_MESSAGE_LENGTH:
        raise fail(f"{where}.message", f"must be at most {MAX_MESSAGE_LENGTH} characters")
    _check_placeholders(message, f"{where}.message")
    return message


def _check_recipient(recipient: Any, where: str) -> None:
    if not isinstance(recipient, str):
        raise fail(where, "must be a string")
    if CONTROL_CHARS.search(recipient):
        raise fail(where, "must not contain CR, LF or other control characters")
    if "{{" in recipient or "}}" in recipient:
        match = PLACEHOLDER_PATTERN.fullmatch(recipient)
        if match is None or match.group(1).strip() not in RECIPIENT_PLACEHOLDERS:
            allowed = " or ".join(f"{{{{{name}}}}}" for name in sorted(RECIPIENT_PLACEHOLDERS))
            raise fail(where, f"a placeholder recipient must be exactly {allowed}")
        return
    if len(recipient) > 254 or len(recipient.partition("@")[0]) > 64:
        raise fail(where, f"invalid email address {recipient!r}")
    if not _EMAIL.fullmatch(recipient):
        raise fail(where, f"invalid email address {recipient!r}")


def _check_placeholders(text: str, where: str, allowed: frozenset[str] = PLACEHOLDERS) -> None:
    for name in placeholder_names(text):
        if name not in allowed:
            known = ", ".join(sorted(allowed))
            raise fail(where, f"unknown placeholder '{{{{{name}}}}}' (known: {known})")
    if has_unterminated_placeholder(text):
        raise fail(where, "unbalanced '{{' or '}}' (placeholders look like {{order.name}})")


# -- update-storefront-order ------------------------------------------------------------------


def _update_storefront_options(raw: dict[str, Any], where: str) -> UpdateStorefrontOrderOptions:
    tags = _tags(raw.get("tags"), f"{where}.tags")
    status = raw.get("status")
    if status is not None and (not isinstance(status, str) or not _STATUS.fullmatch(status)):
        raise fail(
            f"{where}.status",
            "a status as the platform names it (letters, digits, ' ', '_', '-'; <= 40 chars)",
        )
    note = raw.get("note")
    if note is not None:
        if not isinstance(note, str) or not note.strip():
            raise fail(f"{where}.note", "a non-empty template")
        if _BODY_CONTROL_CHARS.search(note):
            raise fail(f"{where}.note", "must not contain control characters (except newlines)")
        if len(note) > MAX_NOTE_LENGTH:
            raise fail(f"{where}.note", f"must be at most {MAX_NOTE_LENGTH} characters")
        _check_placeholders(note, f"{where}.note", NOTE_PLACEHOLDERS)
    if not tags and status is None and note is None:
        raise fail(where, "give at least one of tags, status, note")
    return UpdateStorefrontOrderOptions(tags=tags, status=status, note=note)


def _tags(raw: Any, where: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not raw or len(raw) > MAX_TAGS:
        raise fail(where, f"a list of 1-{MAX_TAGS} tags")
    tags: dict[str, str] = {}
    for index, tag in enumerate(raw):
        at = f"{where}[{index}]"
        if not isinstance(tag, str) or not tag.strip():
            raise fail(at, "a non-empty string")
        if len(tag) > MAX_TAG_LENGTH:
            raise fail(at, f"at most {MAX_TAG_LENGTH} characters")
        # Shopify keeps tags as one comma-separated list: a comma would split the tag.
        if "," in tag or CONTROL_CHARS.search(tag) or "{{" in tag or "}}" in tag:
            raise fail(at, "no commas, control characters or placeholders")
        tags.setdefault(tag.strip().casefold(), tag.strip())
    return tuple(tags.values())


_OPTION_PARSERS: dict[StepType, Callable[[dict[str, Any], str], StepOptions]] = {
    StepType.GENERATE_PRODUCTION_FILES: _generate_options,
    StepType.CONSUME_REST_API: _consume_options,
    StepType.SEND_EMAIL: _email_options,
    StepType.UPDATE_STOREFRONT_ORDER: _update_storefront_options,
}
