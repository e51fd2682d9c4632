"""Part sizes, metadata, and the streamed object's memory bound (a fake S3, no network)."""

from __future__ import annotations

import hashlib
import threading
import tracemalloc
from typing import Any

import pytest

from printflow.download.errors import ArtifactTooLarge
from printflow.download.parts import (
    GROWTH_INTERVAL,
    S3_MAX_OBJECT_SIZE,
    S3_MAX_PART_SIZE,
    S3_MAX_PARTS,
    S3_MIN_PART_SIZE,
    GiB,
    MiB,
    TiB,
    plan_parts,
)
from printflow.download.s3_object import StreamedObject, object_metadata


@pytest.mark.parametrize(
    ("length", "part_size"),
    [
        (0, 8 * MiB),
        (1, 8 * MiB),
        (1 * GiB, 8 * MiB),
        (78 * GiB, 8 * MiB),  # 79,872 MiB / 10,000 = 7.99 MiB: still the minimum
        (100 * GiB, 11 * MiB),  # 10.24 MiB, rounded up to a whole MiB
        (S3_MAX_OBJECT_SIZE, 525 * MiB),
    ],
)
def test_known_length_fits_in_10000_parts(length: int, part_size: int) -> None:
    plan = plan_parts(length, 8 * MiB)
    assert plan.first_size == part_size
    assert plan.first_size % MiB == 0
    assert plan.first_size * S3_MAX_PARTS >= length
    assert plan.size_of(S3_MAX_PARTS) == part_size


def test_unknown_length_grows_to_cover_5_tib() -> None:
    plan = plan_parts(None, 8 * MiB)
    assert plan.size_of(1) == 8 * MiB
    assert plan.size_of(GROWTH_INTERVAL) == 8 * MiB
    assert plan.size_of(GROWTH_INTERVAL + 1) == 16 * MiB
    total = sum(plan.size_of(n) for n in range(1, S3_MAX_PARTS + 1))
    assert total >= 5 * TiB
    assert max(plan.size_of(n) for n in range(1, S3_MAX_PARTS + 1)) <= S3_MAX_PART_SIZE


def test_limits() -> None:
    with pytest.raises(ArtifactTooLarge):
        plan_parts(S3_MAX_OBJECT_SIZE + 1, 8 * MiB)
    with pytest.raises(ArtifactTooLarge):
        plan_parts(None, 8 * MiB).size_of(S3_MAX_PARTS + 1)
    with pytest.raises(ValueError, match="min_part_size"):
        plan_parts(None, S3_MIN_PART_SIZE - 1)


def test_object_metadata() -> None:
    meta = object_metadata({"Order-Id": "1001", "reference": "Zoë\r\n%"}, sha256="ab" * 32)
    assert meta == {"order-id": "1001", "reference": "Zo%C3%AB%0D%0A%25", "sha256": "ab" * 32}
    with pytest.raises(ValueError, match="reserved"):
        object_metadata({"sha256": "x"})
    with pytest.raises(ValueError, match="letters"):
        object_metadata({"order id": "x"})
    with pytest.raises(ValueError, match="2048"):
        object_metadata({"note": "x" * 3000})
    # The digest's room is kept from the start: it is added only at commit.
    room = 2048 - len("sha256") - 64 - len("note")
    object_metadata({"note": "x" * room})
    with pytest.raises(ValueError, match="2048"):
        object_metadata({"note": "x" * (room + 1)})


class CountingS3:
    """Just enough of an S3 client to accept parts and forget them (no memory of its own)."""

    def __init__(self) -> None:
        self.part_sizes: list[int] = []
        self.calls: list[str] = []
        self._lock = threading.Lock()

    def create_multipart_upload(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append("create")
        return {"UploadId": "u1"}

    def upload_part(self, *, Body: bytearray, PartNumber: int, **kwargs: Any) -> dict[str, Any]:
        with self._lock:
            self.part_sizes.append(len(Body))
        return {"ETag": f'"etag-{PartNumber}"'}

    def complete_multipart_upload(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append("complete")
        return {"ETag": '"final-3"'}

    def put_object_tagging(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append("tag")
        self.tagging = kwargs
        return {}

    def abort_multipart_upload(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append("abort")
        return {}


def test_memory_is_bounded_by_a_few_parts_whatever_the_size() -> None:
    # Given 96 MiB written in 1 MiB chunks with 5 MiB parts and two uploads in flight
    s3 = CountingS3()
    part = 5 * MiB
    target = StreamedObject(
        s3,
        "bucket",
        "key",
        plan=plan_parts(96 * MiB, part),
        content_type="application/pdf",
        metadata={},
        concurrency=2,
    )
    chunk = bytes(1 * MiB)
    tracemalloc.start()
    try:
        for _ in range(96):
            target.write(chunk)
        committed = target.commit()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Then every part but the last is full, and at most (2 + 1) part buffers ever existed
    assert s3.part_sizes.count(part) == 19 and sum(s3.part_sizes) == 96 * MiB
    # The object is written once: completed, then tagged with its digest (no copy onto itself)
    assert s3.calls == ["create", "complete", "tag"]
    assert committed.etag == '"final-3"'
    assert s3.tagging["Tagging"] == {"TagSet": [{"Key": "sha256", "Value": committed.sha256}]}
    # And the digest, computed part by part on its own thread, is that of every byte in order
    assert committed.sha256 == hashlib.sha256(chunk * 96).hexdigest()
    assert committed.size == 96 * MiB
    assert peak < 3 * part + 2 * MiB, peak / MiB


def test_a_file_smaller_than_a_part_is_one_put() -> None:
    class PutOnly(CountingS3):
        def put_object(self, **kwargs: Any) -> dict[str, Any]:
            self.calls.append("put")
            self.put = kwargs
            return {"ETag": '"single"'}

    s3 = PutOnly()
    target = StreamedObject(
        s3, "b", "k", plan=plan_parts(3, 5 * MiB), content_type="text/plain", metadata={"a": "1"}
    )
    target.write(b"abc")
    committed = target.commit()
    abc_sha = hashlib.sha256(b"abc").hexdigest()
    assert (committed.etag, committed.sha256, committed.size) == ('"single"', abc_sha, 3)
    assert s3.calls == ["put"]
    assert bytes(s3.put["Body"]) == b"abc"
    assert s3.put["Metadata"] == {"a": "1", "sha256": abc_sha}
    assert s3.put["Tagging"] == f"sha256={abc_sha}"
    assert s3.put["ContentType"] == "text/plain"
