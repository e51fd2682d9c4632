"""The local stack with everything around it: provider sandboxes, demo storefronts, a REST sink.

``printflow local`` and ``make demo`` both run this. Only here is the egress allowlist opened
for loopback (the sandboxes and the sink), and the default flow's REST URI
(``https://orders.example.com/...``) rerouted to the sink.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from printflow.adapters.order_table import OrderTable
from printflow.adapters.webhook_secrets import WebhookSecrets
from printflow_tools.localstack.canvas_integration import CanvasStorefrontIntegration
from printflow_tools.localstack.rest_sink import RestSink
from printflow_tools.localstack.stack import LocalStack, StackOptions
from printflow_tools.localstack.storefront_setup import (
    chili_provider,
    customers_canvas_provider,
    register_render_storefront,
    shopify_store_api,
    store_api,
    woocommerce_store_api,
)
from printflow_tools.sandboxes import (
    BigCommerceSandbox,
    ChiliSandbox,
    CustomersCanvasSandbox,
    ShopifySandbox,
    WooCommerceSandbox,
)
from printflow_tools.sandboxes.bigcommerce import demo_order
from printflow_tools.webhook_events import BIGCOMMERCE_SECRET_HEADER, DEMO_SECRETS

SENDER = "printflow@example.com"
OPERATIONS = "operations@example.com"
REST_HOST = "orders.example.com"  # the default flow's consume-rest-api host


@dataclass(frozen=True)
class DemoStorefront:
    storefront_id: str
    platform: str
    provider: str  # "chili" or "customers-canvas"
    flow: str = "default"

    @property
    def secret(self) -> str:
        return DEMO_SECRETS[self.platform]


DEMO_STOREFRONTS = (
    DemoStorefront("demo-shopify", "shopify", "chili"),
    DemoStorefront("demo-woo", "woocommerce", "customers-canvas"),
    # BigCommerce sends an order id only: CHILI can render it once it is read from the store.
    DemoStorefront("demo-bigcommerce", "bigcommerce", "chili"),
    DemoStorefront("demo-generic", "generic", "chili"),
    # The write-back flow: the shop sandbox gets a tag and a note with the file links.
    DemoStorefront("demo-shop-tags", "shopify", "chili", flow="write-back"),
)


@dataclass
class LocalEnvironment:
    options: StackOptions = field(default_factory=StackOptions)
    chili: ChiliSandbox = field(default_factory=lambda: ChiliSandbox(polls_until_done=2))
    canvas: CustomersCanvasSandbox = field(default_factory=CustomersCanvasSandbox)
    store: BigCommerceSandbox = field(default_factory=BigCommerceSandbox)
    shop: ShopifySandbox = field(default_factory=ShopifySandbox)
    # The WooCommerce site (reconciliation pulls it; write-back tells it).
    woo: WooCommerceSandbox = field(default_factory=WooCommerceSandbox)
    sink: RestSink = field(default_factory=RestSink)
    stack: LocalStack | None = None
    canvas_integration: CanvasStorefrontIntegration | None = None

    def start(self) -> LocalEnvironment:
        self.chili.start()
        self.canvas.start()
        self.store.start()
        self.shop.start()
        self.woo.start()
        self.store.add_order(*demo_order())  # behind events/payloads/bigcommerce-order-created
        self.sink.start()
        self.options.function_env = {
            "EGRESS_ALLOWLIST": "127.0.0.1,localhost",
            "EGRESS_REROUTES": f"{REST_HOST}=http://127.0.0.1:{self.sink.port}",
            "SENDER_EMAIL": SENDER,
            "OPERATIONS_EMAIL": OPERATIONS,
            **self.options.function_env,
        }
        self.stack = LocalStack(self.options).start()
        table = OrderTable(self.stack.client("dynamodb"), self.stack.resources.table())  # type: ignore[union-attr]
        self.canvas_integration = CanvasStorefrontIntegration(self.canvas, table.get_storefront)
        self.stack.after_invoke.append(self.canvas_integration.after_invoke)
        ses = self.stack.client("sesv2")
        for identity in (SENDER, OPERATIONS):
            ses.create_email_identity(EmailIdentity=identity)
        for storefront in DEMO_STOREFRONTS:
            self.register(storefront)
        return self

    def stop(self) -> None:
        if self.stack is not None:
            self.stack.stop()
        for part in (self.sink, self.woo, self.shop, self.store, self.canvas, self.chili):
            part.stop()

    def __enter__(self) -> LocalEnvironment:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def register(self, storefront: DemoStorefront) -> None:
        stack = self._stack()
        secretsmanager = stack.client("secretsmanager")
        secret_name = f"printflow/providers/{storefront.storefront_id}/{storefront.provider}"
        if storefront.provider == "chili":
            provider = chili_provider(self.chili, secret_name)
            client_id, client_secret = "chili-client", "chili-secret"
        else:
            provider = customers_canvas_provider(self.canvas, secret_name)
            client_id, client_secret = "cc-client", "cc-secret"
        extra: dict[str, Any] = {}
        if storefront.platform == "bigcommerce":
            extra["secretHeader"] = BIGCOMMERCE_SECRET_HEADER
        # Each store sandbox's Orders API (reconciliation pulls it; BigCommerce completes
        # its thin orders from it). The generic platform has none.
        sid = storefront.storefront_id
        store_apis: dict[str, Callable[[], dict[str, Any]]] = {
            "bigcommerce": lambda: store_api(self.store, sid, secretsmanager),
            "shopify": lambda: shopify_store_api(self.shop, sid, secretsmanager),
            "woocommerce": lambda: woocommerce_store_api(self.woo, sid, secretsmanager),
        }
        if storefront.platform in store_apis:
            extra["storeApi"] = store_apis[storefront.platform]()
        register_render_storefront(
            OrderTable(stack.client("dynamodb"), stack.resources.table()),  # type: ignore[union-attr]
            WebhookSecrets(secretsmanager, "printflow"),
            secretsmanager,
            storefront_id=storefront.storefront_id,
            platform=storefront.platform,
            webhook_secret=storefront.secret,
            provider=provider,
            client_id=client_id,
            client_secret=client_secret,
            description=f"demo {storefront.platform} storefront rendered by {storefront.provider}",
            flow=storefront.flow,
            **extra,
        )

    def _stack(self) -> LocalStack:
        assert self.stack is not None, "start() first"
        return self.stack

    def describe(self) -> str:
        """What runs where, for the operator's terminal."""
        stack = self._stack()
        resources = stack.resources
        assert resources is not None
        lines = [
            "PrintFlow local stack is running.",
            f"  HTTP API          {stack.api_url}",
            f"     webhooks       POST {stack.api_url}/webhooks/{{platform}}/{{storefrontId}}",
            f"     order status   GET  {stack.api_url}/orders/{{storefrontId}}/{{orderId}}"
            "  (IAM auth is not enforced locally)",
            f"  AWS endpoint      {stack.aws_endpoint}  (credentials: local/local, us-east-1)",
            f"     e.g. aws --endpoint-url {stack.aws_endpoint} s3 ls s3://{resources.bucket()}",
            f"  order table       {resources.table()}",
            f"  artifact bucket   {resources.bucket()}",
            f"  state machine     {resources.state_machine()}",
            f"  CHILI sandbox     {self.chili.base_url}",
            f"  Canvas sandbox    {self.canvas.base_url}",
            f"  BigCommerce store {self.store.base_url}  (Orders API of store "
            f"{self.store.store_hash})",
            f"  Shopify shop      {self.shop.base_url}  (Admin GraphQL API)",
            f"  WooCommerce site  {self.woo.base_url}  (REST API v3)",
            f"  REST sink         {self.sink.base_url}  (receives {REST_HOST})",
            "  demo storefronts:",
        ]
        for storefront in DEMO_STOREFRONTS:
            lines.append(
                f"     {storefront.storefront_id:<18} {storefront.platform:<12} "
                f"-> {storefront.provider:<17} flow {storefront.flow:<11} "
                f"webhook secret: {storefront.secret}"
            )
        return "\n".join(lines)
