"""Storefronts wired to the provider sandboxes: for the local stack, the demo and the tests.

Registration goes through the same code as ``printflow storefronts put``; the provider's
OAuth client credentials go to Secrets Manager under ``{prefix}/providers/...``, where the
render functions' IAM policy lets them read.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from printflow.adapters.order_table import OrderTable
from printflow.adapters.webhook_secrets import WebhookSecrets
from printflow.domain.storefront import Storefront
from printflow.storefronts import register_storefront
from printflow.validators import UrlPolicy
from printflow_tools.flow_files import load_flows
from printflow_tools.sandboxes import (
    BigCommerceSandbox,
    ChiliSandbox,
    CustomersCanvasSandbox,
    ShopifySandbox,
    WooCommerceSandbox,
)

CC_STOREFRONT_ID = 42  # Customer's Canvas's own id of the demo storefront


def put_provider_credentials(
    secretsmanager: Any, name: str, client_id: str, client_secret: str
) -> None:
    _put_secret(secretsmanager, name, {"clientId": client_id, "clientSecret": client_secret})


def store_api(
    sandbox: BigCommerceSandbox, storefront_id: str, secretsmanager: Any
) -> dict[str, str]:
    """A BigCommerce storefront's ``storeApi`` pointing at the sandbox; its token stored."""
    secret_name = f"printflow/store-apis/{storefront_id}"
    _put_secret(secretsmanager, secret_name, {"accessToken": sandbox.access_token})
    return {
        "storeHash": sandbox.store_hash,
        "credentialsSecret": secret_name,
        "baseUrl": sandbox.base_url,
    }


def shopify_store_api(
    sandbox: ShopifySandbox, storefront_id: str, secretsmanager: Any
) -> dict[str, str]:
    """A Shopify storefront's ``storeApi`` pointing at the shop sandbox; its token stored."""
    secret_name = f"printflow/store-apis/{storefront_id}"
    _put_secret(secretsmanager, secret_name, {"accessToken": sandbox.access_token})
    return {"credentialsSecret": secret_name, "baseUrl": sandbox.base_url, "apiVersion": "2025-10"}


def woocommerce_store_api(
    sandbox: WooCommerceSandbox, storefront_id: str, secretsmanager: Any
) -> dict[str, str]:
    """A WooCommerce storefront's ``storeApi`` pointing at the site sandbox; its key stored."""
    secret_name = f"printflow/store-apis/{storefront_id}"
    _put_secret(
        secretsmanager,
        secret_name,
        {"consumerKey": sandbox.consumer_key, "consumerSecret": sandbox.consumer_secret},
    )
    return {"credentialsSecret": secret_name, "baseUrl": sandbox.base_url}


def _put_secret(secretsmanager: Any, name: str, doc: dict[str, str]) -> None:
    value = json.dumps(doc)
    try:
        secretsmanager.create_secret(Name=name, SecretString=value)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceExistsException":
            raise
        secretsmanager.put_secret_value(SecretId=name, SecretString=value)


def chili_provider(
    sandbox: ChiliSandbox, secret_name: str, *, template_id: str = "poster-a2"
) -> dict[str, Any]:
    return {
        "name": "chili",
        "environment": sandbox.environment,
        "baseUrl": sandbox.base_url,
        "tokenUrl": sandbox.token_url,
        "credentialsSecret": secret_name,
        "templateId": template_id,
        "outputSettingsId": "print-pdf",
        "format": "pdf",
    }


def customers_canvas_provider(
    sandbox: CustomersCanvasSandbox, secret_name: str, *, recovery: str = "resume"
) -> dict[str, Any]:
    return {
        "name": "customers-canvas",
        "baseUrl": sandbox.base_url,
        "tokenUrl": sandbox.token_url,
        "credentialsSecret": secret_name,
        "storefrontId": CC_STOREFRONT_ID,
        "recovery": recovery,
    }


def register_render_storefront(
    table: OrderTable,
    secrets: WebhookSecrets,
    secretsmanager: Any,
    *,
    storefront_id: str,
    platform: str,
    webhook_secret: str,
    provider: dict[str, Any],
    client_id: str,
    client_secret: str,
    **extra: Any,
) -> Storefront:
    put_provider_credentials(
        secretsmanager, provider["credentialsSecret"], client_id, client_secret
    )
    return register_storefront(
        {
            "storefrontId": storefront_id,
            "platform": platform,
            "webhookSecret": webhook_secret,
            "provider": provider,
            **extra,
        },
        table,
        secrets,
        provider_urls=UrlPolicy.loopback(),  # the sandboxes listen on 127.0.0.1 over http
        flows=load_flows(),  # the repository's flows, as `storefronts put` checks them
    )
