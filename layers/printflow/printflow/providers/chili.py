"""CHILI GraFx: one output task per line item, polled until its file can be downloaded.

Mapping of an order to output tasks (decided here, see ``start``):

- **one task per line item**, not per unit: ``quantity`` copies of one personalised design
  are the same file, and the printer prints the quantity. Rendering it N times would cost N
  renders and N downloads for identical bytes.
- the line item's properties become **one variables row** ``{name: value}``; CHILI's
  ``variables`` is a list of string/null maps where each map (row) is one data-merge record,
  and one record renders one output. Properties whose names start with ``_`` are left out:
  Shopify's convention for hidden properties set by apps (ids, previews), not the customer's
  choices the template's variables stand for. A line item with no properties sends no
  ``variables`` (the template's defaults render).

Status mapping of ``GET …/output/tasks/{taskId}``: 200 = DONE (with ``links.download``),
202 and 204 = RUNNING (the docs disagree, both are accepted), 500 with a problem-details body
= FAILED (its ``detail`` says why), 404/410 = EXPIRED (tasks live 7 days). Anything else,
including a 500 without a problem-details body (a proxy's error page) and malformed JSON, is
:class:`ProviderUnavailable`: the poller backs off and asks again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

import printflow.providers.settings_fields as fields
from printflow.domain.order import LineItem, Order
from printflow.domain.render_job import PollingPolicy
from printflow.domain.storefront import ProviderName, ProviderSettings
from printflow.errors import ValidationError
from printflow.providers.content_types import content_types_for
from printflow.providers.errors import ProviderRejected, ProviderUnavailable, RecoveryRefused
from printflow.providers.http_answers import json_object, problem_detail, retry_after_s, unexpected
from printflow.providers.oauth import (
    AccessTokens,
    TokenEndpoint,
    TokenRequestStyle,
    artifact_headers,
    forget_bearer,
)
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
from printflow.providers.spec import AdapterContext, FormatSupport, ProviderConfig, ProviderSpec
from printflow.providers.urls import same_origin
from printflow.validators import UrlPolicy, check_url

CHILI_TOKEN_URL = "https://integration-login.chiligrafx.com/oauth/token"  # noqa: S105
CHILI_AUDIENCE = "https://chiligrafx.com"
CHILI_FORMATS = ("pdf", "png", "jpg", "gif", "mp4")
CONTENT_TYPES = content_types_for(CHILI_FORMATS)
# CHILI environment names are the subdomain of ``{environment}.chili-publish.online``.
ENVIRONMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,62}$")
HIDDEN_PROPERTY_PREFIX = "_"


@dataclass(frozen=True, slots=True)
class ChiliSettings:
    """A storefront's validated CHILI settings (see :func:`parse_chili_settings`)."""

    environment: str
    base_url: str
    credentials_secret: str
    output_settings_id: str
    template_id: str | None = None
    project_id: str | None = None
    output_format: str = "pdf"
    layouts_to_export: tuple[str | int, ...] | None = None
    token_url: str = CHILI_TOKEN_URL
    audience: str = CHILI_AUDIENCE

    @property
    def environment_url(self) -> str:
        return f"{self.base_url}/grafx/api/v1/environment/{quote(self.environment, safe='')}"

    @property
    def token_endpoint(self) -> TokenEndpoint:
        return TokenEndpoint(self.token_url, TokenRequestStyle.JSON, audience=self.audience)


def line_item_variables(item: LineItem) -> list[dict[str, str | None]] | None:
    """The ``variables`` of a line item's task: one row of its visible properties."""
    row: dict[str, str | None] = {
        name: value
        for name, value in item.property_map().items()
        if not name.startswith(HIDDEN_PROPERTY_PREFIX)
    }
    return [row] if row else None


class ChiliAdapter:
    """The :class:`~printflow.providers.protocol.RenderProvider` for CHILI GraFx."""

    name = ProviderName.CHILI
    # CHILI publishes no polling guidance or rate limits: the poller's backoff decides.
    min_poll_interval_s = 0.0

    def __init__(
        self,
        settings: ChiliSettings,
        tokens: AccessTokens,
        http: httpx.AsyncClient,
        *,
        url_policy: UrlPolicy | None = None,
    ) -> None:
        self.settings = settings
        self._tokens = tokens
        self._http = http
        self._url_policy = url_policy or UrlPolicy()

    # -- start ---------------------------------------------------------------------------

    def output_request(self, item: LineItem) -> dict[str, Any]:
        """The body of the output request for one line item."""
        settings = self.settings
        body: dict[str, Any] = {"outputSettingsId": settings.output_settings_id}
        if settings.template_id is not None:
            body["templateId"] = settings.template_id
        else:
            body["projectId"] = settings.project_id
        if settings.layouts_to_export:
            body["layoutsToExport"] = list(settings.layouts_to_export)
        variables = line_item_variables(item)
        if variables is not None:
            body["variables"] = variables
        return body

    async def start(
        self,
        order: Order,
        *,
        skip_line_items: frozenset[str] = frozenset(),
        started: WorkStarted | None = None,
    ) -> tuple[RenderWork, ...]:
        """Start one output task per line item, in order; return one work per task started.

        Sequential on purpose: a refusal (400) stops before more paid renders start. Each
        task goes to ``started`` before the next one starts, so a start that fails half-way
        (CHILI unavailable, the Lambda's time up) is resumed by the step's retry from the
        first line item not recorded (``skip_line_items``): at most the one task in flight
        when it died is started twice.
        """
        if not order.line_items:
            raise ProviderRejected(
                f"order {order.order_id!r} has no line items to render"
                + ("" if order.complete else " (the order is incomplete)")
            )
        works = []
        for index, item in enumerate(order.line_items):
            if item.id in skip_line_items:
                continue
            task_id = await self._start_task(item)
            work = RenderWork(
                provider=self.name,
                kind=WorkKind.OUTPUT_TASK,
                reference=task_id,
                line_item_id=item.id,
                line_item_index=index,
                output_format=self.settings.output_format,
            )
            if started is not None:
                started(work)
            works.append(work)
        return tuple(works)

    async def _start_task(self, item: LineItem) -> str:
        what = f"CHILI output request for line item {item.id!r}"
        url = f"{self.settings.environment_url}/output/{self.settings.output_format}"
        response = await self._tokens.request(
            self._http, "POST", url, what=what, json=self.output_request(item)
        )
        if response.status_code == 404:
            # Unknown environment, format, template or project: a settings problem.
            detail = problem_detail(response) or "not found"
            raise ProviderRejected(f"{what}: HTTP 404 ({detail})", status=404)
        if response.status_code not in (200, 201, 202):
            raise unexpected(response, what)
        doc = json_object(response, what)
        data = doc.get("data")
        task_id = data.get("taskId") if isinstance(data, dict) else None
        if not isinstance(task_id, str) or not task_id:
            raise ProviderUnavailable(f"{what}: no data.taskId in the response")
        return task_id

    # -- poll ----------------------------------------------------------------------------

    def _task_url(self, task_id: str) -> str:
        return f"{self.settings.environment_url}/output/tasks/{quote(task_id, safe='')}"

    async def poll(self, work: RenderWork) -> PollResult:
        if work.kind is not WorkKind.OUTPUT_TASK:
            raise ValueError(f"CHILI cannot poll a {work.kind.value} work")
        what = f"CHILI task {work.reference}"
        response = await self._tokens.request(
            self._http, "GET", self._task_url(work.reference), what=what
        )
        status = response.status_code
        if status in (202, 204):
            return PollResult(PollState.RUNNING, retry_after_s=retry_after_s(response))
        if status == 200:
            return PollResult(PollState.DONE, files=(self._artifact(work, response),))
        if status == 500:
            detail = problem_detail(response)
            if detail is None:
                raise ProviderUnavailable(f"{what}: HTTP 500 without problem details", status=500)
            return PollResult(PollState.FAILED, detail=detail)
        if status in (404, 410):
            return PollResult(PollState.EXPIRED, detail=problem_detail(response) or "task expired")
        raise unexpected(response, what)

    def _artifact(self, work: RenderWork, response: httpx.Response) -> ArtifactSource:
        what = f"CHILI task {work.reference}"
        doc = json_object(response, what)
        links = doc.get("links")
        link = links.get("download") if isinstance(links, dict) else None
        if not isinstance(link, str) or not link:
            raise ProviderUnavailable(f"{what}: finished without links.download")
        fmt = work.output_format or self.settings.output_format
        return ArtifactSource(
            url=self._download_url(work.reference, link),
            auth=ArtifactAuth.BEARER,
            filename=f"{work.reference}.{fmt}",
            content_type=CONTENT_TYPES.get(fmt),
            reference=work.reference,
            line_item_id=work.line_item_id,
        )

    def _download_url(self, task_id: str, link: str) -> str:
        """The URL the bearer token is sent to.

        ``links.download`` is used when it is on the environment's own origin; any other
        link is replaced by the documented ``…/output/tasks/{taskId}/download`` on the
        configured host, so a provider answer can never send our token elsewhere.
        """
        try:
            url = check_url(link, "links.download", self._url_policy, allow_query=True)
        except ValidationError:
            url = None
        if url is not None and same_origin(url, self.settings.base_url):
            base_path = urlsplit(self.settings.environment_url).path
            if urlsplit(url).path.startswith(f"{base_path}/"):
                return url
        return f"{self._task_url(task_id)}/download"

    # -- recovery and downloads ----------------------------------------------------------

    def recovery_plan(self, work: RenderWork) -> RecoveryPlan:
        return RecoveryPlan(
            allowed=False, reason="a failed CHILI output task cannot be resumed or restarted"
        )

    async def recover(self, work: RenderWork) -> RenderWork:
        raise RecoveryRefused(self.recovery_plan(work).reason)

    async def download_headers(self, source: ArtifactSource) -> dict[str, str]:
        return await artifact_headers(self._tokens, self._http, source)

    def forget_token(self, headers: Mapping[str, str]) -> None:
        forget_bearer(self._tokens, headers)


# -- the spec: settings, adapter, polling, formats ----------------------------------------

_FIELDS = {
    "name",
    "environment",
    "baseUrl",
    "tokenUrl",
    "audience",
    "credentialsSecret",
    "templateId",
    "projectId",
    "outputSettingsId",
    "format",
    "layoutsToExport",
}


def parse_chili_settings(doc: dict[str, Any], policy: UrlPolicy, where: str) -> ChiliSettings:
    """A storefront's ``provider`` object for CHILI; :class:`ValidationError` names the field."""
    fields.refuse_unknown(doc, _FIELDS, where)
    environment = doc.get("environment")
    if not isinstance(environment, str) or not ENVIRONMENT.match(environment):
        raise ValidationError(
            f"{where}.environment: required, the environment name (letters, digits and '-')"
        )
    base_url = check_url(doc.get("baseUrl"), f"{where}.baseUrl", policy)
    token_url = check_url(doc.get("tokenUrl", CHILI_TOKEN_URL), f"{where}.tokenUrl", policy)
    template_id = fields.optional_identifier(doc, "templateId", where)
    project_id = fields.optional_identifier(doc, "projectId", where)
    if template_id is None and project_id is None:
        raise ValidationError(f"{where}.templateId: required (or {where}.projectId)")
    if template_id is not None and project_id is not None:
        raise ValidationError(f"{where}.projectId: give templateId or projectId, not both")
    output_settings_id = fields.identifier(doc, "outputSettingsId", where)
    output_format = doc.get("format", "pdf")
    if output_format not in CHILI_FORMATS:
        raise ValidationError(f"{where}.format: must be one of {', '.join(CHILI_FORMATS)}")
    layouts = doc.get("layoutsToExport")
    if layouts is not None and (
        not isinstance(layouts, list)
        or not layouts
        or not all(
            isinstance(x, str | int) and not isinstance(x, bool) and str(x).strip() for x in layouts
        )
    ):
        raise ValidationError(f"{where}.layoutsToExport: a non-empty list of layout ids")
    audience = doc.get("audience", CHILI_AUDIENCE)
    if not isinstance(audience, str) or not audience:
        raise ValidationError(f"{where}.audience: a non-empty string")
    return ChiliSettings(
        environment=environment,
        base_url=base_url,
        token_url=token_url,
        credentials_secret=fields.secret_name(doc, where),
        template_id=template_id,
        project_id=project_id,
        output_settings_id=output_settings_id,
        output_format=output_format,
        layouts_to_export=tuple(layouts) if layouts else None,
        audience=audience,
    )


def _build_adapter(settings: ProviderConfig, context: AdapterContext) -> ChiliAdapter:
    assert isinstance(settings, ChiliSettings)
    return ChiliAdapter(settings, context.tokens, context.http, url_policy=context.url_policy)


def _produces(settings: ProviderConfig) -> tuple[str, ...]:
    return CHILI_FORMATS


def _apply_format(provider: ProviderSettings, file_format: str) -> ProviderSettings:
    # CHILI renders the format its endpoint names: the step's choice replaces the storefront's.
    return ProviderSettings(provider.name, {**provider.settings, "format": file_format})


# Output tasks take seconds: the first poll comes 2 s after the start, like CHILI's own studio
# UI; then the interval is a fifth of the task's age, at least 2 s and at most 30 s, with
# +/- 10 % jitter (polls at about 2, 4, 6, 8, 10, 12, 14.4, 17.3, 20.7 ... s; 30 s from 2.5
# minutes on). A finished task is seen at most ~20 % of its render time (at least 2 s) late:
# a 10 s render after 5 or 6 polls, at most ~2 s late.
POLLING = PollingPolicy(
    interval_s=2.0, first_poll_s=2.0, age_fraction=0.2, max_interval_s=30.0, jitter=0.1
)

SPEC = ProviderSpec(
    name=ProviderName.CHILI.value,
    parse_settings=parse_chili_settings,
    build_adapter=_build_adapter,
    polling=POLLING,
    formats=FormatSupport(_produces, _apply_format, "it produces"),
    content_types=CONTENT_TYPES,
)
