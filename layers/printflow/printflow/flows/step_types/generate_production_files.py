"""The generate-production-files step type: render the order's print files at its provider.

Options: ``fileFormat`` (a short format name the storefront's provider must be able to make)
and ``provider`` (opaque provider options, at most 4 KiB of JSON), both passed to the render
provider untouched.

Compiled as a callback task (``lambda:invoke.waitForTaskToken``, always with a timeout): its
Lambda (``functions/generate_production_files``, :mod:`printflow.render.start`) records the
render jobs with the task token and returns; the download function completes the token,
with the step's status, once the last job's files are in S3, and the poller fails it with
one of :data:`RENDER_STEP_ERRORS` when a job fails for good. Fits a storefront whose provider
can produce the ``fileFormat`` asked for.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, replace
from typing import Any

from printflow.domain.storefront import Storefront
from printflow.flows.model import RetryPolicy, Step, StepType
from printflow.flows.options import ErrorCollector, fail
from printflow.flows.step_types.spec import StepTypeSpec, TaskShape
from printflow.providers.formats import check_file_format
from printflow.providers.registry import parse_provider_settings
from printflow.validators import UrlPolicy

MAX_PROVIDER_OPTIONS_BYTES = 4096
_FILE_FORMAT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,31}$")

# A render step waits for its task token; without a timeout it could wait a year.
DEFAULT_RENDER_TIMEOUT_SECONDS = 3600
RENDER_RETRY = RetryPolicy(max_attempts=10)


def render_retry(timeout_s: int) -> RetryPolicy:
    """A render step's default retry: enough attempts to span its timeout.

    A render start meets the provider's 5xx/429 on every call, and an outage is waited out
    until the step's timeout (the starter fails the step for good after that, see
    :mod:`printflow.render.start`), never for a fixed count: three retries (14 s) turned a
    short outage into a failed order, and ten rode out only ~6 minutes. With ``FULL`` jitter
    a delay averages half its cap, so the attempts once the backoff reaches
    ``maxDelaySeconds`` are counted at half of it.
    """
    base = RENDER_RETRY
    ramp, delay = 0, float(base.interval_seconds)
    while delay < base.max_delay_seconds:
        ramp, delay = ramp + 1, delay * base.backoff_rate
    capped = math.ceil(timeout_s / (base.max_delay_seconds / 2))
    return replace(base, max_attempts=max(base.max_attempts, ramp + capped))


# What the poller and the download function fail a render task with (printflow.render.
# decisions, printflow.download.service): caught like every step error.
RENDER_STEP_ERRORS = (
    "Render.Failed",
    "Render.Expired",
    "Render.Unavailable",
    "Render.TimedOut",
    "Download.Failed",
)


@dataclass(frozen=True, slots=True)
class GenerateProductionFilesOptions:
    """``fileFormat`` and ``provider`` are passed to the render provider untouched."""

    file_format: str | None = None
    provider: dict[str, Any] | None = field(default=None, hash=False)

    def to_document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        if self.file_format is not None:
            doc["fileFormat"] = self.file_format
        if self.provider is not None:
            doc["provider"] = self.provider
        return doc


def _generate_options(raw: dict[str, Any], where: str) -> GenerateProductionFilesOptions:
    errors = ErrorCollector()
    file_format = raw.get("fileFormat")
    if file_format is not None and (
        not isinstance(file_format, str) or not _FILE_FORMAT.fullmatch(file_format)
    ):
        errors.add(
            fail(
                f"{where}.fileFormat",
                "must be a short format name (letters, digits, '.', '_', '+', '-'; <= 32 chars)",
            )
        )
    provider = raw.get("provider")
    errors.check(lambda: _check_provider_options(provider, where))
    errors.raise_if_any()
    return GenerateProductionFilesOptions(file_format=file_format, provider=provider)


def _check_provider_options(provider: Any, where: str) -> None:
    if provider is not None:
        if not isinstance(provider, dict):
            raise fail(f"{where}.provider", "must be an object")
        try:
            encoded = json.dumps(provider, allow_nan=False, separators=(",", ":"))
        except (TypeError, ValueError):
            raise fail(f"{where}.provider", "must be JSON-serialisable") from None
        if len(encoded.encode()) > MAX_PROVIDER_OPTIONS_BYTES:
            raise fail(f"{where}.provider", f"must be at most {MAX_PROVIDER_OPTIONS_BYTES} bytes")
        _refuse_path_keys(provider, f"{where}.provider")


def _refuse_path_keys(value: Any, where: str) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if str(key).endswith(".$"):
                raise fail(f"{where}.{key}", "keys ending in '.$' are reserved by Step Functions")
            _refuse_path_keys(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_path_keys(item, f"{where}[{index}]")


def _render_fits(step: Step, storefront: Storefront, policy: UrlPolicy) -> None:
    options = step.options
    assert isinstance(options, GenerateProductionFilesOptions)
    if storefront.provider is None or options.file_format is None:
        return  # no provider: the render step fails at run time, saying so
    config = parse_provider_settings(storefront.provider, policy)
    check_file_format(step.id, options.file_format, storefront.provider, config)


SPEC: StepTypeSpec[GenerateProductionFilesOptions] = StepTypeSpec(
    name=StepType.GENERATE_PRODUCTION_FILES,
    option_keys=frozenset({"fileFormat", "provider"}),
    parse=_generate_options,
    options_type=GenerateProductionFilesOptions,
    function="GenerateProductionFilesFunction",
    handler="functions/generate_production_files/app.py",
    task=TaskShape.CALLBACK,
    fits=_render_fits,
    default_retry=RENDER_RETRY,
    default_timeout_s=DEFAULT_RENDER_TIMEOUT_SECONDS,
    retry_spanning=render_retry,
    task_errors=RENDER_STEP_ERRORS,
)
