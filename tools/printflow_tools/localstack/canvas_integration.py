"""What a Customer's Canvas storefront integration does when its shop takes an order.

In production, the shop's Customer's Canvas plugin (WooCommerce, Shopify, ...) creates one
project per designed line item the moment the order is placed; PrintFlow only finds them.
On the local stack no plugin runs, so an order sent to a Customer's Canvas storefront would
wait for projects forever. This stands in for the plugin: when the webhook function accepts
a new order (202) for a storefront registered with the Customer's Canvas sandbox (the demo's
or one put with ``printflow storefronts put``), it creates the order's projects there, under
the storefront's ``provider.storefrontId``, one per line item, each with a pipeline that is
done on its second poll (``pipeline`` changes that). An order that already has projects (a
duplicate delivery, or projects a test seeded) gets none.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from typing import Any

from printflow.domain.order import LineItem
from printflow.domain.storefront import ProviderName, Storefront
from printflow.errors import PrintFlowError
from printflow.platforms.registry import normalise
from printflow_tools.sandboxes import CustomersCanvasSandbox, Pipeline

WEBHOOK_FUNCTION = "WebhookFunction"


class CanvasStorefrontIntegration:
    """Creates Customer's Canvas projects for orders the webhook accepted (see module doc)."""

    def __init__(
        self,
        sandbox: CustomersCanvasSandbox,
        storefronts: Callable[[str], Storefront | None],
        pipeline: Pipeline | None = None,
    ) -> None:
        self._sandbox = sandbox
        self._storefronts = storefronts  # the registered storefront, by PrintFlow id
        # Each project's pipeline: by default still running at the first poll, done at the
        # next (the vendor's 60 s later), as in real life.
        self.pipeline = pipeline or Pipeline.completes(after_polls=1)
        self._lock = threading.Lock()
        self.created: list[tuple[str, str, list[int]]] = []

    def canvas_storefront_of(self, storefront_id: str) -> int | None:
        """Customer's Canvas's own id of the storefront, when it renders with this sandbox."""
        storefront = self._storefronts(storefront_id)
        provider = storefront.provider if storefront is not None else None
        if provider is None or provider.name is not ProviderName.CUSTOMERS_CANVAS:
            return None
        base_url = str(provider.settings.get("baseUrl", ""))
        canvas_id = provider.settings.get("storefrontId")
        if base_url.rstrip("/") != self._sandbox.base_url or not isinstance(canvas_id, int):
            return None  # a storefront of a real Customer's Canvas: its own plugin runs
        return canvas_id

    def after_invoke(self, function: str, event: Any, result: Any) -> None:
        """The local stack's hook: called after every function invocation."""
        if function != WEBHOOK_FUNCTION or not isinstance(result, dict):
            return
        if result.get("statusCode") != 202 or not isinstance(event, dict):
            return
        params = event.get("pathParameters") or {}
        storefront_id = str(params.get("storefrontId") or "")
        canvas_storefront = self.canvas_storefront_of(storefront_id)
        if canvas_storefront is None:
            return
        try:
            headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
            # The platform table knows the id (UnknownPlatform, a ValueError, if not).
            order = normalise(str(params.get("platform", "")), storefront_id, _body(event), headers)
        except (PrintFlowError, ValueError):
            return  # not an order we can read: the plugin would not have one either
        if not order.line_items:
            return  # a thin webhook (BigCommerce): no line items to design
        with self._lock:
            if self._sandbox.projects_of(canvas_storefront, order.order_id):
                return
            ids = self._sandbox.add_order(
                storefront_id=canvas_storefront,
                order_id=order.order_id,
                line_item_ids=[item.id for item in order.line_items],
                line_items=[self.pipeline] * len(order.line_items),
                order_number=order.number,
                line_item_names=[item.name for item in order.line_items],
                personalisations=[_personalisation(item) for item in order.line_items],
            )
            self.created.append((storefront_id, order.order_id, ids))


def _body(event: dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        return base64.b64decode(body)
    return body.encode() if isinstance(body, str) else json.dumps(body).encode()


def _personalisation(item: LineItem) -> dict[str, str]:
    """The shopper's visible choices (properties starting with ``_`` are the shop's own)."""
    return {name: value for name, value in item.property_map().items() if not name.startswith("_")}
