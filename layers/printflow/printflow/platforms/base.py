"""What a storefront platform is to PrintFlow: one protocol, one implementation to fill in.

The intake service asks a platform, in this order, for one delivery: its headers in canonical
form, whether the body is a ping (answered before any signature check, as the platform sends
pings unsigned), whether the delivery is authentic (signature, then sender), and the order in
it (or that the delivery is of a topic PrintFlow ignores). Reconciliation asks only for the
order of a body pulled from the store's API. Nothing here writes anything: a crash leaves
nothing behind.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from printflow.domain.order import Order
from printflow.domain.storefront import PlatformId, StoreApiShape, Storefront, StorefrontSetting
from printflow.platforms.json_body import parse_json_object


@dataclass(frozen=True, slots=True)
class IgnoredDelivery:
    """An authentic delivery that is not a new order (``topic``: what it was, if it said)."""

    topic: str | None


class Verifier(Protocol):
    """Raise :class:`~printflow.errors.InvalidSignature` unless the delivery is authentic."""

    def __call__(
        self,
        storefront: Storefront,
        headers: Mapping[str, str],
        body: bytes,
        secrets: Sequence[str],
        *,
        now: float,
        replay_window_s: int,
    ) -> None: ...


class DeliverySigner(Protocol):
    """The headers the platform sends with ``body`` (for tools, samples and tests)."""

    def __call__(
        self, body: bytes, secret: str, *, timestamp: int | None, topic: str | None
    ) -> dict[str, str]: ...


# A normaliser gets the parsed JSON object and the (canonical, lower-case) headers.
Normaliser = Callable[[str, dict[str, Any], Mapping[str, str]], Order]


class StorefrontPlatform(Protocol):
    """One storefront platform, as the intake, the storefront documents and the tools use it."""

    @property
    def id(self) -> PlatformId: ...

    @property
    def title(self) -> str: ...

    @property
    def settings(self) -> tuple[StorefrontSetting, ...]: ...

    @property
    def store_api(self) -> StoreApiShape | None: ...

    def canonical_headers(self, headers: Mapping[str, str]) -> Mapping[str, str]: ...

    def is_ping(self, body: bytes) -> bool: ...

    def verify(
        self,
        storefront: Storefront,
        headers: Mapping[str, str],
        body: bytes,
        secrets: Sequence[str],
        *,
        now: float,
        replay_window_s: int,
    ) -> None: ...

    def order_from_delivery(
        self, storefront_id: str, body: bytes, headers: Mapping[str, str]
    ) -> Order | IgnoredDelivery: ...

    def normalise(self, storefront_id: str, body: bytes, headers: Mapping[str, str]) -> Order: ...

    def sign_delivery(
        self, body: bytes, secret: str, *, timestamp: int | None = None, topic: str | None = None
    ) -> dict[str, str]: ...


def _never_a_ping(body: bytes) -> bool:
    return False


def _headers_as_delivered(headers: Mapping[str, str]) -> Mapping[str, str]:
    return headers


def _no_order_filter(order: Order) -> str | None:
    return None


@dataclass(frozen=True, slots=True)
class PlatformSpec:
    """A :class:`StorefrontPlatform` made of a platform module's functions and facts.

    ``order_topic`` is ``(header, topic)``: a delivery whose header names another topic is
    ignored before its body is read. ``ignored_order`` names the topic of a normalised order
    that is not a new one (BigCommerce says it in the body), or None to record it.
    """

    id: PlatformId
    title: str
    verifier: Verifier
    normaliser: Normaliser
    signer: DeliverySigner
    order_topic: tuple[str, str] | None = None
    ignored_order: Callable[[Order], str | None] = _no_order_filter
    ping: Callable[[bytes], bool] = _never_a_ping
    header_form: Callable[[Mapping[str, str]], Mapping[str, str]] = _headers_as_delivered
    settings: tuple[StorefrontSetting, ...] = ()
    store_api: StoreApiShape | None = None

    def canonical_headers(self, headers: Mapping[str, str]) -> Mapping[str, str]:
        """The headers under the names the verifier and normaliser read (lower-case)."""
        return self.header_form(headers)

    def is_ping(self, body: bytes) -> bool:
        """Whether the body is the platform's unsigned "is this URL alive" delivery."""
        return self.ping(body)

    def verify(
        self,
        storefront: Storefront,
        headers: Mapping[str, str],
        body: bytes,
        secrets: Sequence[str],
        *,
        now: float,
        replay_window_s: int,
    ) -> None:
        """Raise :class:`~printflow.errors.InvalidSignature` unless the delivery is authentic."""
        self.verifier(storefront, headers, body, secrets, now=now, replay_window_s=replay_window_s)

    def order_from_delivery(
        self, storefront_id: str, body: bytes, headers: Mapping[str, str]
    ) -> Order | IgnoredDelivery:
        """The order in an authentic delivery, or :class:`IgnoredDelivery` for another topic."""
        if self.order_topic is not None:
            header, wanted = self.order_topic
            topic = headers.get(header)
            if topic and topic != wanted:  # an empty header names no topic: read the body
                return IgnoredDelivery(topic)
        order = self.normalise(storefront_id, body, headers)
        ignored = self.ignored_order(order)
        return order if ignored is None else IgnoredDelivery(ignored or None)

    def normalise(self, storefront_id: str, body: bytes, headers: Mapping[str, str]) -> Order:
        """The body as an :class:`Order`; :class:`~printflow.errors.MalformedPayload` if not one."""
        return self.normaliser(storefront_id, parse_json_object(body), headers)

    def sign_delivery(
        self, body: bytes, secret: str, *, timestamp: int | None = None, topic: str | None = None
    ) -> dict[str, str]:
        """Headers a real storefront of this platform would send with ``body``."""
        return self.signer(body, secret, timestamp=timestamp, topic=topic)
