"""A third render provider, added in this module alone, runs an order end to end.

Issue 11's claim, proved: a provider is one module plus one registry entry. Here the module is
this file (``FakePress``: settings parser, adapter, polling policy, content types) and the
entry is :func:`register_provider`. Nothing else is edited: the order goes through the real
handlers of the default flow (intake, the render step, the poll function, the download
function), which find the provider in the registry's table by its name.

FakePress is a tiny HTTP service on 127.0.0.1: ``POST /renders`` starts a render and answers
its id, ``GET /renders/{id}`` answers ``working`` for the first poll and ``ready`` with the
file's path after it, ``GET /files/{id}.pdf`` serves the file.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import httpx
import pytest

from printflow.adapters.order_table import OrderTable
from printflow.adapters.webhook_secrets import WebhookSecrets
from printflow.domain.order import Order, OrderKey
from printflow.domain.render_job import PollingPolicy
from printflow.domain.storefront import ProviderName, ProviderSettings
from printflow.errors import ValidationError
from printflow.providers.content_types import content_types_for
from printflow.providers.errors import ProviderUnavailable, RecoveryRefused
from printflow.providers.oauth import TokenEndpoint
from printflow.providers.protocol import (
    ArtifactAuth,
    ArtifactSource,
    PollResult,
    PollState,
    RecoveryPlan,
    RenderWork,
    WorkKind,
    WorkStarted,
)
from printflow.providers.registry import (
    PROVIDERS,
    parse_provider_settings,
    register_provider,
    unregister_provider,
)
from printflow.providers.spec import AdapterContext, FormatSupport, ProviderConfig, ProviderSpec
from printflow.validators import UrlPolicy, check_url
from printflow_tools.localstack.storefront_setup import register_render_storefront
from printflow_tools.webhook_events import DEMO_SECRETS

from .test_order_flow_end_to_end import run_to_completion

NAME = "fake-press"
SHOPIFY_ORDER = OrderKey("demo-shopify", "5678901234567")
PDF = b"%PDF-1.4\n% FakePress proof\n%%EOF\n"


# -- the provider's service ------------------------------------------------------------------


class FakePressService:
    """The provider's API on a loopback port; counts what it was asked."""

    def __init__(self) -> None:
        self.renders: dict[str, dict[str, Any]] = {}
        self.polls: dict[str, int] = {}
        self._ids = itertools.count(1)
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                doc = json.loads(self.rfile.read(length))
                render_id = f"r-{next(service._ids)}"
                service.renders[render_id] = doc
                self._answer(201, json.dumps({"id": render_id}).encode(), "application/json")

            def do_GET(self) -> None:
                parts = self.path.strip("/").split("/")
                if parts[0] == "renders" and parts[1] in service.renders:
                    polls = service.polls[parts[1]] = service.polls.get(parts[1], 0) + 1
                    doc = (
                        {"state": "working"}
                        if polls == 1
                        else {"state": "ready", "file": f"/files/{parts[1]}.pdf"}
                    )
                    self._answer(200, json.dumps(doc).encode(), "application/json")
                elif parts[0] == "files":
                    self._answer(200, PDF, "application/pdf")
                else:
                    self._answer(404, b"{}", "application/json")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakePressService:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


# -- the provider module: settings, adapter, polling, content types ------------------------

CONTENT_TYPES = content_types_for(("pdf",))


@dataclass(frozen=True, slots=True)
class FakePressSettings:
    base_url: str
    credentials_secret: str

    @property
    def token_endpoint(self) -> TokenEndpoint:
        return TokenEndpoint(f"{self.base_url}/token")


def parse_settings(doc: dict[str, Any], policy: UrlPolicy, where: str) -> FakePressSettings:
    unknown = sorted(set(doc) - {"name", "baseUrl", "credentialsSecret"})
    if unknown:
        raise ValidationError(f"{where}: unknown field(s) {', '.join(unknown)}")
    secret = doc.get("credentialsSecret")
    if not isinstance(secret, str) or not secret:
        raise ValidationError(f"{where}.credentialsSecret: required")
    return FakePressSettings(check_url(doc.get("baseUrl"), f"{where}.baseUrl", policy), secret)


class FakePressAdapter:
    """One render per line item; public file URLs (no credentials on download)."""

    min_poll_interval_s = 0.0

    def __init__(self, settings: FakePressSettings, http: httpx.AsyncClient) -> None:
        self.settings = settings
        self._http = http

    @property
    def name(self) -> ProviderName:
        return ProviderName(NAME)

    async def start(
        self,
        order: Order,
        *,
        skip_line_items: frozenset[str] = frozenset(),
        started: WorkStarted | None = None,
    ) -> tuple[RenderWork, ...]:
        works = []
        for index, item in enumerate(order.line_items):
            if item.id in skip_line_items:
                continue
            response = await self._http.post(
                f"{self.settings.base_url}/renders",
                json={"lineItem": item.id, "variables": item.property_map()},
            )
            if response.status_code != 201:
                raise ProviderUnavailable(f"FakePress: HTTP {response.status_code}")
            work = RenderWork(
                self.name,
                WorkKind.OUTPUT_TASK,
                response.json()["id"],
                line_item_id=item.id,
                line_item_index=index,
                output_format="pdf",
            )
            if started is not None:
                started(work)
            works.append(work)
        return tuple(works)

    async def poll(self, work: RenderWork) -> PollResult:
        response = await self._http.get(f"{self.settings.base_url}/renders/{work.reference}")
        doc = response.json()
        if doc["state"] != "ready":
            return PollResult(PollState.RUNNING)
        source = ArtifactSource(
            url=f"{self.settings.base_url}{doc['file']}",
            auth=ArtifactAuth.NONE,
            filename=f"{work.reference}.pdf",
            content_type=CONTENT_TYPES["pdf"],
            reference=work.reference,
            line_item_id=work.line_item_id,
        )
        return PollResult(PollState.DONE, files=(source,))

    def recovery_plan(self, work: RenderWork) -> RecoveryPlan:
        return RecoveryPlan(allowed=False, reason="FakePress renders cannot be recovered")

    async def recover(self, work: RenderWork) -> RenderWork:
        raise RecoveryRefused("FakePress renders cannot be recovered")

    async def download_headers(self, source: ArtifactSource) -> dict[str, str]:
        return {}

    def forget_token(self, headers: Mapping[str, str]) -> None:
        pass


def build_adapter(settings: ProviderConfig, context: AdapterContext) -> FakePressAdapter:
    assert isinstance(settings, FakePressSettings)
    return FakePressAdapter(settings, context.http)


SPEC = ProviderSpec(
    name=NAME,
    parse_settings=parse_settings,
    build_adapter=build_adapter,
    polling=PollingPolicy(interval_s=1.0, first_poll_s=0.0),
    formats=FormatSupport(lambda settings: ("pdf",), lambda provider, fmt: provider, "it makes"),
    content_types=CONTENT_TYPES,
)


@pytest.fixture
def fake_press() -> Iterator[FakePressService]:
    register_provider(SPEC)
    try:
        with FakePressService() as service:
            yield service
    finally:
        unregister_provider(NAME)


# -- the proof ---------------------------------------------------------------------------------


def test_a_registered_provider_renders_an_order_through_the_real_handlers(
    world: Any, fake_press: FakePressService
) -> None:
    # Given a Shopify storefront whose provider is FakePress
    register_render_storefront(
        OrderTable(boto3.client("dynamodb"), world.resources.table()),
        WebhookSecrets(boto3.client("secretsmanager"), "printflow"),
        boto3.client("secretsmanager"),
        storefront_id="demo-shopify",
        platform="shopify",
        webhook_secret=DEMO_SECRETS["shopify"],
        provider={
            "name": NAME,
            "baseUrl": fake_press.base_url,
            "credentialsSecret": "printflow/providers/demo-shopify/fake-press",
        },
        client_id="press-client",
        client_secret="press-secret",
    )

    # When its order arrives and the flow runs
    world.post("shopify", "demo-shopify", "shopify-orders-create.json")
    execution = run_to_completion(world, SHOPIFY_ORDER)

    # Then FakePress rendered each line item, was polled until ready, and the files are stored
    assert execution["status"] == "SUCCEEDED", execution
    assert len(fake_press.renders) == 2
    assert all(polls >= 2 for polls in fake_press.polls.values())
    jobs = world.jobs(SHOPIFY_ORDER)
    assert {j["provider"] for j in jobs} == {NAME} and {j["state"] for j in jobs} == {"done"}
    artifacts = world.order(SHOPIFY_ORDER)["artifacts"]
    assert len(artifacts) == 2
    s3 = boto3.client("s3")
    for artifact in artifacts:
        stored = s3.get_object(Bucket=world.resources.bucket(), Key=artifact["key"])
        assert stored["Body"].read() == PDF
        assert stored["ContentType"] == "application/pdf"


def test_an_unregistered_provider_name_is_refused_not_taken_for_another() -> None:
    # Given a provider id that was registered once and is gone now
    name = ProviderName.register("gone-press")
    ProviderName.unregister("gone-press")
    assert "gone-press" not in PROVIDERS

    # Then its settings are refused by name, instead of parsed as Customer's Canvas
    with pytest.raises(ValidationError, match=r"provider\.name: no render provider 'gone-press'"):
        parse_provider_settings(ProviderSettings(name, {"baseUrl": "https://x.example.com"}))
