"""Checking that an order's files are in S3 as its manifest says (before reusing them)."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError


class StoredArtifacts:
    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self.bucket = bucket

    def manifest(self, key: str) -> dict[str, Any] | None:
        try:
            body = self._client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return None
            raise
        doc: dict[str, Any] = json.loads(body)
        return doc

    def problems(self, manifest_key: str) -> list[str]:
        """What does not match the manifest (empty: every file is there, size and sha256)."""
        manifest = self.manifest(manifest_key)
        if manifest is None:
            return [f"no manifest at {manifest_key}"]
        problems: list[str] = []
        for artifact in manifest.get("artifacts") or []:
            key = str(artifact.get("key"))
            try:
                head = self._client.head_object(Bucket=self.bucket, Key=key)
            except ClientError:
                problems.append(f"{key}: missing")
                continue
            if int(head["ContentLength"]) != int(artifact.get("size", -1)):
                problems.append(f"{key}: size differs from the manifest")
            elif (head.get("Metadata") or {}).get("sha256") != artifact.get("sha256"):
                problems.append(f"{key}: sha256 differs from the manifest")
        return problems
