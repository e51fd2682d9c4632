"""Registering storefronts: config in the order table, webhook secret in Secrets Manager."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from printflow.adapters.order_table import OrderTable
from printflow.adapters.webhook_secrets import WebhookSecrets
from printflow.domain.storefront import Storefront
from printflow.errors import ValidationError
from printflow.flows.model import OrderFlow
from printflow.platforms.documents import parse_storefront
from printflow.providers.registry import parse_provider_settings
from printflow.store_apis.registry import load_store_credentials
from printflow.storefront_flows import check_flow_fits_storefront
from printflow.validators import UrlPolicy, check_url


def register_storefront(
    doc: Any,
    table: OrderTable,
    secrets: WebhookSecrets,
    *,
    known_flows: set[str] | None = None,
    provider_urls: UrlPolicy | None = None,
    flows: Mapping[str, OrderFlow] | None = None,
) -> Storefront:
    """Validate ``doc`` and store it; the secret goes to Secrets Manager, never the table.

    A new storefront must bring its ``webhookSecret``; an update may omit it to keep the
    current one. Provider settings are checked as the render functions will read them
    (``provider_urls``: https only unless a policy allows plain http for named hosts).
    A ``storeApi``'s credentials secret must exist and hold the platform's fields.
    ``flows`` (flow name -> flow) lets the storefront's flow be checked against it
    (:func:`printflow.storefront_flows.check_flow_fits_storefront`: e.g. a render step's
    fileFormat its provider cannot produce). Nothing is written when validation fails.
    """
    storefront, secret = parse_storefront(doc)
    if storefront.provider is not None:
        parse_provider_settings(
            storefront.provider,
            provider_urls or UrlPolicy(),
            where=f"storefront {storefront.storefront_id!r}.provider",
        )
    if storefront.store_api is not None:
        check_url(
            storefront.store_api.base_url,
            f"storefront {storefront.storefront_id!r}.storeApi.baseUrl",
            provider_urls or UrlPolicy(),
        )
        # The credentials must be there, in the platform's shape, before any order needs them.
        load_store_credentials(
            secrets.client,
            storefront.platform,
            storefront.store_api,
            f"storefront {storefront.storefront_id!r}",
        )
    if known_flows is not None and storefront.flow not in known_flows:
        allowed = ", ".join(sorted(known_flows)) or "(none)"
        raise ValidationError(
            f"storefront {storefront.storefront_id!r}.flow: unknown flow {storefront.flow!r}; "
            f"deployed flows: {allowed}"
        )
    if flows is not None and storefront.flow in flows:
        check_flow_fits_storefront(flows[storefront.flow], storefront, provider_urls)
    existing = table.get_storefront(storefront.storefront_id)
    if existing is None and secret is None:
        raise ValidationError(
            f"storefront {storefront.storefront_id!r}.webhookSecret: required when registering "
            "a new storefront"
        )
    if secret is not None:
        secrets.put(storefront.storefront_id, secret)
    table.put_storefront(storefront, datetime.now(UTC).isoformat(timespec="seconds"))
    return storefront
