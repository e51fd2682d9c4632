"""The update-storefront-order step: tell the shop its order's files are made.

Options (validated with the flow's rules,
:mod:`printflow.flows.step_types.update_storefront_order`):

- ``tags``: added to the order's tags, never replacing the shop's own; adding a tag the order
  has already is harmless. Platforms without order tags (WooCommerce, BigCommerce) get them
  as a ``Tags: a, b`` line of the note instead;
- ``status``: the platform's order status (WooCommerce slug, BigCommerce name or id;
  Shopify has none and refuses it);
- ``note``: a template with the email placeholders plus ``{{artifacts.links}}`` (one
  ``name: link`` line per stored file, presigned S3 GETs). Written once per execution and
  step: a claim in the order table (:mod:`printflow.adapters.step_effects`) keyed by
  storefront, order, execution and step; and, for an attempt that dies between the shop's
  answer and marking the claim done, a marker ending the note (:func:`note_marker`) that
  the platform's client looks for among the order's notes before it adds one.

The storefront's ``storeApi`` says where its store is and which Secrets Manager secret holds
the credentials (:mod:`printflow.store_apis.registry`). Every request goes through the SSRF
guard (:mod:`printflow.net`), as the REST step's do. Outcome: StoreApiError transient (429
past the pacer, 5xx, network), throttled table or secret reads -> :class:`StepRetryable`;
anything a retry cannot change (no storeApi, refused credentials, unknown order, a refused
value, a blocked destination) -> :class:`StepFailed` naming the step.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from botocore.exceptions import BotoCoreError, ClientError

from printflow.adapters.order_table import OrderTable
from printflow.adapters.step_effects import Claim, StepEffects
from printflow.domain.storefront import Storefront
from printflow.errors import StepFailed, StepRetryable, ValidationError
from printflow.flows.placeholders import ARTIFACT_LINKS
from printflow.flows.step_types import update_storefront_order
from printflow.flows.step_types.update_storefront_order import (
    UpdateStorefrontOrderOptions,
    check_write_back_fits,
)
from printflow.net.ssrf import BlockedDestination, UnresolvableDestination
from printflow.steps.context import StepInvocation, load_order
from printflow.steps.rest import Presigner, artifact_links, request_budget
from printflow.steps.templating import render_message, template_values
from printflow.store_apis.base import Pacer, StoreApiError
from printflow.store_apis.registry import StorePlatform, load_store_credentials, store_platform
from printflow.validators import UrlPolicy

NOTE_EFFECT = "note"
# Shops keep notes for years; a presigned link lasts at most 7 days (SigV4), and no longer
# than the credentials that signed it.
NOTE_LINK_TTL_S = 7 * 24 * 3600

HttpFactory = Callable[[float], httpx.Client]


@dataclass(frozen=True, slots=True)
class WriteBack:
    """What the step told the shop."""

    platform: str
    tags: int
    status: str | None
    note: str  # "written", "already written" or "none"

    def to_dict(self) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "tags": self.tags,
            "status": self.status,
            "note": self.note,
        }


def parse_write_back_options(invocation: StepInvocation) -> UpdateStorefrontOrderOptions:
    try:
        return update_storefront_order.SPEC.parse_options(dict(invocation.options), "options")
    except ValidationError as exc:
        raise StepFailed(f"step {invocation.step_id!r}: {exc}") from exc


def note_text(
    options: UpdateStorefrontOrderOptions,
    values: Mapping[str, str | None],
    *,
    tags_in_note: bool,
) -> str | None:
    """The note to write, or None: the rendered template, plus the tags where the platform
    keeps no tags of its own."""
    parts = []
    if options.note is not None:
        parts.append(render_message(options.note, values).strip())
    if tags_in_note and options.tags:
        parts.append("Tags: " + ", ".join(options.tags))
    text = "\n\n".join(part for part in parts if part)
    return text or None


def note_marker(delivery_id: str) -> str:
    """The note's last line: stable for one execution and step (the invocation's delivery
    id, as emails are keyed), so a note already in the shop is recognised by it."""
    return f"[printflow note {delivery_id}]"


def link_lines(links: list[dict[str, Any]]) -> str:
    return "\n".join(f"{link['name']}: {link['url']}" for link in links) or "(no files)"


class WriteBackStep:
    def __init__(
        self,
        table: OrderTable,
        effects: StepEffects,
        secretsmanager: Any,
        http: HttpFactory,
        *,
        url_policy: UrlPolicy | None = None,
        presign: Presigner | None = None,
        operations_email: str | None = None,
        max_timeout_s: float = 10.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._table = table
        self._effects = effects
        self._secrets = secretsmanager
        self._http = http
        self._url_policy = url_policy or UrlPolicy()
        self._presign = presign
        self._operations_email = operations_email
        self._max_timeout_s = max_timeout_s
        self._clock = clock
        self._sleep = sleep

    def run(self, invocation: StepInvocation, *, remaining_s: float) -> WriteBack:
        where = f"step {invocation.step_id!r}"
        options = parse_write_back_options(invocation)
        item = load_order(self._table, invocation.order)
        invocation = invocation.with_recorded_error(item)
        storefront = self._storefront(invocation)
        platform, credentials, status = self._prepare(storefront, options, where)
        assert storefront.store_api is not None  # _prepare checked it

        values = template_values(item, invocation.error, operations_email=self._operations_email)
        if options.note is not None and ARTIFACT_LINKS in options.note:
            now = self._clock()
            links = artifact_links(
                item.get("artifacts"), self._presign, now=now, expires_s=NOTE_LINK_TTL_S
            )
            values = {**values, ARTIFACT_LINKS: link_lines(links)}
        note = note_text(options, values, tags_in_note=not platform.has_tags)

        budget = request_budget(remaining_s, self._max_timeout_s)
        order_id = invocation.order.order_id
        note_outcome = "none"
        try:
            with self._http(budget) as http:
                client = platform.write_back(
                    http, storefront.store_api, credentials, Pacer(budget / 2, sleep=self._sleep)
                )
                if options.tags and platform.has_tags:
                    client.add_tags(order_id, options.tags)
                if status is not None:
                    client.set_status(order_id, status)
                if note is not None:
                    note_outcome = self._write_note_once(client, invocation, note)
        except StoreApiError as exc:
            if exc.transient:
                wait = f" (it asks to wait {exc.retry_after_s:g} s)" if exc.retry_after_s else ""
                raise StepRetryable(f"{where}: {exc.message}{wait}") from exc
            raise StepFailed(f"{where}: {exc.message}") from exc
        except BlockedDestination as exc:
            raise StepFailed(f"{where}: the store API's address is refused: {exc}") from exc
        except UnresolvableDestination as exc:
            raise StepRetryable(f"{where}: {exc}") from exc
        return WriteBack(
            platform=storefront.platform.value,
            tags=len(options.tags),
            status=None if status is None else str(status),
            note=note_outcome,
        )

    def _storefront(self, invocation: StepInvocation) -> Storefront:
        try:
            storefront = self._table.get_storefront(invocation.order.storefront_id)
        except (ClientError, BotoCoreError) as exc:
            raise StepRetryable(f"storefront config unavailable ({type(exc).__name__})") from exc
        if storefront is None:
            raise StepFailed(f"storefront {invocation.order.storefront_id!r} is not registered")
        return storefront

    def _prepare(
        self, storefront: Storefront, options: UpdateStorefrontOrderOptions, where: str
    ) -> tuple[StorePlatform, dict[str, str], str | int | None]:
        """The platform, its credentials and the status value; StepFailed when unusable."""
        try:
            check_write_back_fits(storefront, options, self._url_policy, where)
            entry = store_platform(storefront.platform, where)
            assert storefront.store_api is not None
            status = None if options.status is None else entry.status_value(options.status)
            credentials = load_store_credentials(
                self._secrets,
                storefront.platform,
                storefront.store_api,
                f"storefront {storefront.storefront_id!r}",
            )
        except ValidationError as exc:
            message = str(exc)
            raise StepFailed(
                message if message.startswith(where) else f"{where}: {message}"
            ) from exc
        except (ClientError, BotoCoreError) as exc:
            raise StepRetryable(f"{where}: the store API credentials could not be read") from exc
        return entry, credentials, status

    def _write_note_once(self, client: Any, invocation: StepInvocation, note: str) -> str:
        key, delivery = invocation.order, invocation.delivery_id
        claim = self._effects.claim(
            key,
            NOTE_EFFECT,
            delivery,
            step=invocation.step_id,
            execution=invocation.execution,
            now=self._clock(),
        )
        if claim is Claim.DONE:
            return "already written"
        if claim is Claim.BUSY:
            raise StoreApiError("another attempt of this step is writing the note", transient=True)
        marker = note_marker(delivery)
        try:
            client.add_note(
                invocation.order.order_id,
                f"{note}\n\n{marker}",
                step_id=invocation.step_id,
                marker=marker,
            )
        except StoreApiError as exc:
            if not exc.transient:  # refused: certainly not written, a rerun may write it
                self._effects.release(key, NOTE_EFFECT, delivery)
            raise
        self._effects.mark_done(key, NOTE_EFFECT, delivery, now=self._clock())
        return "written"
