"""The artifact bucket, beyond streamed uploads: JSON documents and presigned links."""

from __future__ import annotations

import json
from typing import Any


class ArtifactBucket:
    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self.bucket = bucket

    def put_json(self, key: str, doc: dict[str, Any]) -> None:
        self._client.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=json.dumps(doc, indent=2, ensure_ascii=False, default=str).encode(),
            ContentType="application/json",
        )

    def presign(self, bucket: str, key: str, expires_s: int) -> str:
        """A time-limited GET link (for REST receivers that fetch the files themselves)."""
        return str(
            self._client.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_s
            )
        )
