"""Raw webhook bodies in the artifact bucket, kept exactly as delivered."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import quote

from printflow.domain.order import OrderKey, RawBodyRef

RAW_BODY_PREFIX = "webhooks"
RAW_BODY_CONTENT_TYPE = "application/octet-stream"
MAX_METADATA_VALUE = 256


def raw_body_key(key: OrderKey, received_at: str, body: bytes) -> str:
    """``webhooks/{storefrontId}/{orderId}/{receivedAt}-{sha256[:12]}.body``.

    The order id is percent-encoded: it comes from the storefront and may hold ``/``.
    """
    digest = hashlib.sha256(body).hexdigest()[:12]
    stamp = received_at.replace(":", "").replace("-", "")
    order_part = quote(key.order_id, safe="")
    return f"{RAW_BODY_PREFIX}/{key.storefront_id}/{order_part}/{stamp}-{digest}.body"


class RawBodyStore:
    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self.bucket = bucket

    def put(self, key: OrderKey, received_at: str, body: bytes, content_type: str) -> RawBodyRef:
        """Store ``body`` byte for byte; the delivery's content type goes into metadata.

        The object is sent as ``application/octet-stream`` whatever the storefront sent:
        the bytes are an opaque record of the delivery, and a ``PUT`` labelled with a form
        content type is one that some S3 implementations parse (and empty) as a form.
        """
        object_key = raw_body_key(key, received_at, body)
        metadata = {"storefront-id": key.storefront_id}
        delivered = _metadata_value(content_type)
        if delivered:
            metadata["delivered-content-type"] = delivered
        self._client.put_object(
            Bucket=self.bucket,
            Key=object_key,
            Body=body,
            ContentType=RAW_BODY_CONTENT_TYPE,
            Metadata=metadata,
        )
        return RawBodyRef(bucket=self.bucket, key=object_key)


def _metadata_value(value: str) -> str:
    """``value`` when S3 can carry it as user metadata (printable ASCII, bounded), else ''."""
    value = value.strip()
    if len(value) > MAX_METADATA_VALUE or not all(" " <= c <= "~" for c in value):
        return ""
    return value
