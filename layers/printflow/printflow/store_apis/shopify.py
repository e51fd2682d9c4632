"""Shopify's Admin GraphQL API.

Write-back (the ``update-storefront-order`` step):

- tags: ``tagsAdd`` adds to the order's tags and never replaces them; a tag it has already
  is left alone, so a repeat is harmless;
- note: ``metafieldsSet`` on the order, namespace ``printflow``, key ``note-{step}``, type
  ``multi_line_text_field``: the merchant's own order note is never overwritten (``orderUpdate``
  would replace it), and setting the same metafield again changes nothing;
- status: Shopify orders have no status an app sets (fulfilment is a workflow of its own), so
  a ``status`` is refused for Shopify storefronts when the flow is checked against them.

Requests go to ``{baseUrl}/admin/api/{apiVersion}/graphql.json`` with
``X-Shopify-Access-Token`` (an Admin API token with ``write_orders``). Rate limits are by
query cost: every answer carries ``extensions.cost.throttleStatus`` (``currentlyAvailable``,
``restoreRate``); before a request the client waits until the bucket holds the request's
cost, a ``THROTTLED`` error (HTTP 200) is waited out from the same figures, and a 429 from
its ``Retry-After``, within the step's :class:`~printflow.store_apis.base.Pacer`.
``userErrors`` are validation failures: permanent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from printflow.domain.storefront import StoreApi
from printflow.store_apis.base import Pacer, StoreAnswer, StoreApiError, excerpt, exchange

ORDER_GID_PREFIX = "gid://shopify/Order/"
NOTE_NAMESPACE = "printflow"
# What a small mutation costs (Shopify charges 10 per mutation plus selections).
MUTATION_COST = 10
MAX_ATTEMPTS = 5

TAGS_ADD = (
    "mutation tagsAdd($id: ID!, $tags: [String!]!) { "
    "tagsAdd(id: $id, tags: $tags) { node { id } userErrors { field message } } }"
)
METAFIELDS_SET = (
    "mutation metafieldsSet($metafields: [MetafieldsSetInput!]!) { "
    "metafieldsSet(metafields: $metafields) { metafields { id key } "
    "userErrors { field message code } } }"
)


def order_gid(order_id: str) -> str:
    """The order's GID (the webhook's ``admin_graphql_api_id``) from its numeric id."""
    return order_id if order_id.startswith(ORDER_GID_PREFIX) else ORDER_GID_PREFIX + order_id


def note_key(step_id: str) -> str:
    """Metafield keys are 2-64 of letters, digits, '-' and '_': step ids fit."""
    return f"note-{step_id}"[:64]


class ShopifyWriteBack:
    """Tags and notes on one shop's orders. ``http`` should be a guarded client."""

    def __init__(
        self, http: httpx.Client, api: StoreApi, credentials: dict[str, str], pacer: Pacer
    ) -> None:
        self._http = http
        self._url = f"{api.base_url}/admin/api/{api.api_version}/graphql.json"
        self._headers = {
            "X-Shopify-Access-Token": credentials["accessToken"],
            "Accept": "application/json",
        }
        self._pacer = pacer
        # The cost bucket as the last answer left it; None until the first answer.
        self._available: float | None = None
        self._restore_rate = 50.0

    def add_tags(self, order_id: str, tags: Sequence[str]) -> None:
        data = self._mutate("tagsAdd", TAGS_ADD, {"id": order_gid(order_id), "tags": list(tags)})
        if data.get("node") is None:
            raise StoreApiError(f"tagsAdd: the shop has no order {order_id!r}", transient=False)

    def set_status(self, order_id: str, status: str | int) -> None:
        raise StoreApiError("Shopify orders have no status PrintFlow can set", transient=False)

    def add_note(self, order_id: str, note: str, *, step_id: str) -> None:
        metafield = {
            "ownerId": order_gid(order_id),
            "namespace": NOTE_NAMESPACE,
            "key": note_key(step_id),
            "type": "multi_line_text_field",
            "value": note,
        }
        self._mutate("metafieldsSet", METAFIELDS_SET, {"metafields": [metafield]})

    # -- the GraphQL exchange -------------------------------------------------------------

    def _mutate(self, name: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        data = self.graphql(query, variables, name)
        result = data.get(name)
        if not isinstance(result, dict):
            raise StoreApiError(f"{name}: the answer has no {name} result", transient=False)
        errors = result.get("userErrors") or []
        if errors:
            messages = "; ".join(str(e.get("message")) for e in errors if isinstance(e, dict))
            raise StoreApiError(f"{name}: the shop refused it: {messages}", transient=False)
        return result

    def graphql(self, query: str, variables: dict[str, Any], what: str) -> dict[str, Any]:
        """The ``data`` of one GraphQL request, throttling waited out within the pacer."""
        for _ in range(MAX_ATTEMPTS):
            if self._available is not None and self._available < MUTATION_COST:
                wait = (MUTATION_COST - self._available) / self._restore_rate
                self._pacer.wait(wait, f"{what}: the shop's query cost budget is spent")
            answer = exchange(
                self._http,
                "POST",
                self._url,
                what,
                headers=self._headers,
                json_body={"query": query, "variables": variables},
            )
            data = self._read(answer, what)
            if data is not None:
                return data
        raise StoreApiError(f"{what}: still throttled after {MAX_ATTEMPTS} tries", transient=True)

    def _read(self, answer: StoreAnswer, what: str) -> dict[str, Any] | None:
        """``data``, or None when throttled (after waiting); raises for anything else."""
        status = answer.status
        if status in (401, 403):
            raise StoreApiError(
                f"{what}: HTTP {status}, the shop refused the access token "
                "(check storeApi.credentialsSecret and the app's write_orders scope)",
                transient=False,
            )
        if status == 429:
            wait = answer.retry_after_s
            self._pacer.wait(2.0 if wait is None else wait, f"{what}: HTTP 429")
            return None
        if status >= 500:
            raise StoreApiError(
                f"{what}: HTTP {status}", transient=True, retry_after_s=answer.retry_after_s
            )
        if status != 200 or not isinstance(answer.body, dict):
            raise StoreApiError(f"{what}: HTTP {status}: {excerpt(answer.body)}", transient=False)
        doc = answer.body
        self._note_cost(doc)
        errors = doc.get("errors")
        if errors:
            if _throttled(errors):
                self._pacer.wait(self._throttle_wait(doc), f"{what}: THROTTLED")
                return None
            raise StoreApiError(f"{what}: {excerpt(errors)}", transient=False)
        data = doc.get("data")
        if not isinstance(data, dict):
            raise StoreApiError(f"{what}: the answer has no data", transient=False)
        return data

    def _note_cost(self, doc: dict[str, Any]) -> None:
        throttle = ((doc.get("extensions") or {}).get("cost") or {}).get("throttleStatus") or {}
        available, rate = throttle.get("currentlyAvailable"), throttle.get("restoreRate")
        if isinstance(available, int | float):
            self._available = float(available)
        if isinstance(rate, int | float) and rate > 0:
            self._restore_rate = float(rate)

    def _throttle_wait(self, doc: dict[str, Any]) -> float:
        cost = (doc.get("extensions") or {}).get("cost") or {}
        requested = cost.get("requestedQueryCost")
        needed = float(requested) if isinstance(requested, int | float) else MUTATION_COST
        available = self._available or 0.0
        self._available = None  # the wait refills it; the next answer says by how much
        return max(needed - available, 0.0) / self._restore_rate


def _throttled(errors: Any) -> bool:
    return isinstance(errors, list) and any(
        isinstance(e, dict) and (e.get("extensions") or {}).get("code") == "THROTTLED"
        for e in errors
    )
