"""Each platform's verifier against signatures computed here, independently."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from printflow.domain.storefront import Platform, Storefront
from printflow.errors import InvalidSignature
from printflow.platforms.registry import verify_webhook
from printflow.platforms.shopify import canonical_shopify_headers

SECRET = "s3cret-for-unit-tests-0001"
OLD_SECRET = "old-secret-still-valid-0002"
BODY = b'{"id": 1001, "line_items": []}'
NOW = 1_763_717_400


def b64_hmac(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def generic_headers(secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"x-printflow-timestamp": str(timestamp), "x-printflow-signature": f"v1={mac}"}


def verify(
    platform: Platform,
    headers: dict[str, str],
    body: bytes = BODY,
    secrets: list[str] | None = None,
    **storefront: str,
) -> None:
    verify_webhook(
        Storefront("sf", platform, **storefront),  # type: ignore[arg-type]
        headers,
        body,
        secrets if secrets is not None else [SECRET],
        now=NOW,
        replay_window_s=300,
    )


class TestShopify:
    def test_accepts_the_hmac_of_the_raw_body(self) -> None:
        verify(Platform.SHOPIFY, {"x-shopify-hmac-sha256": b64_hmac(SECRET, BODY)})

    def test_rejects_a_signature_of_another_body(self) -> None:
        forged = b64_hmac(SECRET, BODY + b" ")
        with pytest.raises(InvalidSignature, match="does not match"):
            verify(Platform.SHOPIFY, {"x-shopify-hmac-sha256": forged})

    def test_rejects_a_signature_made_with_another_secret(self) -> None:
        with pytest.raises(InvalidSignature):
            verify(Platform.SHOPIFY, {"x-shopify-hmac-sha256": b64_hmac("wrong", BODY)})

    def test_missing_header_is_named(self) -> None:
        with pytest.raises(InvalidSignature, match="missing x-shopify-hmac-sha256"):
            verify(Platform.SHOPIFY, {})

    def test_non_base64_header(self) -> None:
        with pytest.raises(InvalidSignature, match="not base64"):
            verify(Platform.SHOPIFY, {"x-shopify-hmac-sha256": "not base64!"})

    def test_previous_secret_keeps_verifying_during_rotation(self) -> None:
        headers = {"x-shopify-hmac-sha256": b64_hmac(OLD_SECRET, BODY)}
        verify(Platform.SHOPIFY, headers, secrets=[SECRET, OLD_SECRET])
        with pytest.raises(InvalidSignature):
            verify(Platform.SHOPIFY, headers, secrets=[SECRET])

    def test_no_configured_secret_rejects_everything(self) -> None:
        with pytest.raises(InvalidSignature, match="no webhook secret"):
            verify(Platform.SHOPIFY, {"x-shopify-hmac-sha256": b64_hmac("", BODY)}, secrets=[])


class TestWooCommerce:
    def test_accepts_the_hmac_of_the_body(self) -> None:
        verify(Platform.WOOCOMMERCE, {"x-wc-webhook-signature": b64_hmac(SECRET, BODY)})

    def test_rejects_tampered_body(self) -> None:
        headers = {"x-wc-webhook-signature": b64_hmac(SECRET, BODY)}
        with pytest.raises(InvalidSignature):
            verify(Platform.WOOCOMMERCE, headers, body=BODY.replace(b"1001", b"1002"))

    def test_shopify_header_does_not_count_for_woocommerce(self) -> None:
        with pytest.raises(InvalidSignature, match="missing x-wc-webhook-signature"):
            verify(Platform.WOOCOMMERCE, {"x-shopify-hmac-sha256": b64_hmac(SECRET, BODY)})


class TestBigCommerce:
    def test_accepts_the_configured_secret_header(self) -> None:
        verify(Platform.BIGCOMMERCE, {"x-printflow-webhook-secret": SECRET})

    def test_custom_header_name(self) -> None:
        verify(Platform.BIGCOMMERCE, {"x-my-hook": SECRET}, secret_header="X-My-Hook")
        with pytest.raises(InvalidSignature, match="missing x-my-hook"):
            verify(
                Platform.BIGCOMMERCE,
                {"x-printflow-webhook-secret": SECRET},
                secret_header="X-My-Hook",
            )

    def test_rejects_wrong_secret(self) -> None:
        with pytest.raises(InvalidSignature, match="does not match"):
            verify(Platform.BIGCOMMERCE, {"x-printflow-webhook-secret": SECRET + "x"})


class TestGeneric:
    def test_accepts_a_fresh_signature(self) -> None:
        verify(Platform.GENERIC, generic_headers(SECRET, BODY, NOW - 10))

    def test_accepts_one_of_several_signatures(self) -> None:
        headers = generic_headers(SECRET, BODY, NOW)
        headers["x-printflow-signature"] = "v1=00ff, " + headers["x-printflow-signature"]
        verify(Platform.GENERIC, headers)

    def test_rejects_a_replay_outside_the_window(self) -> None:
        with pytest.raises(InvalidSignature, match="replay window"):
            verify(Platform.GENERIC, generic_headers(SECRET, BODY, NOW - 301))

    def test_rejects_a_timestamp_from_the_future(self) -> None:
        with pytest.raises(InvalidSignature, match="replay window"):
            verify(Platform.GENERIC, generic_headers(SECRET, BODY, NOW + 301))

    def test_timestamp_is_part_of_the_signed_message(self) -> None:
        headers = generic_headers(SECRET, BODY, NOW)
        headers["x-printflow-timestamp"] = str(NOW - 1)
        with pytest.raises(InvalidSignature, match="does not match"):
            verify(Platform.GENERIC, headers)

    def test_non_numeric_timestamp(self) -> None:
        headers = generic_headers(SECRET, BODY, NOW)
        headers["x-printflow-timestamp"] = "yesterday"
        with pytest.raises(InvalidSignature, match="unix seconds"):
            verify(Platform.GENERIC, headers)

    def test_missing_headers(self) -> None:
        with pytest.raises(InvalidSignature, match="missing"):
            verify(Platform.GENERIC, {})


def test_unprefixed_shopify_headers_are_read_under_their_x_shopify_names() -> None:
    headers = canonical_shopify_headers(
        {"shopify-hmac-sha256": "a", "shopify-topic": "orders/create", "content-type": "x"}
    )
    assert headers["x-shopify-hmac-sha256"] == "a"
    assert headers["x-shopify-topic"] == "orders/create"
    assert headers["content-type"] == "x"


def test_a_prefixed_shopify_header_wins_over_its_unprefixed_twin() -> None:
    headers = canonical_shopify_headers({"x-shopify-topic": "orders/create", "shopify-topic": "b"})
    assert headers["x-shopify-topic"] == "orders/create"
