"""A loopback CHILI GraFx Environment API: token endpoint, output tasks, downloads.

Behaves as ``shared/reference/provider-apis.md`` describes the real API:

- ``POST /oauth/token`` (JSON or form; client id/secret in the body or HTTP Basic;
  ``audience`` must be CHILI's) issues bearer tokens that every other route checks, and, like
  CHILI's, answers with the same cached token until shortly before it expires;
- ``POST /grafx/api/v1/environment/{env}/output/{format}`` starts a task (400 problem-details
  on validation errors);
- ``GET …/output/tasks/{taskId}`` answers 202 or 204 while running (``running_statuses`` are
  cycled, so clients meet both), 200 with ``links.download`` when done, 500 problem-details
  when the task failed, 404/410 once the task has expired;
- ``GET …/output/tasks/{taskId}/download`` streams a real PDF/PNG of ``behaviour.file_size``
  bytes; after the download's lifetime it answers 404/410 "no longer available";
- ``GET …/output/settings`` lists output settings.

A task fails when its template/project id starts with ``fail-`` or, at random,
with ``task_failure_rate`` (seeded RNG).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

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
from printflow_tools.sandboxes.files import generated_file

CHILI_AUDIENCE = "https://chiligrafx.com"
OUTPUT_FORMATS = ("pdf", "png", "jpg", "gif", "mp4")
API_PREFIX = "/grafx/api/v1/environment/{env}"
TOKEN_REISSUE_WITHIN_S = 3600.0
MAX_VARIABLE_ROWS = 10_000

DEFAULT_OUTPUT_SETTINGS: tuple[dict[str, Any], ...] = (
    {"id": "print-pdf", "name": "Print PDF (PDF/X-4)", "type": "pdf", "default": True},
    {"id": "preview-png", "name": "Preview PNG", "type": "png", "default": False},
    {"id": "web-jpg", "name": "Web JPG", "type": "jpg", "default": False},
)


@dataclass
class ChiliTask:
    """One output task as the sandbox tracks it (``task()`` returns copies)."""

    task_id: str
    output_format: str
    output_settings_id: str
    template_id: str | None
    project_id: str | None
    layouts_to_export: list[Any]
    variables: list[dict[str, str | None]] | None
    created_at: float
    fails: bool
    polls: int = 0
    finished_at: float | None = None
    expired: bool = False
    download_expired: bool = False
    downloads: int = 0
    request_body: dict[str, Any] = field(default_factory=dict)


class ChiliSandbox(SandboxServer):
    """CHILI GraFx on 127.0.0.1; all knobs are attributes and may change while it runs."""

    name = "chili"

    def __init__(
        self,
        *,
        environment: str = "printflow-sandbox",
        client_id: str = "chili-client",
        client_secret: str = "chili-secret",  # noqa: S107 - a sandbox credential
        audience: str = CHILI_AUDIENCE,
        token_ttl_s: int = 3600,
        running_statuses: Sequence[int] = (202, 204),
        polls_until_done: int = 2,
        seconds_until_done: float | None = None,
        task_failure_rate: float = 0.0,
        failure_detail: str = "Output generation failed: font 'Brand Sans' could not be loaded",
        task_ttl_s: float = 7 * 24 * 3600,
        expired_task_status: int = 404,
        download_ttl_s: float = 4 * 3600,
        expired_download_status: int = 404,
        output_settings: Sequence[dict[str, Any]] = DEFAULT_OUTPUT_SETTINGS,
        behaviour: Behaviour | None = None,
        clock: Clock = time.time,
    ) -> None:
        super().__init__(behaviour=behaviour, clock=clock)
        self.environment = environment
        self.audience = audience
        # CHILI's endpoint returns the same token until about an hour before it expires
        # (shared/reference/provider-apis.md); short test lifetimes renew in their last half.
        self.tokens = TokenIssuer(
            client_id,
            client_secret,
            token_ttl_s,
            clock,
            reissue_within_s=min(TOKEN_REISSUE_WITHIN_S, token_ttl_s / 2),
        )
        self.running_statuses = tuple(running_statuses)
        self.polls_until_done = polls_until_done
        self.seconds_until_done = seconds_until_done
        self.task_failure_rate = task_failure_rate
        self.failure_detail = failure_detail
        self.task_ttl_s = task_ttl_s
        self.expired_task_status = expired_task_status
        self.download_ttl_s = download_ttl_s
        self.expired_download_status = expired_download_status
        self.output_settings = [dict(s) for s in output_settings]
        # An outage that starts mid-order: once this many tasks exist, starts answer 503.
        self.unavailable_after_tasks: int | None = None
        # A broken CHILI (or a proxy in front of it): task polls answer 200 with an HTML page.
        self.garbage_polls = False
        self._tasks: dict[str, ChiliTask] = {}
        self._tasks_lock = threading.Lock()

        self.route("POST", "/oauth/token", self._token, inject=False)
        self.route("GET", f"{API_PREFIX}/output/settings", self._settings)
        self.route("POST", f"{API_PREFIX}/output/{{fmt}}", self._start)
        self.route("GET", f"{API_PREFIX}/output/tasks/{{task_id}}", self._poll)
        self.route("GET", f"{API_PREFIX}/output/tasks/{{task_id}}/download", self._download)

    # -- URLs and knobs ------------------------------------------------------------------

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/oauth/token"

    @property
    def environment_url(self) -> str:
        return f"{self.base_url}/grafx/api/v1/environment/{self.environment}"

    def expire_tokens(self) -> None:
        """Every token issued so far answers 401 from now on."""
        self.tokens.expire_all()

    def refuse_current_token(self) -> None:
        """The API refuses the token the endpoint hands out, which it keeps handing out."""
        scope = "output:static output:animated"
        self.tokens.refuse(self.tokens.issue(scope)["access_token"])

    def expire_task(self, task_id: str) -> None:
        with self._tasks_lock:
            self._tasks[task_id].expired = True

    def expire_downloads(self) -> None:
        """Every finished task's download answers "no longer available" from now on."""
        with self._tasks_lock:
            for task in self._tasks.values():
                task.download_expired = True

    def restore_downloads(self) -> None:
        """Undo :meth:`expire_downloads` (the fault is fixed: links work again)."""
        with self._tasks_lock:
            for task in self._tasks.values():
                task.download_expired = False

    def task(self, task_id: str) -> ChiliTask:
        with self._tasks_lock:
            return dataclasses.replace(self._tasks[task_id])

    def tasks(self) -> list[ChiliTask]:
        with self._tasks_lock:
            return [dataclasses.replace(t) for t in self._tasks.values()]

    # -- routes --------------------------------------------------------------------------

    def _token(self, request: Request) -> Response:
        fields: dict[str, Any]
        if request.content_type == "application/json":
            doc = request.json()
            if not isinstance(doc, dict):
                return _oauth_error(400, "invalid_request", "body must be a JSON object")
            fields = doc
        else:
            fields = request.form()
        if fields.get("grant_type") != "client_credentials":
            return _oauth_error(400, "unsupported_grant_type", "use client_credentials")
        self.tokens.authenticate(request, fields)
        if fields.get("audience") != self.audience:
            return _oauth_error(403, "access_denied", "Service not found: audience")
        return json_response(200, self.tokens.issue("output:static output:animated"))

    def _check(self, request: Request) -> None:
        self.tokens.require(request)
        if request.params.get("env") != self.environment:
            raise HttpError(problem(404, "Not Found", "environment not found"))

    def _settings(self, request: Request) -> Response:
        self._check(request)
        return json_response(
            200,
            {"pageSize": len(self.output_settings), "links": {}, "data": self.output_settings},
        )

    def _start(self, request: Request) -> Response:
        self._check(request)
        limit = self.unavailable_after_tasks
        with self._tasks_lock:
            started = len(self._tasks)
        if limit is not None and started >= limit:
            return problem(503, "Service Unavailable", "output generation is paused")
        fmt = request.params["fmt"]
        if fmt not in OUTPUT_FORMATS:
            return problem(404, "Not Found", f"unknown output type {fmt!r}")
        body = request.json()
        if not isinstance(body, dict):
            return _invalid("request body must be a JSON object")
        settings_id = body.get("outputSettingsId")
        if not isinstance(settings_id, str) or not settings_id:
            return _invalid("outputSettingsId is required")
        if settings_id not in {s.get("id") for s in self.output_settings}:
            return _invalid(f"output settings {settings_id!r} not found")
        template_id, project_id = body.get("templateId"), body.get("projectId")
        if (template_id is None) == (project_id is None):
            return _invalid("give exactly one of templateId or projectId")
        source = template_id if template_id is not None else project_id
        if not isinstance(source, str) or not source:
            return _invalid("templateId/projectId must be a non-empty string")
        layouts = body.get("layoutsToExport", [])
        if not isinstance(layouts, list) or not all(isinstance(x, str | int) for x in layouts):
            return _invalid("layoutsToExport must be a list of layout ids")
        variables = body.get("variables")
        if variables is not None:
            problem_ = _check_variables(variables)
            if problem_:
                return _invalid(problem_)
        task_id = self.random_uuid()
        fails = source.startswith("fail-") or (
            self.task_failure_rate > 0 and self.chance(self.task_failure_rate)
        )
        task = ChiliTask(
            task_id=task_id,
            output_format=fmt,
            output_settings_id=settings_id,
            template_id=template_id,
            project_id=project_id,
            layouts_to_export=layouts,
            variables=variables,
            created_at=self.clock(),
            fails=fails,
            request_body=body,
        )
        with self._tasks_lock:
            self._tasks[task_id] = task
        return json_response(
            200,
            {
                "data": {"taskId": task_id},
                "links": {"taskInfo": f"{self._env_url(request)}/output/tasks/{task_id}"},
            },
        )

    def _poll(self, request: Request) -> Response:
        self._check(request)
        if self.garbage_polls:
            return Response(200, b"<html>502 Bad Gateway</html>", {"Content-Type": "text/html"})
        now = self.clock()
        with self._tasks_lock:
            task = self._tasks.get(request.params["task_id"])
            if task is None:
                return problem(404, "Not Found", "task not found")
            if task.expired or now - task.created_at >= self.task_ttl_s:
                task.expired = True
                status = self.expired_task_status
                return problem(status, "Not Found" if status == 404 else "Gone", "task expired")
            task.polls += 1
            if self.seconds_until_done is not None:
                done = now - task.created_at >= self.seconds_until_done
            else:
                done = task.polls > self.polls_until_done
            if not done:
                running = self.running_statuses[(task.polls - 1) % len(self.running_statuses)]
                if running == 204:
                    return Response(204)
                return json_response(running, {"data": {"taskId": task.task_id}})
            if task.finished_at is None:
                task.finished_at = now
            if task.fails:
                return problem(500, "Internal Server Error", self.failure_detail)
        url = f"{self._env_url(request)}/output/tasks/{task.task_id}/download"
        return json_response(200, {"data": {"taskId": task.task_id}, "links": {"download": url}})

    def _download(self, request: Request) -> Response:
        self._check(request)
        now = self.clock()
        with self._tasks_lock:
            task = self._tasks.get(request.params["task_id"])
            if task is None or task.finished_at is None or task.fails:
                return problem(404, "Not Found", "no output for this task")
            if task.download_expired or now - task.finished_at >= self.download_ttl_s:
                task.download_expired = True
                status = self.expired_download_status
                return problem(
                    status,
                    "Gone" if status == 410 else "Not Found",
                    "the output is no longer available",
                )
            task.downloads += 1
        file = generated_file(
            task.output_format,
            self.behaviour.file_size,
            f"chili task {task.task_id}",
            self.behaviour.content_type,
            lines=self._render_lines(task),
        )
        filename = f"{task.task_id}.{task.output_format}"
        return Response(
            200,
            file.chunks(),
            {
                "Content-Type": file.content_type,
                "Content-Disposition": f'attachment; filename="{filename}"',
            },
            content_length=file.size,
        )

    def _render_lines(self, task: ChiliTask) -> list[str]:
        """What the task was sent, as the "render" shows it."""
        source = (
            f"template {task.template_id}"
            if task.template_id is not None
            else f"project {task.project_id}"
        )
        lines = [
            f"CHILI GraFx output task {task.task_id}",
            f"environment {self.environment}, {source}",
            f"output settings {task.output_settings_id} ({task.output_format})",
        ]
        if task.layouts_to_export:
            lines.append("layouts: " + ", ".join(str(x) for x in task.layouts_to_export))
        rows = task.variables or []
        lines.append(f"variables ({len(rows)} row{'s' if len(rows) != 1 else ''}):")
        for index, row in enumerate(rows):
            prefix = f"  [{index}] " if len(rows) > 1 else "  "
            lines.extend(f"{prefix}{name}: {value}" for name, value in row.items())
        return lines

    def _env_url(self, request: Request) -> str:
        # Links are absolute, built from the Host the client used (like the real API).
        host = request.headers.get("Host") or self.base_url.removeprefix("http://")
        return f"http://{host}/grafx/api/v1/environment/{self.environment}"


def _invalid(detail: str) -> Response:
    return problem(400, "Bad Request", detail)


def _oauth_error(status: int, error: str, description: str) -> Response:
    return json_response(status, {"error": error, "error_description": description})


def _check_variables(variables: Any) -> str | None:
    if not isinstance(variables, list):
        return "variables must be a list of maps"
    if len(variables) > MAX_VARIABLE_ROWS:
        return f"variables: at most {MAX_VARIABLE_ROWS} rows"
    for row in variables:
        if not isinstance(row, dict) or not all(
            isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in row.items()
        ):
            return "variables: each row must map names to strings or null"
    return None
