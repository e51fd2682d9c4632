"""Raw webhook bodies in the artifact bucket, kept exactly as delivered."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import quote

from printflow.domain.order import OrderKey, RawBodyRef

RAW_BODY_PREFIX = "webhooks"


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
        object_key = raw_body_key(key, received_at, body)
        self._client.put_object(
            Bucket=self.bucket,
            Key=object_key,
            Body=body,
            ContentType=content_type or "application/octet-stream",
            Metadata={"storefront-id": key.storefront_id},
        )
        return RawBodyRef(bucket=self.bucket, key=object_key)
