"""The update-storefront-order step type: tell the shop its order's files are made.

Options: ``tags`` (added, never replacing the shop's own), ``status`` (the platform's order
status), ``note`` (a template with the email placeholders plus ``{{artifacts.links}}``); at
least one of the three.

Compiled as a plain Lambda task (``functions/update_storefront_order``,
:mod:`printflow.steps.write_back`): the Lambda writes to the shop and the step's status
before it returns. Fits a storefront with a store API whose base URL the URL policy accepts
and whose platform has the ``status`` asked for (:func:`check_write_back_fits`, which the
step's Lambda runs again at run time).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from printflow.domain.storefront import Storefront
from printflow.errors import ValidationError
from printflow.flows.model import Step, StepType
from printflow.flows.options import BODY_CONTROL_CHARS, CONTROL_CHARS, check_placeholders, fail
from printflow.flows.placeholders import NOTE_PLACEHOLDERS
from printflow.flows.step_types.spec import StepTypeSpec
from printflow.store_apis.registry import store_platform
from printflow.validators import UrlPolicy, check_url

MAX_TAGS = 20
MAX_TAG_LENGTH = 40  # Shopify's limit per tag
MAX_NOTE_LENGTH = 5000
# A status as the platforms name them: "completed", "on-hold", "Awaiting Shipment", "10".
_STATUS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _-]{0,39}$")


@dataclass(frozen=True, slots=True)
class UpdateStorefrontOrderOptions:
    """Tell the shop: ``tags`` added (never replacing the shop's own), an optional platform
    ``status``, an optional ``note`` template (the email placeholders plus
    ``{{artifacts.links}}``). At least one of the three."""

    tags: tuple[str, ...] = ()
    status: str | None = None
    note: str | None = None

    def to_document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        if self.tags:
            doc["tags"] = list(self.tags)
        if self.status is not None:
            doc["status"] = self.status
        if self.note is not None:
            doc["note"] = self.note
        return doc


def _update_storefront_options(raw: dict[str, Any], where: str) -> UpdateStorefrontOrderOptions:
    tags = _tags(raw.get("tags"), f"{where}.tags")
    status = raw.get("status")
    if status is not None and (not isinstance(status, str) or not _STATUS.fullmatch(status)):
        raise fail(
            f"{where}.status",
            "a status as the platform names it (letters, digits, ' ', '_', '-'; <= 40 chars)",
        )
    note = raw.get("note")
    if note is not None:
        if not isinstance(note, str) or not note.strip():
            raise fail(f"{where}.note", "a non-empty template")
        if BODY_CONTROL_CHARS.search(note):
            raise fail(f"{where}.note", "must not contain control characters (except newlines)")
        if len(note) > MAX_NOTE_LENGTH:
            raise fail(f"{where}.note", f"must be at most {MAX_NOTE_LENGTH} characters")
        check_placeholders(note, f"{where}.note", NOTE_PLACEHOLDERS)
    if not tags and status is None and note is None:
        raise fail(where, "give at least one of tags, status, note")
    return UpdateStorefrontOrderOptions(tags=tags, status=status, note=note)


def _tags(raw: Any, where: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not raw or len(raw) > MAX_TAGS:
        raise fail(where, f"a list of 1-{MAX_TAGS} tags")
    tags: dict[str, str] = {}
    for index, tag in enumerate(raw):
        at = f"{where}[{index}]"
        if not isinstance(tag, str) or not tag.strip():
            raise fail(at, "a non-empty string")
        if len(tag) > MAX_TAG_LENGTH:
            raise fail(at, f"at most {MAX_TAG_LENGTH} characters")
        # Shopify keeps tags as one comma-separated list: a comma would split the tag.
        if "," in tag or CONTROL_CHARS.search(tag) or "{{" in tag or "}}" in tag:
            raise fail(at, "no commas, control characters or placeholders")
        tags.setdefault(tag.strip().casefold(), tag.strip())
    return tuple(tags.values())


def check_write_back_fits(
    storefront: Storefront,
    options: UpdateStorefrontOrderOptions,
    policy: UrlPolicy,
    where: str,
) -> None:
    """The storefront can take this step: a store API, a base URL the policy accepts, a status
    the platform has. :class:`ValidationError` naming the step."""
    entry = store_platform(storefront.platform, where)
    if storefront.store_api is None:
        raise ValidationError(
            f"{where}: storefront {storefront.storefront_id!r} has no storeApi to write back "
            "to (see README: Writing back to the shop)"
        )
    check_url(storefront.store_api.base_url, f"{where}: storeApi.baseUrl", policy)
    if options.status is not None:
        try:
            entry.status_value(options.status)
        except ValidationError as exc:
            raise ValidationError(f"{where}.options.status: {exc}") from None


def _write_back_fits(step: Step, storefront: Storefront, policy: UrlPolicy) -> None:
    options = step.options
    assert isinstance(options, UpdateStorefrontOrderOptions)
    check_write_back_fits(storefront, options, policy, f"step {step.id!r}")


SPEC: StepTypeSpec[UpdateStorefrontOrderOptions] = StepTypeSpec(
    name=StepType.UPDATE_STOREFRONT_ORDER,
    option_keys=frozenset({"tags", "status", "note"}),
    parse=_update_storefront_options,
    options_type=UpdateStorefrontOrderOptions,
    function="UpdateStorefrontOrderFunction",
    handler="functions/update_storefront_order/app.py",
    fits=_write_back_fits,
)
