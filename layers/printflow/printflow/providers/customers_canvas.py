"""Customer's Canvas: find the order's projects, poll each pipeline, recover failed ones.

The storefront integration creates one project per line item when the order is placed, and
each project's pipeline a little later, so "none yet" is normal for a while:

- ``start`` looks the projects up: one ``PROJECT`` work each found. While a line item that
  carries a design (every line item, or those with the ``designProperty`` property) has no
  project yet, also one ``ORDER_PROJECTS`` work: its polls answer with every project found so
  far (``discovered``) and the line items still missing; NOT_READY while there is none, DONE
  once none is missing. It looks until ``discoveryDeadlineS`` after the start; what happens
  then is the poller's call (``render.decisions.after_discovery``).
- ``poll`` of a project reads ``processing-results``: Pending/InProgress = RUNNING,
  Completed = DONE with one :class:`ArtifactSource` per output file, Failed = FAILED with the
  ``statusDescription``. 404 (project or pipeline not there yet) = NOT_READY. 409 (a
  ``GeneralConflictDto``) is :class:`ProviderConflict`: the step fails with its description
  as the cause, since asking again would get the same answer.
- the vendor asks for at least 60 s between polls of a project: every RUNNING/NOT_READY
  result carries ``retry_after_s >= 60`` for the poller's schedule, and the adapter itself
  refuses (:class:`TooSoon`, nothing sent) a second poll of the same work within 60 s in
  this process. Across processes the poller's stored due time is what holds the line.
- recovery of a FAILED project: ``resume`` (default: continues from the failed task, never
  repeats paid work) or ``restart`` by the storefront's policy, at most
  ``maxRecoveryAttempts`` times and at least 60 s apart. The counters travel in the
  :class:`RenderWork`, so the bounds hold across invocations; *when* to recover is the
  poller's call (``recovery_plan`` tells it whether and how long to wait).

Files: ``url`` without credentials when ``anonymousAccess`` is true (and the URL passes the
URL policy), otherwise ``GET /api/storage/v1/artifacts/{artifactId}/file?attachment=true``
on the configured API host with the bearer token.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpx

import printflow.providers.settings_fields as fields
from printflow.domain.order import Order
from printflow.domain.render_job import PollingPolicy
from printflow.domain.storefront import ProviderName, ProviderSettings
from printflow.errors import ValidationError
from printflow.observability import logger
from printflow.providers.content_types import CONTENT_TYPES as FILE_CONTENT_TYPES
from printflow.providers.errors import (
    ProviderConflict,
    ProviderRejected,
    ProviderUnavailable,
    RecoveryRefused,
    TooSoon,
)
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
    RecoveryAction,
    RecoveryPlan,
    RenderWork,
    WorkKind,
    WorkStarted,
)
from printflow.providers.spec import AdapterContext, FormatSupport, ProviderConfig, ProviderSpec
from printflow.validators import UrlPolicy, ascii_int, check_url

# The API gateway of each hosting region; a tenant's tokens come from its own region's
# gateway at ``/connect/token`` (customerscanvas.com/docs/hub/dev-center/api/ and the vendor's
# API clients' READMEs). ``https://customerscanvashub.com`` is the web app, not the gateway.
CC_REGION_HOSTS = {
    "us": "https://api.customerscanvashub.com",
    "eu": "https://api.eu.customerscanvashub.com",
    "au": "https://api.au.customerscanvashub.com",
}
CC_DEFAULT_REGION = "us"


def cc_token_url(region: str) -> str:
    """The token endpoint of ``region``'s API gateway."""
    return f"{CC_REGION_HOSTS[region]}/connect/token"


CC_TOKEN_URL = cc_token_url(CC_DEFAULT_REGION)
# Vendor guidance: poll processing results no more often than every 60 s, and wait at
# least a minute between recovery attempts.
MIN_POLL_INTERVAL_S = 60.0
MIN_RECOVERY_INTERVAL_S = 60.0
PAGE_SIZE = 100
# An order has at most 1000 line items (intake's limit), so at most that many projects.
MAX_PROJECTS = 1000
# How long the storefront may take to create the projects of an order's line items.
DEFAULT_DISCOVERY_DEADLINE_S = 900
# A pipeline may output any format: every format PrintFlow knows a content type for.
CONTENT_TYPES = FILE_CONTENT_TYPES
MAX_RECOVERY_ATTEMPTS = 10
MAX_DISCOVERY_DEADLINE_S = 7 * 24 * 3600  # the longest a flow's wait can sensibly be
RUNNING_STATUSES = ("Pending", "InProgress")


@dataclass(frozen=True, slots=True)
class CustomersCanvasSettings:
    """A storefront's validated Customer's Canvas settings."""

    base_url: str
    credentials_secret: str
    storefront_id: int  # Customer's Canvas's own storefront id (Settings > Integrations)
    tenant_id: int | None = None
    recovery: RecoveryAction = RecoveryAction.RESUME
    max_recovery_attempts: int = 3
    token_url: str = CC_TOKEN_URL
    scope: str | None = None
    region: str = CC_DEFAULT_REGION
    # The formats the storefront's processing pipeline outputs, when the operator declares
    # them (``provider.outputFormats``): a flow's fileFormat is then checked against them.
    output_formats: tuple[str, ...] | None = None
    discovery_deadline_s: int = DEFAULT_DISCOVERY_DEADLINE_S
    # A line item carries a design when it has this property; None: every line item does.
    design_property: str | None = None

    @property
    def token_endpoint(self) -> TokenEndpoint:
        return TokenEndpoint(self.token_url, TokenRequestStyle.FORM, scope=self.scope)


# Whose work a poll is about: (PrintFlow storefront, Canvas API host, tenant, Canvas
# storefront). Order ids and project ids are only unique within these.
SpacingScope = tuple[str, str, str, str]


class PollSpacing:
    """When each work was last polled in this process; a poll that comes too soon is refused.

    Shared by all adapters a registry builds, so two jobs that point at the same project (or
    a poller that loops fast) still cannot hammer it. Keyed by the work *and* its scope: order
    ``1001`` of one shop (or of one Canvas tenant) is not order ``1001`` of another, and one
    shop's polls must never hold back another's.
    """

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.time) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self._last: dict[tuple[SpacingScope, str, str], float] = {}

    def claim(self, work: RenderWork, scope: SpacingScope = ("", "", "", "")) -> None:
        key = (scope, work.kind.value, work.reference)
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval_s:
            wait = self.interval_s - (now - last)
            raise TooSoon(
                f"Customer's Canvas {work.kind.value} {work.reference} was polled "
                f"{now - last:.0f} s ago; the minimum is {self.interval_s:.0f} s",
                retry_after_s=wait,
            )
        self._last[key] = now


class CustomersCanvasAdapter:
    """The :class:`~printflow.providers.protocol.RenderProvider` for Customer's Canvas."""

    name = ProviderName.CUSTOMERS_CANVAS
    min_poll_interval_s = MIN_POLL_INTERVAL_S

    def __init__(
        self,
        settings: CustomersCanvasSettings,
        tokens: AccessTokens,
        http: httpx.AsyncClient,
        *,
        url_policy: UrlPolicy | None = None,
        clock: Callable[[], float] = time.time,
        spacing: PollSpacing | None = None,
        storefront_id: str = "",
    ) -> None:
        """``storefront_id`` is PrintFlow's storefront the adapter works for (spacing scope)."""
        self.settings = settings
        self._tokens = tokens
        self._http = http
        self._url_policy = url_policy or UrlPolicy()
        self._clock = clock
        self._spacing = spacing or PollSpacing(MIN_POLL_INTERVAL_S, clock)
        self._scope: SpacingScope = (
            storefront_id,
            settings.base_url,
            "" if settings.tenant_id is None else str(settings.tenant_id),
            str(settings.storefront_id),
        )

    def _params(self, **params: Any) -> dict[str, Any]:
        if self.settings.tenant_id is not None:
            params["tenantId"] = self.settings.tenant_id
        return params

    def _project_url(self, project_id: str, action: str) -> str:
        return (
            f"{self.settings.base_url}/api/storefront/v1/projects/"
            f"{quote(project_id, safe='')}/{action}"
        )

    # -- start / find --------------------------------------------------------------------

    async def start(
        self,
        order: Order,
        *,
        skip_line_items: frozenset[str] = frozenset(),
        started: WorkStarted | None = None,
    ) -> tuple[RenderWork, ...]:
        """The order's projects, or one ``ORDER_PROJECTS`` work while there are none yet.

        Finding is idempotent (the shop created the projects), so ``skip_line_items`` does
        not apply: recording a found project twice is a no-op.
        """
        expected = self._design_line_items(order)
        works = await self.find_projects(order.order_id)
        if not works or missing_line_items(expected, works):
            # Some (or all) projects are not there yet: keep looking for them.
            works = (*works, self._order_work(order.order_id, expected))
        if started is not None:
            for work in works:
                started(work)
        return works

    def _design_line_items(self, order: Order) -> tuple[tuple[int, str], ...]:
        wanted = self.settings.design_property
        return tuple(
            (index, item.id)
            for index, item in enumerate(order.line_items)
            if wanted is None or any(p.name == wanted and p.value for p in item.properties)
        )

    def _order_work(self, order_id: str, expected: tuple[tuple[int, str], ...]) -> RenderWork:
        return RenderWork(
            provider=self.name,
            kind=WorkKind.ORDER_PROJECTS,
            reference=order_id,
            expected_line_items=expected,
            discovery_deadline_at=self._clock() + self.settings.discovery_deadline_s,
        )

    async def find_projects(self, order_id: str) -> tuple[RenderWork, ...]:
        """Every project of the order in this storefront, paging through ``skip``/``take``.

        Items are checked against the order and storefront too: a filter the API ignored
        would otherwise hand us every project of the tenant.
        """
        what = f"Customer's Canvas projects of order {order_id!r}"
        url = f"{self.settings.base_url}/api/storefront/v1/projects"
        found: dict[int, RenderWork] = {}
        skip = 0
        while skip < MAX_PROJECTS:
            params = self._params(
                orderId=order_id,
                storefrontId=self.settings.storefront_id,
                skip=skip,
                take=PAGE_SIZE,
            )
            response = await self._tokens.request(self._http, "GET", url, what=what, params=params)
            if response.status_code != 200:
                if response.status_code == 404:
                    raise ProviderRejected(f"{what}: HTTP 404 (check provider.baseUrl)", status=404)
                raise unexpected(response, what)
            doc = json_object(response, what)
            items, total = doc.get("items"), doc.get("total")
            if not isinstance(items, list):
                raise ProviderUnavailable(f"{what}: no items list in the response")
            for item in items:
                work = self._project_work(item, order_id, what)
                if work is not None:
                    found.setdefault(int(work.reference), work)
            skip += len(items)
            if not items or (isinstance(total, int) and skip >= total):
                break
        return tuple(
            sorted(
                found.values(),
                key=lambda w: (w.line_item_index is None, w.line_item_index or 0, int(w.reference)),
            )
        )

    def _project_work(self, item: Any, order_id: str, what: str) -> RenderWork | None:
        if not isinstance(item, dict):
            raise ProviderUnavailable(f"{what}: a project is not a JSON object")
        project_id = item.get("id")
        if isinstance(project_id, str):
            project_id = ascii_int(project_id)
        if not isinstance(project_id, int) or isinstance(project_id, bool):
            raise ProviderUnavailable(f"{what}: a project has no integer id")
        item_order, item_storefront = item.get("orderId"), item.get("storefrontId")
        if item_order is not None and str(item_order) != order_id:
            return None
        if item_storefront is not None and str(item_storefront) != str(self.settings.storefront_id):
            return None
        line_item_id = item.get("orderLineItemId")
        index = item.get("orderLineItemIndex")
        return RenderWork(
            provider=self.name,
            kind=WorkKind.PROJECT,
            reference=str(project_id),
            line_item_id=None if line_item_id is None else str(line_item_id),
            line_item_index=index
            if isinstance(index, int) and not isinstance(index, bool)
            else None,
        )

    # -- poll ----------------------------------------------------------------------------

    async def poll(self, work: RenderWork) -> PollResult:
        if work.kind is WorkKind.ORDER_PROJECTS:
            self._spacing.claim(work, self._scope)
            works = await self.find_projects(work.reference)
            missing = missing_line_items(work.expected_line_items, works)
            if not works:
                return PollResult(
                    PollState.NOT_READY,
                    detail="no Customer's Canvas project for the order yet",
                    retry_after_s=MIN_POLL_INTERVAL_S,
                    missing_line_items=missing,
                )
            if missing:
                return PollResult(
                    PollState.RUNNING,
                    detail=f"{len(missing)} line item(s) without a project yet",
                    retry_after_s=MIN_POLL_INTERVAL_S,
                    discovered=works,
                    missing_line_items=missing,
                )
            return PollResult(PollState.DONE, discovered=works)
        if work.kind is not WorkKind.PROJECT:
            raise ValueError(f"Customer's Canvas cannot poll a {work.kind.value} work")
        self._spacing.claim(work, self._scope)
        what = f"Customer's Canvas project {work.reference}"
        response = await self._tokens.request(
            self._http,
            "GET",
            self._project_url(work.reference, "processing-results"),
            what=what,
            params=self._params(),
        )
        status_code = response.status_code
        if status_code == 404:
            return PollResult(
                PollState.NOT_READY,
                detail="project or its pipeline not found (yet)",
                retry_after_s=self._retry_after(response),
            )
        if status_code == 409:
            raise ProviderConflict(f"{what}: {conflict_cause(response)}", status=409)
        if status_code != 200:
            raise unexpected(response, what)
        doc = json_object(response, what)
        status = doc.get("status")
        if status is None:
            return PollResult(
                PollState.NOT_READY,
                detail="the project has no pipeline yet",
                retry_after_s=self._retry_after(response),
            )
        if status in RUNNING_STATUSES:
            return PollResult(
                PollState.RUNNING, detail=status, retry_after_s=self._retry_after(response)
            )
        if status == "Failed":
            description = doc.get("statusDescription")
            return PollResult(
                PollState.FAILED,
                detail=description if isinstance(description, str) and description else "failed",
                recoverable=self.recovery_plan(work).allowed,
            )
        if status == "Completed":
            return self._completed(work, doc.get("outputFileDetails"))
        raise ProviderUnavailable(f"{what}: unknown processing status {status!r}")

    def _retry_after(self, response: httpx.Response) -> float:
        return max(MIN_POLL_INTERVAL_S, retry_after_s(response) or 0.0)

    def _completed(self, work: RenderWork, details: Any) -> PollResult:
        if details is None:
            details = []
        if not isinstance(details, list):
            raise ProviderUnavailable(
                f"Customer's Canvas project {work.reference}: outputFileDetails is not a list"
            )
        if not details:
            return PollResult(
                PollState.FAILED, detail="the pipeline completed without output files"
            )
        files = []
        for index, entry in enumerate(details):
            source = self._source(work, entry, index)
            if source is None:
                return PollResult(
                    PollState.FAILED,
                    detail=f"output file {index} has neither an anonymous url nor an artifactId",
                )
            files.append(source)
        return PollResult(PollState.DONE, files=tuple(files))

    def _source(self, work: RenderWork, entry: Any, index: int) -> ArtifactSource | None:
        if not isinstance(entry, dict):
            return None
        artifact_id = entry.get("artifactId")
        artifact_id = None if artifact_id in (None, "") else str(artifact_id)
        fmt = str(entry.get("format") or "").lower().lstrip(".") or None
        name = entry.get("name")
        filename = (
            name
            if isinstance(name, str) and name.strip()
            else f"{artifact_id or f'{work.reference}-{index}'}" + (f".{fmt}" if fmt else "")
        )
        size = entry.get("size")
        line_item = entry.get("orderLineItemId")
        common: dict[str, Any] = {
            "filename": filename,
            "content_type": CONTENT_TYPES.get(fmt or ""),
            "declared_size": size
            if isinstance(size, int) and not isinstance(size, bool) and size >= 0
            else None,
            "reference": artifact_id,
            "line_item_id": work.line_item_id if line_item is None else str(line_item),
        }
        url = self._anonymous_url(entry)
        if url is not None:
            return ArtifactSource(url=url, auth=ArtifactAuth.NONE, **common)
        if artifact_id is None:
            return None
        query = urlencode(self._params(attachment="true"))
        return ArtifactSource(
            url=(
                f"{self.settings.base_url}/api/storage/v1/artifacts/"
                f"{quote(artifact_id, safe='')}/file?{query}"
            ),
            auth=ArtifactAuth.BEARER,
            **common,
        )

    def _anonymous_url(self, entry: Mapping[str, Any]) -> str | None:
        if entry.get("anonymousAccess") is not True:
            return None
        try:
            return check_url(entry.get("url"), "url", self._url_policy, allow_query=True)
        except ValidationError:
            # Not a URL we may fetch: the authenticated artifact endpoint still works.
            return None

    # -- recovery ------------------------------------------------------------------------

    def recovery_plan(self, work: RenderWork) -> RecoveryPlan:
        settings = self.settings
        if work.kind is not WorkKind.PROJECT:
            return RecoveryPlan(allowed=False, reason="only a project's pipeline can be recovered")
        if work.recovery_attempts >= settings.max_recovery_attempts:
            return RecoveryPlan(
                allowed=False,
                reason=(
                    f"{work.recovery_attempts} of {settings.max_recovery_attempts} "
                    "recovery attempts used"
                ),
            )
        wait = 0.0
        if work.last_recovery_at is not None:
            wait = max(0.0, work.last_recovery_at + MIN_RECOVERY_INTERVAL_S - self._clock())
        return RecoveryPlan(allowed=True, action=settings.recovery, wait_s=wait)

    async def recover(self, work: RenderWork) -> RenderWork:
        """Resume (or restart) a failed pipeline; return the work with the attempt counted.

        409 (a ``GeneralConflictDto``: the pipeline is no longer Failed, e.g. the answer to an
        earlier attempt was lost) counts as an attempt and is logged with its description:
        the next poll says where the pipeline stands.
        """
        plan = self.recovery_plan(work)
        if not plan.allowed or plan.action is None:
            raise RecoveryRefused(f"project {work.reference}: {plan.reason}")
        if plan.wait_s > 0:
            raise TooSoon(
                f"project {work.reference}: the last recovery was less than "
                f"{MIN_RECOVERY_INTERVAL_S:.0f} s ago",
                retry_after_s=plan.wait_s,
            )
        action = f"{plan.action.value}-processing"
        what = f"Customer's Canvas {action} of project {work.reference}"
        response = await self._tokens.request(
            self._http,
            "POST",
            self._project_url(work.reference, action),
            what=what,
            params=self._params(),
        )
        if response.status_code in (200, 202, 204):
            return work.recovered(self._clock())
        if response.status_code == 409:
            # Counted like an attempt (bounded by maxRecoveryAttempts), never retried as is:
            # the next poll says where the pipeline stands.
            logger.warning(
                "customer's canvas refused a recovery",
                extra={"project": work.reference, "cause": conflict_cause(response)},
            )
            return work.recovered(self._clock())
        if response.status_code == 404:
            detail = problem_detail(response) or "project not found"
            raise RecoveryRefused(f"{what}: HTTP 404 ({detail})", status=404)
        raise unexpected(response, what)

    # -- downloads -----------------------------------------------------------------------

    async def download_headers(self, source: ArtifactSource) -> dict[str, str]:
        return await artifact_headers(self._tokens, self._http, source)

    def forget_token(self, headers: Mapping[str, str]) -> None:
        forget_bearer(self._tokens, headers)


def conflict_cause(response: httpx.Response) -> str:
    """A 409's cause: the ``GeneralConflictDto`` (``{description, type}``) the vendor's API
    models declare, or any problem-details text, or just the status."""
    try:
        doc = response.json()
    except (ValueError, UnicodeDecodeError):
        doc = None
    if isinstance(doc, dict):
        description, kind = doc.get("description"), doc.get("type")
        if isinstance(description, str) and description.strip():
            label = kind if isinstance(kind, str) and kind else "conflict"
            return f"HTTP 409 {label}: {description.strip()[:500]}"
    detail = problem_detail(response)
    return f"HTTP 409 conflict: {detail}" if detail else "HTTP 409 conflict"


def missing_line_items(
    expected: tuple[tuple[int, str], ...], works: tuple[RenderWork, ...]
) -> tuple[str, ...]:
    """The expected line items (ids) that no found project names, by id or by index."""
    ids = {w.line_item_id for w in works if w.line_item_id is not None}
    indexes = {w.line_item_index for w in works if w.line_item_index is not None}
    return tuple(
        item_id for index, item_id in expected if item_id not in ids and index not in indexes
    )


# -- the spec: settings, adapter, polling, formats ----------------------------------------

_FIELDS = {
    "name",
    "region",
    "baseUrl",
    "tokenUrl",
    "scope",
    "credentialsSecret",
    "storefrontId",
    "tenantId",
    "recovery",
    "maxRecoveryAttempts",
    "outputFormats",
    "discoveryDeadlineS",
    "designProperty",
}


def parse_customers_canvas_settings(
    doc: dict[str, Any], policy: UrlPolicy, where: str
) -> CustomersCanvasSettings:
    """A storefront's ``provider`` object for Customer's Canvas; :class:`ValidationError`
    names the field."""
    fields.refuse_unknown(doc, _FIELDS, where)
    region = doc.get("region", CC_DEFAULT_REGION)
    if not isinstance(region, str) or region not in CC_REGION_HOSTS:
        raise ValidationError(f"{where}.region: must be one of {', '.join(CC_REGION_HOSTS)}")
    # The region chooses the API gateway and its token endpoint; explicit URLs still win.
    base_url = check_url(doc.get("baseUrl", CC_REGION_HOSTS[region]), f"{where}.baseUrl", policy)
    token_url = check_url(doc.get("tokenUrl", cc_token_url(region)), f"{where}.tokenUrl", policy)
    if "storefrontId" not in doc:
        raise ValidationError(
            f"{where}.storefrontId: required, Customer's Canvas's own storefront id (an integer)"
        )
    storefront_id = fields.integer(doc, "storefrontId", where, minimum=1, maximum=2**63 - 1)
    tenant_id = (
        None
        if doc.get("tenantId") is None
        else fields.integer(doc, "tenantId", where, minimum=1, maximum=2**63 - 1)
    )
    try:
        recovery = RecoveryAction(doc.get("recovery", RecoveryAction.RESUME.value))
    except ValueError:
        raise ValidationError(f"{where}.recovery: must be 'resume' or 'restart'") from None
    attempts = (
        3
        if doc.get("maxRecoveryAttempts") is None
        else fields.integer(
            doc, "maxRecoveryAttempts", where, minimum=0, maximum=MAX_RECOVERY_ATTEMPTS
        )
    )
    scope = doc.get("scope")
    if scope is not None and (not isinstance(scope, str) or not scope.strip()):
        raise ValidationError(f"{where}.scope: a space-separated list of scopes")
    deadline = (
        DEFAULT_DISCOVERY_DEADLINE_S
        if doc.get("discoveryDeadlineS") is None
        else fields.integer(
            doc, "discoveryDeadlineS", where, minimum=0, maximum=MAX_DISCOVERY_DEADLINE_S
        )
    )
    design_property = doc.get("designProperty")
    if design_property is not None and (
        not isinstance(design_property, str) or not 0 < len(design_property) <= 255
    ):
        raise ValidationError(f"{where}.designProperty: a line item property name (1-255 chars)")
    return CustomersCanvasSettings(
        output_formats=fields.output_formats(doc.get("outputFormats"), f"{where}.outputFormats"),
        base_url=base_url,
        token_url=token_url,
        credentials_secret=fields.secret_name(doc, where),
        storefront_id=storefront_id,
        tenant_id=tenant_id,
        recovery=recovery,
        max_recovery_attempts=attempts,
        scope=scope,
        region=region,
        discovery_deadline_s=deadline,
        design_property=design_property,
    )


def _build_adapter(settings: ProviderConfig, context: AdapterContext) -> CustomersCanvasAdapter:
    assert isinstance(settings, CustomersCanvasSettings)
    assert isinstance(context.shared, PollSpacing)
    return CustomersCanvasAdapter(
        settings,
        context.tokens,
        context.http,
        url_policy=context.url_policy,
        clock=context.clock,
        spacing=context.shared,
        storefront_id=context.storefront_id,
    )


def _produces(settings: ProviderConfig) -> tuple[str, ...] | None:
    assert isinstance(settings, CustomersCanvasSettings)
    return settings.output_formats


def _apply_format(provider: ProviderSettings, file_format: str) -> ProviderSettings:
    # The pipeline decides what Customer's Canvas outputs; the check is the only lever.
    return provider


def _poll_spacing(clock: Callable[[], float]) -> PollSpacing:
    # One per registry: every adapter it builds shares it (see PollSpacing).
    return PollSpacing(MIN_POLL_INTERVAL_S, clock)


# At most one processing-results request per project per 60 s (vendor guidance).
POLLING = PollingPolicy(
    interval_s=60.0, first_poll_s=0.0, min_interval_s=60.0, recovery_delay_s=60.0
)

SPEC = ProviderSpec(
    name=ProviderName.CUSTOMERS_CANVAS.value,
    parse_settings=parse_customers_canvas_settings,
    build_adapter=_build_adapter,
    polling=POLLING,
    formats=FormatSupport(
        _produces, _apply_format, "its pipeline outputs (provider.outputFormats)"
    ),
    content_types=CONTENT_TYPES,
    shared_state=_poll_spacing,
)
