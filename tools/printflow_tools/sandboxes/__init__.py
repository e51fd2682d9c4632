"""Sandboxes: loopback HTTP servers that behave like CHILI GraFx, Customer's Canvas and the
stores' Orders APIs (BigCommerce V2, Shopify Admin GraphQL, WooCommerce REST).

A developer tool (never part of the Lambda layer) for the local stack, the integration tests
and the poller benchmark::

    with ChiliSandbox(behaviour=Behaviour(latency_s=0.1)) as chili:
        chili.base_url, chili.token_url, chili.environment_url

    with CustomersCanvasSandbox() as cc:
        cc.add_order(storefront_id=42, order_id="1001",
                     line_items=[Pipeline.completes(after_polls=2), Pipeline.restart_only()])
"""

from printflow_tools.sandboxes.bigcommerce import BigCommerceSandbox
from printflow_tools.sandboxes.chili import ChiliSandbox, ChiliTask
from printflow_tools.sandboxes.common import Behaviour, LoggedRequest, ManualClock
from printflow_tools.sandboxes.customers_canvas import (
    CanvasArtifact,
    CanvasProject,
    CustomersCanvasSandbox,
    Pipeline,
)
from printflow_tools.sandboxes.files import GeneratedFile, generated_file, pdf_file, png_file
from printflow_tools.sandboxes.shopify import ShopifySandbox
from printflow_tools.sandboxes.woocommerce import WooCommerceSandbox

__all__ = [
    "Behaviour",
    "BigCommerceSandbox",
    "CanvasArtifact",
    "CanvasProject",
    "ChiliSandbox",
    "ChiliTask",
    "CustomersCanvasSandbox",
    "GeneratedFile",
    "LoggedRequest",
    "ManualClock",
    "Pipeline",
    "ShopifySandbox",
    "WooCommerceSandbox",
    "generated_file",
    "pdf_file",
    "png_file",
]
