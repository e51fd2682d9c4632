"""Exactly-once records of step side effects on moto's DynamoDB (the write-back note)."""

from __future__ import annotations

import boto3

from printflow.adapters.step_effects import Claim, StepEffects
from printflow.domain.order import OrderKey
from printflow_tools.localstack.resources import LocalResources

KEY = OrderKey("shop-1", "1001")


def effects(resources: LocalResources) -> StepEffects:
    return StepEffects(boto3.client("dynamodb"), resources.table(), stale_after_s=300)


def claim(store: StepEffects, now: float, delivery: str = "d1", key: OrderKey = KEY) -> Claim:
    return store.claim(key, "note", delivery, step="tell", execution="arn:x", now=now)


def test_one_claim_per_delivery_and_done_stays_done(local_aws: LocalResources) -> None:
    store = effects(local_aws)

    assert claim(store, 1000) is Claim.MINE
    assert claim(store, 1001) is Claim.BUSY  # a concurrent attempt waits
    store.mark_done(KEY, "note", "d1", now=1002)
    assert claim(store, 5000) is Claim.DONE  # even long after
    assert claim(store, 1003, delivery="d2") is Claim.MINE  # another execution or step
    assert claim(store, 1003, key=OrderKey("shop-2", "1001")) is Claim.MINE  # per storefront


def test_a_claim_left_by_a_dead_attempt_is_taken_over_once_stale(local_aws: LocalResources) -> None:
    store = effects(local_aws)
    assert claim(store, 1000) is Claim.MINE

    assert claim(store, 1299) is Claim.BUSY
    assert claim(store, 1301) is Claim.MINE
    assert claim(store, 1302) is Claim.BUSY  # the new claim is fresh again


def test_a_released_claim_can_be_made_again(local_aws: LocalResources) -> None:
    store = effects(local_aws)
    assert claim(store, 1000) is Claim.MINE
    store.release(KEY, "note", "d1")
    assert claim(store, 1001) is Claim.MINE


def test_releasing_a_done_record_keeps_it(local_aws: LocalResources) -> None:
    store = effects(local_aws)
    assert claim(store, 1000) is Claim.MINE
    store.mark_done(KEY, "note", "d1", now=1001)
    store.release(KEY, "note", "d1")
    assert claim(store, 1002) is Claim.DONE
