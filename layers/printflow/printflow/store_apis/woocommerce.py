"""WooCommerce's REST API v3 (``{site}/wp-json/wc/v3``).

Write-back (the ``update-storefront-order`` step):

- note: ``POST /orders/{id}/notes`` ``{"note": ..., "customer_note": false}`` (201): a private
  note the shop's staff see; every call adds one, so the step records each note it wrote;
- status: ``PUT /orders/{id}`` ``{"status": "completed"}`` (``pending``, ``processing``,
  ``on-hold``, ``completed``, ``cancelled``, ``refunded``, ``failed``, or a plugin's own slug);
- tags: WooCommerce orders have none; the step writes them into the note instead.

Authentication is the REST API key pair as HTTP Basic credentials over HTTPS (the key needs
Read/Write permission). Errors answer ``{"code", "message", "data": {"status"}}``: 401/403
are a wrong or read-only key, 404 an unknown order, 400 a refused value; 429 (a host's rate
limiter) is waited out from ``Retry-After`` within the step's pacer, 5xx is transient.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import quote

import httpx

from printflow.domain.storefront import StoreApi
from printflow.errors import ValidationError
from printflow.store_apis.base import Pacer, StoreAnswer, StoreApiError, excerpt, exchange

API_PATH = "/wp-json/wc/v3"
MAX_ATTEMPTS = 3
_STATUS_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,19}$")


def woocommerce_status(status: str) -> str:
    """The status slug WooCommerce takes (``wc-completed`` and ``Completed`` -> ``completed``)."""
    slug = status.strip().lower().removeprefix("wc-").replace(" ", "-")
    if not _STATUS_SLUG.match(slug):
        raise ValidationError(f"{status!r} is not a WooCommerce order status slug")
    return slug


class WooCommerceWriteBack:
    """Notes and statuses on one site's orders. ``http`` should be a guarded client."""

    def __init__(
        self, http: httpx.Client, api: StoreApi, credentials: dict[str, str], pacer: Pacer
    ) -> None:
        self._http = http
        self._base = api.base_url + API_PATH
        self._auth = httpx.BasicAuth(credentials["consumerKey"], credentials["consumerSecret"])
        self._pacer = pacer

    def add_tags(self, order_id: str, tags: Sequence[str]) -> None:
        raise StoreApiError("WooCommerce orders have no tags", transient=False)

    def set_status(self, order_id: str, status: str | int) -> None:
        self._send("PUT", f"/orders/{quote(order_id, safe='')}", {"status": str(status)}, 200)

    def add_note(self, order_id: str, note: str, *, step_id: str) -> None:
        path = f"/orders/{quote(order_id, safe='')}/notes"
        self._send("POST", path, {"note": note, "customer_note": False}, 201)

    def _send(self, method: str, path: str, body: dict[str, object], expected: int) -> None:
        what = f"{method} {API_PATH}{path}"
        for _ in range(MAX_ATTEMPTS):
            answer = exchange(
                self._http,
                method,
                self._base + path,
                what,
                headers={"Accept": "application/json"},
                json_body=body,
                auth=self._auth,
            )
            if answer.status in (expected, 200, 201):
                return
            if answer.status == 429:
                wait = answer.retry_after_s
                self._pacer.wait(2.0 if wait is None else wait, f"{what}: HTTP 429")
                continue
            raise _error(what, answer)
        raise StoreApiError(
            f"{what}: still rate limited after {MAX_ATTEMPTS} tries", transient=True
        )


def _error(what: str, answer: StoreAnswer) -> StoreApiError:
    status = answer.status
    body = answer.body if isinstance(answer.body, dict) else {}
    message = body.get("message") or excerpt(answer.body)
    if status in (401, 403):
        return StoreApiError(
            f"{what}: HTTP {status}, the site refused the API key (check "
            f"storeApi.credentialsSecret and the key's Read/Write permission): {message}",
            transient=False,
        )
    if status >= 500:
        return StoreApiError(
            f"{what}: HTTP {status}", transient=True, retry_after_s=answer.retry_after_s
        )
    return StoreApiError(f"{what}: HTTP {status}: {message}", transient=False)
