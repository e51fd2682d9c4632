"""The platform table: every storefront platform PrintFlow accepts, keyed by its id.

A platform is one module building a :class:`~.base.PlatformSpec` plus one entry in
:data:`_BUILT_IN`. An id missing here is :class:`UnknownPlatform`, never a fall-through to
another platform. :func:`registered_platform` adds an entry for the duration of a ``with``
block (tests prove a new platform needs nothing else).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from printflow.domain.order import Order
from printflow.domain.storefront import Storefront
from printflow.errors import InvalidSignature
from printflow.platforms import bigcommerce, generic, shopify, woocommerce
from printflow.platforms.base import StorefrontPlatform

_BUILT_IN: tuple[StorefrontPlatform, ...] = (
    shopify.PLATFORM,
    woocommerce.PLATFORM,
    bigcommerce.PLATFORM,
    generic.PLATFORM,
)
_PLATFORMS: dict[str, StorefrontPlatform] = {p.id.value: p for p in _BUILT_IN}


class UnknownPlatform(ValueError):
    """No platform has this id; ``allowed`` lists the ids there are."""

    def __init__(self, platform: str) -> None:
        self.allowed = tuple(_PLATFORMS)
        super().__init__(
            f"unknown platform {platform!r}; expected one of {', '.join(self.allowed)}"
        )


def platform_for(platform: str) -> StorefrontPlatform:
    """The platform with id ``platform``; :class:`UnknownPlatform` if there is none."""
    found = _PLATFORMS.get(platform)
    if found is None:
        raise UnknownPlatform(platform)
    return found


def registered_platforms() -> tuple[StorefrontPlatform, ...]:
    """Every platform, built-in ones first, in registration order."""
    return tuple(_PLATFORMS.values())


@contextmanager
def registered_platform(platform: StorefrontPlatform) -> Iterator[StorefrontPlatform]:
    """``platform`` in the table inside the block (its id must be new), removed after."""
    key = platform.id.value
    if key in _PLATFORMS:
        raise ValueError(f"platform {key!r} is already registered")
    _PLATFORMS[key] = platform
    try:
        yield platform
    finally:
        del _PLATFORMS[key]


def verify_webhook(
    storefront: Storefront,
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[str],
    *,
    now: float,
    replay_window_s: int,
) -> None:
    """Verify a delivery for ``storefront``'s platform; raise :class:`InvalidSignature`."""
    if not secrets:
        raise InvalidSignature("no webhook secret is configured for this storefront")
    platform_for(storefront.platform).verify(
        storefront, headers, body, secrets, now=now, replay_window_s=replay_window_s
    )


def normalise(platform: str, storefront_id: str, body: bytes, headers: Mapping[str, str]) -> Order:
    """``body`` as an order of ``platform``; :class:`~printflow.errors.MalformedPayload` if not."""
    return platform_for(platform).normalise(storefront_id, body, headers)
