"""Raw webhook bodies, and the documents of orders too large for their table item.

Both live under ``webhooks/{storefrontId}/{orderId}/`` in the artifact bucket, with the order
id made safe and injective by :func:`printflow.domain.object_keys.safe_id` (an id of ``..``
or ``a/b`` must not nest or escape when a consumer syncs the bucket to disk).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from printflow.domain.object_keys import safe_id
from printflow.domain.order import OrderKey, RawBodyRef

RAW_BODY_PREFIX = "webhooks"
RAW_BODY_CONTENT_TYPE = "application/octet-stream"
MAX_METADATA_VALUE = 256


def order_prefix(key: OrderKey) -> str:
    """``webhooks/{storefrontId}/{safe orderId}/``: everything intake keeps of one order."""
    return f"{RAW_BODY_PREFIX}/{safe_id(key.storefront_id)}/{safe_id(key.order_id)}/"


def raw_body_key(key: OrderKey, body: bytes) -> str:
    """``webhooks/{storefrontId}/{orderId}/body-{sha256[:16]}.body``.

    Named by content, so a storefront's resend of the same delivery writes the same object
    (intake stores the body *before* it records the order; see :mod:`printflow.intake.service`).
    """
    return f"{order_prefix(key)}body-{hashlib.sha256(body).hexdigest()[:16]}.body"


def order_document_key(key: OrderKey, document: bytes) -> str:
    """``webhooks/{storefrontId}/{orderId}/order-{sha256[:16]}.json``.

    Named by content: a duplicate delivery of the same order writes the same object.
    """
    return f"{order_prefix(key)}order-{hashlib.sha256(document).hexdigest()[:16]}.json"


class RawBodyStore:
    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self.bucket = bucket

    def put(self, key: OrderKey, body: bytes, content_type: str) -> RawBodyRef:
        """Store ``body`` byte for byte; the delivery's content type goes into metadata.

        The object is sent as ``application/octet-stream`` whatever the storefront sent:
        the bytes are an opaque record of the delivery, and a ``PUT`` labelled with a form
        content type is one that some S3 implementations parse (and empty) as a form.
        """
        object_key = raw_body_key(key, body)
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

    def discard(self, ref: RawBodyRef) -> None:
        """Delete a body no order refers to (a duplicate delivery whose bytes differ)."""
        self._client.delete_object(Bucket=ref.bucket, Key=ref.key)


def _metadata_value(value: str) -> str:
    """``value`` when S3 can carry it as user metadata (printable ASCII, bounded), else ''."""
    value = value.strip()
    if len(value) > MAX_METADATA_VALUE or not all(" " <= c <= "~" for c in value):
        return ""
    return value


class OrderDocuments:
    """Full order documents kept in S3 when the order is too large for its table item."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def put(self, bucket: str, key: OrderKey, document: dict[str, Any]) -> dict[str, str]:
        """Store ``document``; return its reference (``{"bucket", "key"}``) for the item."""
        body = json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
        object_key = order_document_key(key, body)
        self._client.put_object(
            Bucket=bucket,
            Key=object_key,
            Body=body,
            ContentType="application/json",
            Metadata={"storefront-id": key.storefront_id},
        )
        return {"bucket": bucket, "key": object_key}

    def get(self, ref: dict[str, Any]) -> dict[str, Any]:
        response = self._client.get_object(Bucket=str(ref["bucket"]), Key=str(ref["key"]))
        document: dict[str, Any] = json.loads(response["Body"].read())
        return document
