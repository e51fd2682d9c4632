"""The consume-rest-api step: POST the order document to the URL the flow names.

The order document (``schema: printflow.order/v1``), sent as ``application/json`` UTF-8::

    {
      "schema": "printflow.order/v1",
      "order": {                          # the normalised order (Order.to_document)
        "storefrontId": "...", "orderId": "...", "platform": "shopify",
        "number": "1001", "name": "#1001", "email": "...", "currency": "EUR",
        "createdAt": "...", "complete": true, "delivery": {...},
        "lineItems": [{"id", "name", "quantity", "sku", "productId", "variantId",
                       "properties": [{"name", "value"}]}]
      },
      "status": "In progress",            # the order's status when this step ran
      "statusHistory": [{"status": "Received", "at": "...", "step"?: "..."}],
      "currentStep": "generate",          # the last step that completed, or null
      "error": {"step"?: "generate", "error": "StepFailed", "cause": "..."},
                                          # only when the step runs on an onError path
      "artifacts": [{"name", "contentType", "size", "sha256", "url", "expiresAt"}],
                                          # presigned S3 links; [] until files exist
      "flow": {"step": "consume", "execution": "arn:aws:states:...:execution:..."},
      "sentAt": "2025-01-01T12:00:00Z"
    }

Keys may be added to a v1 document; none is removed or changes meaning without a new schema.

Headers: ``Content-Type: application/json``, ``User-Agent: PrintFlow/<v>``,
``X-PrintFlow-Delivery`` (the same for every retry of this step in this execution: receivers
dedupe on it), the flow's own ``headers``, and with ``signingSecret``
``X-PrintFlow-Timestamp`` (unix seconds) and ``X-PrintFlow-Signature: v1=<hex>``, the
HMAC-SHA256 of ``{timestamp}.{body}``: the scheme PrintFlow's generic webhook accepts
(:func:`printflow.signing.generic_signature`).

Outcome: 2xx succeeds. 3xx fails for good (redirects are never followed: configure the final
URL). 408, 425, 429, 5xx, timeouts and network errors raise :class:`StepRetryable` (the
flow's ``Retry`` runs it again); any other 4xx, a blocked destination or a certificate that
does not verify raise :class:`StepFailed`. At most 64 KiB of an error response is read.
"""

from __future__ import annotations

import json
import re
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from printflow.adapters.order_table import OrderTable
from printflow.adapters.signing_secrets import SigningSecrets
from printflow.errors import StepFailed, StepRetryable
from printflow.flows.options import CONTROL_CHARS, FORBIDDEN_HEADERS
from printflow.net.ssrf import BlockedDestination, UnresolvableDestination
from printflow.signing import generic_signature
from printflow.steps.context import StepInvocation, load_order

SCHEMA = "printflow.order/v1"
USER_AGENT = "PrintFlow/0.1"
DELIVERY_HEADER = "X-PrintFlow-Delivery"
TIMESTAMP_HEADER = "X-PrintFlow-Timestamp"
SIGNATURE_HEADER = "X-PrintFlow-Signature"

MAX_RESPONSE_BYTES = 64 * 1024
EXCERPT_CHARS = 200
# Seconds kept back from the Lambda's remaining time for raising and reporting the outcome.
TIMEOUT_MARGIN_S = 2.0
MIN_BUDGET_S = 1.0
ARTIFACT_LINK_TTL_S = 24 * 3600
MAX_HEADERS = 50

RETRYABLE_STATUSES = frozenset({408, 425, 429})
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")
_UNPRINTABLE_RUN = re.compile(r"[\s\x00-\x1f\x7f-\x9f\u2028\u2029]+")

# bucket, key, expires_in_s -> a presigned GET URL.
Presigner = Callable[[str, str, int], str]


@dataclass(frozen=True, slots=True)
class RestStepOptions:
    uri: str
    headers: tuple[tuple[str, str], ...] = ()
    signing_secret: str | None = None


@dataclass(frozen=True, slots=True)
class RestDelivery:
    """A delivered document: the receiver's status and the id it can dedupe on."""

    status: int
    delivery_id: str


def parse_rest_options(options: Mapping[str, Any]) -> RestStepOptions:
    """The step's options, checked again at run time (the event may not come from a
    validated flow). The URL's scheme and host are the SSRF guard's to judge: an allowlisted
    local sink may use http, which flow validation alone would refuse.
    """
    uri = options.get("uri")
    if not isinstance(uri, str) or not uri.strip():
        raise StepFailed("options.uri: required (an https URL)")
    raw_headers = options.get("headers") or {}
    if not isinstance(raw_headers, dict) or len(raw_headers) > MAX_HEADERS:
        raise StepFailed(f"options.headers: an object of at most {MAX_HEADERS} string headers")
    headers: list[tuple[str, str]] = []
    for name, value in raw_headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.match(name):
            raise StepFailed(f"options.headers: {name!r} is not a valid header name")
        lowered = name.lower()
        if lowered in FORBIDDEN_HEADERS or lowered.startswith("x-printflow-"):
            raise StepFailed(f"options.headers.{name}: set by PrintFlow, cannot be overridden")
        if not isinstance(value, str) or CONTROL_CHARS.search(value.replace("\t", " ")):
            raise StepFailed(f"options.headers.{name}: a string without control characters")
        headers.append((name, value))
    secret = options.get("signingSecret")
    if secret is not None and (not isinstance(secret, str) or not secret):
        raise StepFailed("options.signingSecret: the name of a Secrets Manager secret")
    return RestStepOptions(uri=uri.strip(), headers=tuple(headers), signing_secret=secret)


# -- the document -----------------------------------------------------------------------------


def artifact_links(
    artifacts: Any,
    presign: Presigner | None,
    *,
    now: float,
    expires_s: int = ARTIFACT_LINK_TTL_S,
) -> list[dict[str, Any]]:
    """Download links for the order's artifacts; ``[]`` when there are none (yet).

    The seam for the download feature: it stores ``item["artifacts"]`` as entries with at
    least ``bucket`` and ``key`` (``filename``, ``contentType``, ``size``, ``sha256`` when
    known) and the wiring passes an S3 presigner. Without a presigner no link can be made,
    so no artifact is listed rather than one a receiver cannot fetch.
    """
    if presign is None or not isinstance(artifacts, list):
        return []
    expires_at = iso_timestamp(now + expires_s)
    links: list[dict[str, Any]] = []
    for artifact in artifacts:
        if not isinstance(artifact, dict):
            continue
        bucket, key = artifact.get("bucket"), artifact.get("key")
        if not isinstance(bucket, str) or not isinstance(key, str) or not bucket or not key:
            continue
        links.append(
            {
                "name": artifact.get("filename") or key.rsplit("/", 1)[-1],
                "contentType": artifact.get("contentType"),
                "size": artifact.get("size"),
                "sha256": artifact.get("sha256"),
                "url": presign(bucket, key, expires_s),
                "expiresAt": expires_at,
            }
        )
    return links


def order_document(
    item: Mapping[str, Any],
    invocation: StepInvocation,
    *,
    artifacts: list[dict[str, Any]],
    sent_at: str,
) -> dict[str, Any]:
    """The ``printflow.order/v1`` document for a stored order item (see the module doc)."""
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "order": item.get("order") or {},
        "status": item.get("status"),
        "statusHistory": item.get("statusHistory") or [],
        "currentStep": item.get("currentStep"),
    }
    if invocation.error is not None:
        doc["error"] = invocation.error.to_document()
    doc["artifacts"] = artifacts
    doc["flow"] = {"step": invocation.step_id, "execution": invocation.execution}
    doc["sentAt"] = sent_at
    return doc


def encode_document(document: Mapping[str, Any]) -> bytes:
    """The exact bytes that are sent and signed."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def iso_timestamp(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def request_budget(remaining_s: float, max_timeout_s: float) -> float:
    """Seconds one call may take, so the step finishes before the Lambda times out.

    httpx timeouts apply per network wait; each wait gets a third of the budget and the
    response is read against a deadline, which keeps the whole call within about 4/3 of the
    budget, that is within the remaining time less the margin.
    """
    budget = min(max_timeout_s, (remaining_s - TIMEOUT_MARGIN_S) * 0.75)
    if budget < MIN_BUDGET_S:
        raise StepRetryable("not enough time left in this invocation to call the endpoint")
    return budget


# -- the step ---------------------------------------------------------------------------------


class RestStep:
    """POSTs the order document through a guarded httpx client (see :mod:`printflow.net`)."""

    def __init__(
        self,
        table: OrderTable,
        http: httpx.Client,
        secrets: SigningSecrets,
        *,
        max_timeout_s: float = 10.0,
        presign: Presigner | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._table = table
        self._http = http
        self._secrets = secrets
        self._max_timeout_s = max_timeout_s
        self._presign = presign
        self._clock = clock
        self._monotonic = monotonic

    def run(self, invocation: StepInvocation, *, remaining_s: float) -> RestDelivery:
        options = parse_rest_options(invocation.options)
        item = load_order(self._table, invocation.order)
        invocation = invocation.with_recorded_error(item)
        now = self._clock()
        document = order_document(
            item,
            invocation,
            artifacts=artifact_links(item.get("artifacts"), self._presign, now=now),
            sent_at=iso_timestamp(now),
        )
        body = encode_document(document)
        headers = self._headers(options, invocation, body, now)
        budget = request_budget(remaining_s, self._max_timeout_s)
        status = self._post(options.uri, body, headers, budget)
        # For operators (`printflow orders show`): which delivery the receiver accepted.
        self._table.record_rest_delivery(
            invocation.order, invocation.step_id, invocation.delivery_id, status, iso_timestamp(now)
        )
        return RestDelivery(status=status, delivery_id=invocation.delivery_id)

    def _headers(
        self, options: RestStepOptions, invocation: StepInvocation, body: bytes, now: float
    ) -> dict[str, str]:
        headers = {"User-Agent": USER_AGENT}
        headers.update(options.headers)
        headers.update(
            {
                "Content-Type": "application/json",
                # Compressed answers are not decoded: a small gzip body can expand to a
                # large one, and only an excerpt of error bodies is ever read.
                "Accept-Encoding": "identity",
                DELIVERY_HEADER: invocation.delivery_id,
            }
        )
        if options.signing_secret:
            key = self._secrets.key(options.signing_secret)
            timestamp = str(int(now))
            headers[TIMESTAMP_HEADER] = timestamp
            headers[SIGNATURE_HEADER] = generic_signature(key, timestamp, body)
        return headers

    def _post(self, uri: str, body: bytes, headers: dict[str, str], budget: float) -> int:
        target = display_target(uri)
        per_wait = budget / 3
        timeout = httpx.Timeout(per_wait, connect=min(5.0, per_wait))
        deadline = self._monotonic() + budget
        try:
            with self._http.stream(
                "POST", uri, content=body, headers=headers, timeout=timeout
            ) as response:
                status = response.status_code
                if 200 <= status < 300:
                    return status
                excerpt = body_excerpt(response, deadline, self._monotonic)
        except BlockedDestination as exc:
            raise StepFailed(f"POST {target} refused: {exc}") from exc
        except UnresolvableDestination as exc:
            raise StepRetryable(f"POST {target}: {exc}") from exc
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise StepFailed(f"POST {target} refused: {exc}") from exc
        except httpx.TimeoutException as exc:
            raise StepRetryable(f"POST {target} timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            if _is_certificate_error(exc):
                raise StepFailed(f"POST {target}: TLS certificate verification failed") from exc
            raise StepRetryable(f"POST {target} failed ({type(exc).__name__})") from exc
        raise status_error(target, status, excerpt)


def status_error(target: str, status: int, excerpt: str) -> StepFailed | StepRetryable:
    """The exception for a non-2xx answer (see the module doc for the mapping)."""
    detail = f"POST {target} answered {status}" + (f": {excerpt}" if excerpt else "")
    if 300 <= status < 400:
        return StepFailed(f"{detail} (redirects are not followed; configure the final URL)")
    if status in RETRYABLE_STATUSES or status >= 500:
        return StepRetryable(detail)
    return StepFailed(detail)


def body_excerpt(
    response: httpx.Response, deadline: float, monotonic: Callable[[], float] = time.monotonic
) -> str:
    """A short, single-line, printable excerpt of at most the first 64 KiB of the body."""
    encoding = response.headers.get("content-encoding", "identity").lower()
    if encoding not in ("", "identity"):
        return f"({encoding}-encoded body)"
    received = bytearray()
    try:
        for chunk in response.iter_raw():
            received += chunk[: MAX_RESPONSE_BYTES - len(received)]
            if len(received) >= MAX_RESPONSE_BYTES or monotonic() > deadline:
                break
    except httpx.StreamConsumed:
        received += response.content[:MAX_RESPONSE_BYTES]  # already in memory (in-process)
    except httpx.HTTPError:
        pass  # the status already says what happened; the excerpt is a courtesy
    text = _UNPRINTABLE_RUN.sub(" ", received.decode("utf-8", "replace")).strip()
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"


def display_target(uri: str) -> str:
    """``scheme://host[:port]`` for messages: paths and queries may carry tokens."""
    try:
        url = httpx.URL(uri)
    except httpx.InvalidURL:
        return "the configured URL"
    if not url.host:
        return "the configured URL"
    host = f"[{url.host}]" if ":" in url.host else url.host
    port = f":{url.port}" if url.port is not None else ""
    return f"{url.scheme}://{host}{port}"


def _is_certificate_error(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
