"""Storefront documents: the JSON an operator registers, read into a :class:`Storefront`.

Every storefront's common fields are checked first, then the platform (from the platform
table, :mod:`.registry`) says which settings and which ``storeApi`` fields it adds; another
platform's setting is refused. The storefront returned holds its platform's entry
(``Storefront.shape``), so ``Storefront.to_document`` writes that platform's settings without
importing this table. Parsing is pure: nothing is stored, so a crash leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from printflow.domain.storefront import (
    COMMON_FIELDS,
    DEFAULT_RECONCILE_INTERVAL_S,
    FLOW_NAME,
    MAX_RECONCILE_INTERVAL_S,
    MIN_RECONCILE_INTERVAL_S,
    MIN_SECRET_LENGTH,
    STOREFRONT_ID,
    ProviderName,
    ProviderSettings,
    StoreApi,
    Storefront,
    StorefrontShape,
)
from printflow.errors import ValidationError
from printflow.platforms.registry import UnknownPlatform, platform_for, registered_platforms
from printflow.validators import is_secret_name


def parse_storefront(doc: Any, *, require_secret: bool = False) -> tuple[Storefront, str | None]:
    """Validate a storefront document; return the storefront and its webhook secret, if any.

    Every message names the field, so an operator can fix the file without guessing.
    """
    if not isinstance(doc, dict):
        raise ValidationError("storefront: expected a JSON object")
    shapes: list[StorefrontShape] = list(registered_platforms())
    known = COMMON_FIELDS | {s.field for shape in shapes for s in shape.settings}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise ValidationError(f"storefront: unknown field(s) {', '.join(unknown)}")

    storefront_id = doc.get("storefrontId")
    if not isinstance(storefront_id, str) or not STOREFRONT_ID.match(storefront_id):
        raise ValidationError(
            "storefront.storefrontId: required, 1-64 letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    where = f"storefront {storefront_id!r}"

    platform_value = doc.get("platform")
    try:
        shape: StorefrontShape = platform_for(
            platform_value if isinstance(platform_value, str) else ""
        )
    except UnknownPlatform:
        allowed = ", ".join(s.id.value for s in shapes)
        raise ValidationError(f"{where}.platform: must be one of {allowed}") from None

    flow = doc.get("flow", "default")
    if not isinstance(flow, str) or not FLOW_NAME.match(flow):
        raise ValidationError(f"{where}.flow: lowercase letters, digits and '-', up to 40")

    secret = doc.get("webhookSecret")
    if secret is not None and (not isinstance(secret, str) or len(secret) < MIN_SECRET_LENGTH):
        raise ValidationError(
            f"{where}.webhookSecret: must be a string of at least {MIN_SECRET_LENGTH} characters"
        )
    if require_secret and secret is None:
        raise ValidationError(f"{where}.webhookSecret: required when registering a storefront")

    settings = _parse_platform_settings(doc, shape, shapes, where)

    description = doc.get("description", "")
    if not isinstance(description, str) or len(description) > 500:
        raise ValidationError(f"{where}.description: a string of at most 500 characters")

    provider = _parse_provider(doc.get("provider"), where)
    store_api = _parse_store_api(doc.get("storeApi"), shape, where, settings)
    return (
        Storefront(
            storefront_id=storefront_id,
            platform=shape.id,
            flow=flow,
            provider=provider,
            description=description,
            store_api=store_api,
            shape=shape,
            **settings,
        ),
        secret,
    )


def _parse_platform_settings(
    doc: dict[str, Any], own: StorefrontShape, shapes: list[StorefrontShape], where: str
) -> dict[str, Any]:
    """The platform's own settings by attribute; another platform's setting is refused."""
    settings: dict[str, Any] = {}
    for shape in shapes:
        for setting in shape.settings:
            if setting.field not in doc:
                continue
            value = setting.parse(doc[setting.field], f"{where}.{setting.field}")
            if shape.id == own.id:
                settings[setting.attribute] = value
            elif setting.tolerated_elsewhere is None or value != setting.tolerated_elsewhere:
                raise ValidationError(
                    f"{where}.{setting.field}: only {shape.title} storefronts use it"
                )
    return settings


def _parse_store_api(
    doc: Any, shape: StorefrontShape, where: str, settings: Mapping[str, Any]
) -> StoreApi | None:
    if doc is None:
        return None
    where = f"{where}.storeApi"
    api_shape = shape.store_api
    if api_shape is None:
        raise ValidationError(f"{where}: {shape.id.value} storefronts have no store API")
    if not isinstance(doc, dict):
        raise ValidationError(f"{where}: expected an object with credentialsSecret")
    unknown = sorted(set(doc) - api_shape.fields)
    if unknown:
        raise ValidationError(f"{where}: unknown field(s) {', '.join(unknown)}")
    secret = doc.get("credentialsSecret")
    if not is_secret_name(secret):
        raise ValidationError(
            f"{where}.credentialsSecret: required, a Secrets Manager secret name "
            "(letters, digits and /_+=.@-)"
        )
    store_hash, api_version, default_base = api_shape.parts(doc, where, settings)
    base_url = doc.get("baseUrl", default_base)
    if not isinstance(base_url, str) or not base_url:
        # Judged fully (https, no credentials...) by printflow.storefronts at registration.
        raise ValidationError(f"{where}.baseUrl: required, an https URL{api_shape.base_url_hint}")
    interval = doc.get("reconcileIntervalS", DEFAULT_RECONCILE_INTERVAL_S)
    if (
        isinstance(interval, bool)
        or not isinstance(interval, int)
        or not MIN_RECONCILE_INTERVAL_S <= interval <= MAX_RECONCILE_INTERVAL_S
    ):
        raise ValidationError(
            f"{where}.reconcileIntervalS: seconds between order pulls, an integer from "
            f"{MIN_RECONCILE_INTERVAL_S} to {MAX_RECONCILE_INTERVAL_S}"
        )
    return StoreApi(store_hash, secret, base_url.rstrip("/"), api_version, interval)


def _parse_provider(doc: Any, where: str) -> ProviderSettings | None:
    if doc is None:
        return None
    if not isinstance(doc, dict):
        raise ValidationError(f"{where}.provider: expected an object with a 'name'")
    try:
        name = ProviderName(str(doc.get("name", "")))
    except ValueError:
        allowed = ", ".join(p.value for p in ProviderName)
        raise ValidationError(f"{where}.provider.name: must be one of {allowed}") from None
    settings = {k: v for k, v in doc.items() if k != "name"}
    return ProviderSettings(name=name, settings=settings)


def storefront_from_document(doc: dict[str, Any]) -> Storefront:
    """Rebuild a stored storefront (already validated when it was put)."""
    storefront, _ = parse_storefront(doc)
    return storefront
