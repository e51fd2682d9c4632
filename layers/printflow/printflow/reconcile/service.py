"""Reconciliation: ask each storefront's Orders API for the orders the webhook missed.

The function runs every few minutes; each storefront with a ``storeApi`` (Shopify,
WooCommerce, BigCommerce; the generic platform has no API to pull) is pulled when it is due,
every ``storeApi.reconcileIntervalS`` (default hourly). A pull asks for the orders created
since the stored watermark minus :data:`OVERLAP_S`, oldest first, a page at a time, and
records each order the table does not have through the intake
(:meth:`~printflow.intake.service.IntakeService.record_pulled`): normalised by the platform's
normaliser, raw body in S3, flow started, exactly as if its webhook had come.

Why it is safe to repeat and to stop anywhere:

- the watermark moves to the newest order of a page only after every order of the page is
  recorded; a pull stopped mid-page (time running out, the store failing, the intake
  unavailable) starts the next time from the old watermark, so nothing is skipped;
- an order that is already recorded (its webhook came, or an earlier pull) is left alone,
  and the intake's conditional write settles a webhook racing the pull: nothing is doubled.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from botocore.exceptions import ClientError

from printflow.adapters.order_table import OrderTable
from printflow.adapters.reconcile_state import PullState, ReconcileStateTable
from printflow.domain.order import OrderKey
from printflow.domain.storefront import PlatformId, Storefront
from printflow.errors import ClientInputError, ValidationError
from printflow.intake.service import IntakeService, IntakeUnavailable
from printflow.net.ssrf import BlockedDestination, UnresolvableDestination
from printflow.observability import logger, metrics
from printflow.platforms.fields import MAX_ORDER_ID_LENGTH
from printflow.store_apis.base import Pacer, StoreApiError
from printflow.store_apis.pulls import OrderPage, PullerFactory
from printflow.store_apis.registry import (
    STORE_PLATFORMS,
    StorePlatform,
    load_store_credentials,
)
from printflow.validators import UrlPolicy, check_url

# Orders can appear in a listing a little after their creation time (clock skew, slow
# commits): each pull starts this far before the watermark.
OVERLAP_S = 900
FIRST_LOOKBACK_S = 24 * 3600  # a storefront pulled for the first time
LEASE_S = 900  # a run that dies leaves its storefront to a run after this
MAX_PAGES_PER_PULL = 40  # then the storefront is due again at once: the next run goes on
MIN_TIME_LEFT_S = 20.0  # room for one more store request and recording its orders
WATERMARK_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
DEFAULT_RETRY_S = 300.0
# A store's short waits (Shopify's cost bucket refilling, a 429 of a second or two) are slept
# within a pull; a longer one makes the storefront due again after it, for a later run.
PULL_WAIT_BUDGET_S = 20.0
PULL_MAX_WAIT_S = 2.0


class _OutOfTime(Exception):
    """Raised between two orders when the function's time runs low."""


@dataclass(slots=True)
class StorefrontPull:
    """What one storefront's pull did."""

    storefront_id: str
    pages: int = 0
    listed: int = 0
    recovered: int = 0
    already_recorded: int = 0
    refused: int = 0
    finished: bool = False
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "storefrontId": self.storefront_id,
            "pages": self.pages,
            "listed": self.listed,
            "recovered": self.recovered,
            "alreadyRecorded": self.already_recorded,
            "refused": self.refused,
            "finished": self.finished,
        }
        if self.error:
            doc["error"] = self.error
        return doc


@dataclass(slots=True)
class ReconcileReport:
    pulls: list[StorefrontPull] = field(default_factory=list)

    @property
    def recovered(self) -> int:
        return sum(p.recovered for p in self.pulls)

    def to_dict(self) -> dict[str, Any]:
        return {"recovered": self.recovered, "pulls": [p.to_dict() for p in self.pulls]}


class Reconciler:
    """Pulls every due storefront once per run; see the module docstring."""

    def __init__(
        self,
        orders: OrderTable,
        state: ReconcileStateTable,
        intake: IntakeService,
        secretsmanager: Any,
        http: Callable[[], httpx.Client],
        url_policy: UrlPolicy,
        *,
        platforms: Mapping[PlatformId, StorePlatform] = STORE_PLATFORMS,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._orders = orders
        self._state = state
        self._intake = intake
        self._secrets = secretsmanager
        self._http = http
        self._url_policy = url_policy
        self._platforms = platforms
        self._clock = clock
        self._sleep = sleep

    def run(self, remaining_s: Callable[[], float]) -> ReconcileReport:
        """Pull each due storefront; stop starting new ones when time runs low."""
        report = ReconcileReport()
        states = self._state.states()
        for storefront in self._orders.list_storefronts():
            platform = self._platforms.get(storefront.platform)
            if storefront.store_api is None or platform is None:
                continue  # nothing to pull from (the generic platform has no Orders API)
            state = states.get(storefront.storefront_id, PullState(storefront.storefront_id))
            now = self._clock()
            if state.next_due_at > now:
                continue
            if remaining_s() < MIN_TIME_LEFT_S:
                break
            if not self._state.claim(storefront.storefront_id, now, now + LEASE_S):
                continue
            report.pulls.append(self._pull(storefront, platform.order_puller, state, remaining_s))
        # Every run, zero included: an alarm then sees a series, not missing data.
        metrics.add_metric(name="OrdersRecovered", unit="Count", value=report.recovered)
        return report

    def _pull(
        self,
        storefront: Storefront,
        factory: PullerFactory,
        state: PullState,
        remaining_s: Callable[[], float],
    ) -> StorefrontPull:
        api = storefront.store_api
        assert api is not None  # checked by run()
        pull = StorefrontPull(storefront.storefront_id)
        started = self._clock()
        next_due = started + api.reconcile_interval_s
        where = f"storefront {storefront.storefront_id!r}.storeApi"
        try:
            check_url(api.base_url, f"{where}.baseUrl", self._url_policy)
            credentials = load_store_credentials(
                self._secrets, storefront.platform, api, f"storefront {storefront.storefront_id!r}"
            )
            with self._http() as http:
                pacer = Pacer(PULL_WAIT_BUDGET_S, max_wait_s=PULL_MAX_WAIT_S, sleep=self._sleep)
                puller = factory(http, api, credentials, pacer)
                self._pages(storefront, puller.orders_since, self._since(state), pull, remaining_s)
            if not pull.finished:
                next_due = self._clock()  # more to pull: the next run goes on
        except _OutOfTime:
            pull.error = "stopped mid-page: the function's time ran low"
            next_due = self._clock()
        except StoreApiError as exc:
            pull.error = exc.message
            if exc.transient:
                # The store's own wait (429), bounded by the interval; 5 minutes without one.
                wait = DEFAULT_RETRY_S if exc.retry_after_s is None else exc.retry_after_s
                next_due = self._clock() + min(wait, api.reconcile_interval_s)
        except ValidationError as exc:  # the storefront's configuration or its secret
            pull.error = str(exc)
        except (BlockedDestination, UnresolvableDestination) as exc:  # the egress guard
            pull.error = f"the store API's address is refused: {exc}"
        except IntakeUnavailable as exc:  # S3 or the table failing: nothing is acknowledged
            pull.error = f"{exc}: the pull stops here and resumes from the watermark"
            next_due = self._clock() + DEFAULT_RETRY_S
        except ClientError as exc:  # an AWS service throttled or unavailable
            pull.error = f"AWS error {exc.response['Error']['Code']}: the pull resumes later"
            next_due = self._clock() + DEFAULT_RETRY_S
        except Exception as exc:
            # A bug must not stop the other storefronts' pulls, nor hide: logged with its trace.
            logger.exception("reconciliation failed", extra={"storefront": pull.storefront_id})
            pull.error = f"{type(exc).__name__}: the pull stops here and resumes next time"
            next_due = self._clock() + DEFAULT_RETRY_S
        if pull.error:
            logger.warning(
                "reconciliation stopped", extra={"storefront": pull.storefront_id, **pull.to_dict()}
            )
        self._state.finish(storefront.storefront_id, next_due, pull.to_dict())
        return pull

    def _since(self, state: PullState) -> datetime:
        if state.watermark is None:
            return datetime.fromtimestamp(self._clock() - FIRST_LOOKBACK_S, UTC)
        mark = datetime.strptime(state.watermark, WATERMARK_FORMAT).replace(tzinfo=UTC)
        return mark - timedelta(seconds=OVERLAP_S)

    def _pages(
        self,
        storefront: Storefront,
        orders_since: Callable[[datetime, str | None], OrderPage],
        since: datetime,
        pull: StorefrontPull,
        remaining_s: Callable[[], float],
    ) -> None:
        page_ref: str | None = None
        for _ in range(MAX_PAGES_PER_PULL):
            page = orders_since(since, page_ref)
            pull.pages += 1
            self._record_page(storefront, page, pull, remaining_s)
            if page.orders:
                # Never past now: one order stamped in the future must not hide the next ones.
                now = datetime.fromtimestamp(self._clock(), UTC)
                newest = min(max(order.created_at for order in page.orders), now)
                self._state.advance(storefront.storefront_id, newest.strftime(WATERMARK_FORMAT))
            if page.next_page is None:
                pull.finished = True
                return
            page_ref = page.next_page
            if remaining_s() < MIN_TIME_LEFT_S:
                return

    def _record_page(
        self,
        storefront: Storefront,
        page: OrderPage,
        pull: StorefrontPull,
        remaining_s: Callable[[], float],
    ) -> None:
        # One batched read per page says which orders are recorded already (most of them).
        keys = {
            pulled.order_id: OrderKey(storefront.storefront_id, pulled.order_id.strip())
            for pulled in page.orders
            if 0 < len(pulled.order_id.strip()) <= MAX_ORDER_ID_LENGTH
        }
        recorded = self._orders.recorded_orders(list(keys.values())) if keys else set()
        for pulled in page.orders:
            if remaining_s() < MIN_TIME_LEFT_S:
                raise _OutOfTime
            pull.listed += 1
            order_id = pulled.order_id.strip()
            if keys.get(pulled.order_id) in recorded:
                pull.already_recorded += 1
                continue
            try:
                outcome = self._intake.record_pulled(storefront, pulled.body)
            except ClientInputError as exc:
                # The intake would refuse its webhook too (too big, malformed): say so, go on.
                pull.refused += 1
                logger.error(
                    "pulled order refused",
                    extra={"storefront": storefront.storefront_id, "reason": str(exc)},
                )
                continue
            if outcome.status == 202:
                pull.recovered += 1
                logger.info(
                    "order recovered by reconciliation",
                    extra={"storefront": storefront.storefront_id, "orderId": order_id},
                )
            else:  # its webhook came in between: recorded once, by whichever came first
                pull.already_recorded += 1
