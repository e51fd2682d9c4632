"""A loopback Customer's Canvas: token endpoint, Storefront API projects, Asset Storage files.

Routes (as ``shared/reference/provider-apis.md`` describes the real API):

- ``POST /connect/token`` (form-encoded client credentials, body or HTTP Basic);
- ``GET /api/storefront/v1/projects?orderId&storefrontId&skip&take`` → ``{total, items}``;
- ``GET /api/storefront/v1/projects/{id}/processing-results`` (404 for unknown projects);
- ``POST …/projects/{id}/resume-processing`` and ``…/restart-processing`` → 204 (409 unless
  the pipeline has failed);
- every 409 carries a ``GeneralConflictDto`` (``{"description", "type": "GeneralConflict"}``)
  and a project's ``status`` is a number, ``orderNumber`` a number or null, as the vendor's
  API models (``@aurigma/axios-storefront-api-client``) declare them;
- ``GET /api/storage/v1/artifacts/{id}/file?attachment=true`` with a bearer token;
- ``GET /public/artifacts/{id}/{name}``: the ``url`` of an artifact, served without auth only
  when its ``anonymousAccess`` is true (403 otherwise).

Projects are seeded with :meth:`CustomersCanvasSandbox.add_order`, one :class:`Pipeline`
scenario per line item. Every ``processing-results`` request and every recovery is recorded
with the sandbox clock, so tests can check how often a client polled.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from printflow_tools.sandboxes.common import (
    Behaviour,
    Clock,
    HttpError,
    Request,
    Response,
    SandboxServer,
    TokenIssuer,
    json_response,
    problem,
)
from printflow_tools.sandboxes.files import GeneratedFile, generated_file

ALL_SCOPES = ("Projects_full", "Artifacts_read", "Tenants_read")
FIRST_PROJECT_ID = 4567
# A project's status is a numeric code of the tenant's project workflow (ProjectDto.status).
PROJECT_STATUS_ORDERED = 1
Recovery = Literal["resume", "restart"]


@dataclass(frozen=True, slots=True)
class Pipeline:
    """How one project's processing pipeline behaves.

    A run ends after ``polls_to_finish`` ``processing-results`` polls (or, when set,
    ``seconds_to_finish`` seconds); the first poll of a run says Pending, later ones
    InProgress. A run ends Failed while ``failures`` remain (a recovery named in
    ``cleared_by`` uses one up; another kind of recovery fails again) or always when
    ``fails_for_good``; otherwise Completed with one artifact per entry of ``outputs``.
    The project is invisible (absent from lists, 404) until ``appears_after_s`` has passed.
    """

    polls_to_finish: int = 1
    seconds_to_finish: float | None = None
    failures: int = 0
    cleared_by: tuple[Recovery, ...] = ("resume", "restart")
    fails_for_good: bool = False
    appears_after_s: float = 0.0
    anonymous_access: bool = False
    outputs: tuple[str, ...] = ("pdf",)
    failure_description: str = "Task 'Render print file' failed: image 'photo.jpg' is missing"
    # When set, processing-results answers 409 with this GeneralConflictDto description.
    conflict: str | None = None

    @classmethod
    def completes(cls, after_polls: int = 1, **options: Any) -> Pipeline:
        return cls(polls_to_finish=after_polls, **options)

    @classmethod
    def fails_then_succeeds(cls, failures: int = 1, **options: Any) -> Pipeline:
        """Fails, then completes after a resume (or a restart)."""
        return cls(failures=failures, **options)

    @classmethod
    def fails_forever(cls, **options: Any) -> Pipeline:
        return cls(fails_for_good=True, **options)

    @classmethod
    def restart_only(cls, **options: Any) -> Pipeline:
        """Fails; a resume fails again at the same task, only a restart recovers it."""
        return cls(failures=1, cleared_by=("restart",), **options)

    @classmethod
    def conflicts(cls, description: str, **options: Any) -> Pipeline:
        """processing-results answers 409 (a ``GeneralConflictDto``) on every poll."""
        return cls(conflict=description, **options)

    @classmethod
    def appears_later(cls, seconds: float, **options: Any) -> Pipeline:
        """The project (and its pipeline) shows up only after ``seconds``."""
        return cls(appears_after_s=seconds, **options)


@dataclass
class CanvasArtifact:
    artifact_id: str
    project_id: int
    name: str
    format: str
    anonymous: bool
    size: int
    downloads: int = 0
    throttled: int = 0
    expired: bool = False


@dataclass
class CanvasProject:
    """A seeded project and its pipeline's state (``project()`` returns copies)."""

    id: int
    storefront_id: int
    order_id: str
    order_number: str
    line_item_id: str
    line_item_index: int
    pipeline: Pipeline
    created_at: float
    # What the shopper designed, as the storefront plugin recorded it on the project.
    line_item_name: str | None = None
    personalisation: dict[str, str] = field(default_factory=dict)
    status: str = "Pending"
    run: int = 1
    run_started_at: float = 0.0
    run_polls: int = 0
    failures_left: int = 0
    completed_at: float | None = None
    poll_times: list[float] = field(default_factory=list)
    recoveries: list[tuple[float, Recovery]] = field(default_factory=list)
    artifacts: list[CanvasArtifact] = field(default_factory=list)


class CustomersCanvasSandbox(SandboxServer):
    """Customer's Canvas on 127.0.0.1; all knobs are attributes and may change while it runs."""

    name = "customers-canvas"

    def __init__(
        self,
        *,
        client_id: str = "cc-client",
        client_secret: str = "cc-secret",  # noqa: S107 - a sandbox credential
        token_ttl_s: int = 3600,
        max_page_size: int = 100,
        default_page_size: int = 20,
        download_throttles: int = 0,
        artifact_ttl_s: float | None = None,
        expired_artifact_status: int = 404,
        behaviour: Behaviour | None = None,
        clock: Clock = time.time,
    ) -> None:
        super().__init__(behaviour=behaviour, clock=clock)
        self.tokens = TokenIssuer(client_id, client_secret, token_ttl_s, clock)
        self.max_page_size = max_page_size
        self.default_page_size = default_page_size
        self.download_throttles = download_throttles
        self.artifact_ttl_s = artifact_ttl_s
        self.expired_artifact_status = expired_artifact_status
        self._projects: dict[int, CanvasProject] = {}
        self._artifacts: dict[str, CanvasArtifact] = {}
        self._state = threading.Lock()
        self._next_id = FIRST_PROJECT_ID

        projects = "/api/storefront/v1/projects"
        self.route("POST", "/connect/token", self._token, inject=False)
        self.route("GET", projects, self._list_projects)
        self.route("GET", f"{projects}/{{id}}/processing-results", self._processing_results)
        self.route("POST", f"{projects}/{{id}}/resume-processing", self._resume)
        self.route("POST", f"{projects}/{{id}}/restart-processing", self._restart)
        self.route("GET", "/api/storage/v1/artifacts/{id}/file", self._artifact_file)
        self.route("GET", "/public/artifacts/{id}/{name}", self._public_file)

    # -- seeding and inspection -----------------------------------------------------------

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/connect/token"

    def add_order(
        self,
        *,
        storefront_id: int,
        order_id: str,
        line_items: Sequence[Pipeline] = (Pipeline(),),
        line_item_ids: Sequence[str] | None = None,
        order_number: str | None = None,
        line_item_names: Sequence[str | None] | None = None,
        personalisations: Sequence[dict[str, str]] | None = None,
        first_line_item_index: int = 0,
    ) -> list[int]:
        """Create one project per line item (each with its pipeline scenario); return ids.

        ``line_item_names`` and ``personalisations`` (what the shopper entered) end up in the
        project's rendered files. ``first_line_item_index``: where these line items start in
        the order, for a storefront that creates an order's projects a few at a time.
        """
        for given, what in (
            (line_item_ids, "line_item_ids"),
            (line_item_names, "line_item_names"),
            (personalisations, "personalisations"),
        ):
            if given is not None and len(given) != len(line_items):
                raise ValueError(f"{what} must match line_items")
        now = self.clock()
        ids: list[int] = []
        with self._state:
            for n, pipeline in enumerate(line_items):
                index = first_line_item_index + n
                project = CanvasProject(
                    id=self._next_id,
                    storefront_id=storefront_id,
                    order_id=str(order_id),
                    order_number=order_number or str(order_id),
                    line_item_id=line_item_ids[n] if line_item_ids else f"{order_id}-{index}",
                    line_item_index=index,
                    pipeline=pipeline,
                    created_at=now,
                    line_item_name=line_item_names[n] if line_item_names else None,
                    personalisation=dict(personalisations[n]) if personalisations else {},
                    run_started_at=now,
                    failures_left=pipeline.failures,
                )
                self._projects[project.id] = project
                ids.append(project.id)
                self._next_id += 1
        return ids

    def project(self, project_id: int) -> CanvasProject:
        with self._state:
            project = self._projects[project_id]
            return dataclasses.replace(
                project,
                poll_times=list(project.poll_times),
                recoveries=list(project.recoveries),
                artifacts=[dataclasses.replace(a) for a in project.artifacts],
            )

    def projects_of(self, storefront_id: int, order_id: str) -> list[int]:
        """Ids of the projects seeded for an order (visible or not yet)."""
        with self._state:
            return [
                p.id
                for p in self._projects.values()
                if p.storefront_id == storefront_id and p.order_id == str(order_id)
            ]

    def poll_times(self, project_id: int) -> list[float]:
        """Sandbox-clock times of every processing-results request for the project."""
        return self.project(project_id).poll_times

    def recoveries(self, project_id: int) -> list[tuple[float, Recovery]]:
        return self.project(project_id).recoveries

    def expire_tokens(self) -> None:
        self.tokens.expire_all()

    def expire_artifacts(self) -> None:
        with self._state:
            for artifact in self._artifacts.values():
                artifact.expired = True

    # -- routes --------------------------------------------------------------------------

    def _token(self, request: Request) -> Response:
        if request.content_type != "application/x-www-form-urlencoded":
            return _oauth_error("invalid_request", "the token request must be form-encoded")
        fields = request.form()
        if fields.get("grant_type") != "client_credentials":
            return _oauth_error("unsupported_grant_type", "use client_credentials")
        self.tokens.authenticate(request, fields)
        requested = fields.get("scope", "").split()
        if any(scope not in ALL_SCOPES for scope in requested):
            return _oauth_error("invalid_scope", "unknown scope")
        return json_response(200, self.tokens.issue(" ".join(requested or ALL_SCOPES)))

    def _visible(self, project: CanvasProject, now: float) -> bool:
        return now - project.created_at >= project.pipeline.appears_after_s

    def _project(self, request: Request, now: float) -> CanvasProject:
        """The visible project named in the path; 404 otherwise (call with the lock held)."""
        try:
            project = self._projects.get(int(request.params["id"]))
        except ValueError:
            project = None
        if project is None or not self._visible(project, now):
            raise HttpError(problem(404, "Not Found", "project not found"))
        return project

    def _list_projects(self, request: Request) -> Response:
        self.tokens.require(request)
        try:
            skip = int(request.query.get("skip") or 0)
            take = int(request.query.get("take") or self.default_page_size)
            storefront = request.query.get("storefrontId")
            storefront_id = int(storefront) if storefront else None
        except ValueError:
            return problem(400, "Bad Request", "skip, take and storefrontId must be integers")
        if skip < 0 or take < 0:
            return problem(400, "Bad Request", "skip and take must not be negative")
        order_id = request.query.get("orderId")
        now = self.clock()
        with self._state:
            matching = [
                p
                for p in sorted(self._projects.values(), key=lambda p: p.id)
                if self._visible(p, now)
                and (order_id is None or p.order_id == order_id)
                and (storefront_id is None or p.storefront_id == storefront_id)
            ]
            page = matching[skip : skip + min(take, self.max_page_size)]
            items = [_project_dto(p) for p in page]
        return json_response(200, {"total": len(matching), "items": items})

    def _processing_results(self, request: Request) -> Response:
        self.tokens.require(request)
        now = self.clock()
        with self._state:
            project = self._project(request, now)
            project.poll_times.append(now)
            if project.pipeline.conflict is not None:
                return general_conflict(project.pipeline.conflict)
            self._advance(project, now)
            doc = {
                "status": project.status,
                "statusDescription": (
                    project.pipeline.failure_description if project.status == "Failed" else None
                ),
                "outputFileDetails": (
                    [self._file_details(project, a) for a in project.artifacts]
                    if project.status == "Completed"
                    else []
                ),
            }
        return json_response(200, doc)

    def _advance(self, project: CanvasProject, now: float) -> None:
        """One poll's worth of progress for a project's current run."""
        if project.status in ("Completed", "Failed"):
            return
        pipeline = project.pipeline
        project.run_polls += 1
        if pipeline.seconds_to_finish is not None:
            done = now - project.run_started_at >= pipeline.seconds_to_finish
        else:
            done = project.run_polls > pipeline.polls_to_finish
        if not done:
            project.status = "Pending" if project.run_polls == 1 else "InProgress"
            return
        if pipeline.fails_for_good or project.failures_left > 0:
            project.status = "Failed"
            return
        project.status = "Completed"
        project.completed_at = now
        if not project.artifacts:
            for index, fmt in enumerate(pipeline.outputs):
                artifact_id = self.random_uuid()
                artifact = CanvasArtifact(
                    artifact_id=artifact_id,
                    project_id=project.id,
                    name=f"{project.order_number}_{project.line_item_index}_{index}.{fmt}",
                    format=fmt,
                    anonymous=pipeline.anonymous_access,
                    size=_artifact_file(fmt, self.behaviour.file_size, artifact_id).size,
                )
                project.artifacts.append(artifact)
                self._artifacts[artifact.artifact_id] = artifact

    def _file_details(self, project: CanvasProject, artifact: CanvasArtifact) -> dict[str, Any]:
        return {
            "url": f"{self.base_url}/public/artifacts/{artifact.artifact_id}/{artifact.name}",
            "name": artifact.name,
            "format": artifact.format,
            "artifactId": artifact.artifact_id,
            "anonymousAccess": artifact.anonymous,
            "size": artifact.size,
            "projectItemId": project.id * 10,
            "orderLineItemId": project.line_item_id,
            "orderLineItemIndex": project.line_item_index,
        }

    def _resume(self, request: Request) -> Response:
        return self._recover(request, "resume")

    def _restart(self, request: Request) -> Response:
        return self._recover(request, "restart")

    def _recover(self, request: Request, action: Recovery) -> Response:
        self.tokens.require(request)
        now = self.clock()
        with self._state:
            project = self._project(request, now)
            if project.status != "Failed":
                return general_conflict(f"pipeline is {project.status}, not Failed")
            project.recoveries.append((now, action))
            if not project.pipeline.fails_for_good and action in project.pipeline.cleared_by:
                project.failures_left -= 1
            project.status = "Pending"
            project.run += 1
            project.run_started_at = now
            project.run_polls = 0
        return Response(204)

    def _artifact_file(self, request: Request) -> Response:
        self.tokens.require(request)
        return self._serve_artifact(request, attachment=request.query.get("attachment") == "true")

    def _public_file(self, request: Request) -> Response:
        return self._serve_artifact(request, attachment=False, public=True)

    def _serve_artifact(
        self, request: Request, *, attachment: bool, public: bool = False
    ) -> Response:
        with self._state:
            artifact = self._artifacts.get(request.params["id"])
            if artifact is None or (public and artifact.name != request.params.get("name")):
                return problem(404, "Not Found", "artifact not found")
            if public and not artifact.anonymous:
                return problem(403, "Forbidden", "this artifact is not available anonymously")
            completed = self._projects[artifact.project_id].completed_at or 0.0
            if artifact.expired or (
                self.artifact_ttl_s is not None and self.clock() - completed >= self.artifact_ttl_s
            ):
                status = self.expired_artifact_status
                return problem(
                    status,
                    "Gone" if status == 410 else "Not Found",
                    "the artifact is no longer available",
                )
            if artifact.throttled < self.download_throttles:
                artifact.throttled += 1
                return problem(
                    429,
                    "Too Many Requests",
                    "artifact downloads are rate limited",
                    {"Retry-After": str(self.behaviour.retry_after_s)},
                )
            artifact.downloads += 1
        with self._state:
            lines = _render_lines(self._projects[artifact.project_id], artifact)
        file = _artifact_file(
            artifact.format,
            self.behaviour.file_size,
            artifact.artifact_id,
            self.behaviour.content_type,
            lines,
        )
        headers = {"Content-Type": file.content_type}
        if attachment:
            headers["Content-Disposition"] = f'attachment; filename="{artifact.name}"'
        return Response(200, file.chunks(), headers, content_length=file.size)


def _artifact_file(
    fmt: str,
    size: int,
    artifact_id: str,
    content_type: str | None = None,
    lines: Sequence[str] = (),
) -> GeneratedFile:
    return generated_file(fmt, size, f"cc artifact {artifact_id}", content_type, lines)


def _render_lines(project: CanvasProject, artifact: CanvasArtifact) -> list[str]:
    """What the project's pipeline "rendered": the order, the line item, the design."""
    item = f"line item {project.line_item_id} (#{project.line_item_index + 1})"
    if project.line_item_name:
        item += f": {project.line_item_name}"
    lines = [
        f"Customer's Canvas project {project.id}, artifact {artifact.artifact_id}",
        f"storefront {project.storefront_id}, order {project.order_id} "
        f"(number {project.order_number})",
        item,
        f"personalisation ({len(project.personalisation)}):",
    ]
    lines.extend(f"  {name}: {value}" for name, value in project.personalisation.items())
    return lines


def _project_dto(project: CanvasProject) -> dict[str, Any]:
    created = datetime.fromtimestamp(project.created_at, UTC).isoformat()
    return {
        "id": project.id,
        "storefrontId": project.storefront_id,
        "orderId": project.order_id,
        # A number, or null when the shop's order number is not one (the vendor's model).
        "orderNumber": int(project.order_number) if project.order_number.isdigit() else None,
        "orderName": f"#{project.order_number}",
        "orderLineItemId": project.line_item_id,
        "orderLineItemIndex": project.line_item_index,
        "customerId": "customer-1",
        "name": f"Order {project.order_number} item {project.line_item_index + 1}",
        "status": PROJECT_STATUS_ORDERED,
        "processingStatus": project.status,
        "created": created,
        "lastModified": created,
    }


def general_conflict(description: str) -> Response:
    """409 with the ``GeneralConflictDto`` the vendor's Storefront API declares."""
    return json_response(409, {"description": description, "type": "GeneralConflict"})


def _oauth_error(error: str, description: str) -> Response:
    return json_response(400, {"error": error, "error_description": description})
