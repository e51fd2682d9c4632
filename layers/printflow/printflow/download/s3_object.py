"""Writing one S3 object from a stream of chunks, with memory bounded by a few parts.

:class:`StreamedObject` fills one part-sized buffer at a time and hands each full buffer to a
small thread pool that uploads it as a multipart part while the next one fills, so reading
the source and writing S3 overlap. Memory is ``(concurrency + 1) x part size`` whatever the
file's size; buffers are reused, never grown chunk by chunk.

It also computes the object's SHA-256, from the very buffers it uploads, on a thread of its
own: hashlib releases the GIL, so hashing a part overlaps with reading the next one instead
of taking about a third of the reading thread's time (measured in ``bench/download.py``).
One thread, fed in part order, keeps the digest sequential.

The multipart upload is created only when the first part is full: a file smaller than one
part is stored with a single ``PutObject`` (no upload to abort, one request instead of four),
and an empty file is valid too. (The streamer plans a first part larger than a file of known
length up to two parts, so such files are one ``PutObject`` as well.)

The SHA-256 is only known at the end, and user metadata is fixed when an upload starts. It
is not worth a second write of the object (a copy onto itself is a full rewrite on S3, and
past 5 GB a multipart copy): the digest goes into the manifest, and onto the object as the
``sha256`` object tag, which S3 stores beside the object without rewriting it (one
``PutObjectTagging`` of the version just completed). A single-part object gets the tag, and
the ``sha256`` metadata, with its ``PutObject``. Until the tag is on, the object lacks it,
which is why readers trust only objects that carry it (see
:meth:`ArtifactStreamer.existing_matches`) and the manifest is written last.

Failure handling is the point: :meth:`StreamedObject.abort` waits for parts in flight, then
aborts the upload, so no parts linger (they are billed) and no partial object appears.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from botocore.exceptions import BotoCoreError, ClientError

from printflow.download.errors import StorageFailed
from printflow.download.parts import PartPlan
from printflow.observability import logger

SHA256_METADATA_KEY = "sha256"
# S3 limits user metadata to 2 KB (keys and values, as sent).
MAX_METADATA_BYTES = 2048
SHA256_TAG_KEY = "sha256"
# Each part carries a CRC32 that S3 verifies on receipt, combined into a FULL_OBJECT CRC32 of
# the whole file (readers' get_object verifies it). CRC64NVME would do the same, but botocore
# computes it only with awscrt installed. Neither is the SHA-256 of the tag and the manifest.
CHECKSUM_ALGORITHM = "CRC32"
CHECKSUM_TYPE = "FULL_OBJECT"
# Printable ASCII except "%": values are percent-encoded, so "%" itself must be encoded.
_SAFE_VALUE_CHARS = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


@dataclass(frozen=True, slots=True)
class CommittedObject:
    """What :meth:`StreamedObject.commit` made visible."""

    etag: str
    sha256: str  # hex digest of every byte written
    size: int


def object_metadata(metadata: Mapping[str, str], sha256: str | None = None) -> dict[str, str]:
    """S3 user metadata from ``metadata`` (order id, job id, reference…), plus ``sha256``.

    Keys are lower-cased (S3 lower-cases them anyway, and ``head_object`` returns them so);
    values are percent-encoded where not printable ASCII, because they travel as HTTP headers.
    Raises ValueError for keys S3 cannot carry, for a caller-supplied ``sha256`` (that one is
    ours) and for metadata over S3's 2 KB.
    """
    result: dict[str, str] = {}
    for raw_key, value in metadata.items():
        key = raw_key.lower()
        if not key or not set(key) <= _KEY_CHARS:
            raise ValueError(f"metadata key {raw_key!r} must be letters, digits and '-'")
        if key == SHA256_METADATA_KEY:
            raise ValueError("metadata key 'sha256' is reserved for the computed digest")
        result[key] = quote(value, safe=_SAFE_VALUE_CHARS)
    if sha256 is not None:
        result[SHA256_METADATA_KEY] = sha256
    # Room for the digest is kept even before it is known: it is added at commit.
    size = sum(len(k) + len(v) for k, v in result.items() if k != SHA256_METADATA_KEY)
    size += len(SHA256_METADATA_KEY) + 64
    if size > MAX_METADATA_BYTES:
        raise ValueError(f"metadata is {size} bytes; S3 allows {MAX_METADATA_BYTES}")
    return result


class StreamedObject:
    """One S3 object being written: :meth:`write` chunks, then :meth:`commit` or :meth:`abort`.

    ``s3`` is a boto3 S3 client (thread-safe; the part uploads share it). Not reusable: one
    instance per object. Exceptions from S3 surface as :class:`StorageFailed`.
    """

    def __init__(
        self,
        s3: Any,
        bucket: str,
        key: str,
        *,
        plan: PartPlan,
        content_type: str,
        metadata: Mapping[str, str],
        concurrency: int = 2,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._s3 = s3
        self.bucket = bucket
        self.key = key
        self._plan = plan
        self._content_type = content_type
        self._metadata = object_metadata(metadata)
        self._concurrency = concurrency

        self.size = 0
        self._upload_id: str | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._next_part = 1
        self._buffer: bytearray | None = None
        self._filled = 0
        self._spare: list[bytearray] = []
        self._in_flight: deque[_PartInFlight] = deque()
        self._parts: dict[int, dict[str, Any]] = {}
        self._digest = hashlib.sha256()
        self._hasher: ThreadPoolExecutor | None = None

    @property
    def upload_id(self) -> str | None:
        """The multipart upload in progress, if one was created (for tests and logs)."""
        return self._upload_id

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append ``data``; full parts are uploaded in the background (this may wait for one)."""
        view = memoryview(data).cast("B")
        while view:
            buffer = self._buffer
            if buffer is None:
                buffer = self._buffer = self._take_buffer(self._plan.size_of(self._next_part))
            taken = min(len(buffer) - self._filled, len(view))
            buffer[self._filled : self._filled + taken] = view[:taken]
            self._filled += taken
            self.size += taken
            view = view[taken:]
            if self._filled == len(buffer):
                self._submit_part()

    def commit(self) -> CommittedObject:
        """Make the object visible with its metadata and the ``sha256`` tag of what was written."""
        if self._upload_id is None:
            return self._put_whole()
        if self._filled:
            self._submit_part()
        self._drain()
        sha256 = self._digest.hexdigest()
        completed = self._complete()
        self._tag(sha256, completed.get("VersionId"))
        return CommittedObject(etag=str(completed["ETag"]), sha256=sha256, size=self.size)

    def abort(self) -> None:
        """Give up: wait for parts in flight, abort the upload. Safe to call at any time."""
        for part in self._in_flight:
            part.upload.cancel()
            part.hashed.cancel()
        for part in self._in_flight:
            for future in (part.upload, part.hashed):
                if not future.cancelled():
                    future.exception()  # wait; its error (if any) is not the one to report
        self._in_flight.clear()
        self._shutdown_pools()
        self._buffer = None
        self._spare.clear()
        upload_id, self._upload_id = self._upload_id, None
        if upload_id is None:
            return
        try:
            self._s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=upload_id)
        except Exception:
            # The bucket's lifecycle rule removes what is left; the caller's error matters more.
            logger.exception("multipart upload not aborted", extra={"key": self.key})

    # -- parts ------------------------------------------------------------------------------

    def _take_buffer(self, size: int) -> bytearray:
        while self._spare:
            buffer = self._spare.pop()
            if len(buffer) == size:
                return buffer
        return bytearray(size)

    def _submit_part(self) -> None:
        buffer, filled = self._buffer, self._filled
        assert buffer is not None
        self._buffer, self._filled = None, 0
        if filled < len(buffer):
            del buffer[filled:]  # the last part: shrink in place rather than copy
        if self._upload_id is None:
            self._create_upload()
        while len(self._in_flight) >= self._concurrency:
            self._reap_oldest()
        if self._pool is None or self._hasher is None:
            self._pool = ThreadPoolExecutor(self._concurrency, thread_name_prefix="s3-part")
            self._hasher = ThreadPoolExecutor(1, thread_name_prefix="sha256")
        number = self._next_part
        self._next_part += 1
        # One hashing thread takes the parts in submission order, so the digest is sequential.
        hashed = self._hasher.submit(self._digest.update, buffer)
        upload = self._pool.submit(self._upload_part, number, buffer)
        self._in_flight.append(_PartInFlight(number, buffer, upload, hashed))

    def _upload_part(self, number: int, body: bytearray) -> dict[str, Any]:
        """Upload one part; return its entry for CompleteMultipartUpload."""
        response = self._s3.upload_part(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=body,
            ChecksumAlgorithm=CHECKSUM_ALGORITHM,
        )
        part = {"ETag": response["ETag"], "PartNumber": number}
        if response.get("ChecksumCRC32"):
            part["ChecksumCRC32"] = response["ChecksumCRC32"]
        return part

    def _reap_oldest(self) -> None:
        """Wait until the oldest part is uploaded and hashed; its buffer is free again."""
        oldest = self._in_flight[0]
        try:
            part = oldest.upload.result()
        except (BotoCoreError, ClientError) as exc:
            raise StorageFailed(
                f"s3 upload_part {oldest.number} for {self.key!r} failed: {exc}"
            ) from exc
        oldest.hashed.result()
        self._in_flight.popleft()
        self._parts[oldest.number] = part
        if len(self._spare) < self._concurrency:
            self._spare.append(oldest.buffer)

    def _drain(self) -> None:
        while self._in_flight:
            self._reap_oldest()
        self._shutdown_pools()
        self._spare.clear()

    def _shutdown_pools(self) -> None:
        for pool in (self._pool, self._hasher):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        self._pool = self._hasher = None

    # -- S3 calls -----------------------------------------------------------------------------

    def _create_upload(self) -> None:
        response = self._call(
            "create_multipart_upload",
            Bucket=self.bucket,
            Key=self.key,
            ContentType=self._content_type,
            Metadata=self._metadata,
            ChecksumAlgorithm=CHECKSUM_ALGORITHM,
            ChecksumType=CHECKSUM_TYPE,
        )
        self._upload_id = str(response["UploadId"])

    def _put_whole(self) -> CommittedObject:
        """Store what fits in one part with a single PutObject."""
        buffer, self._buffer = self._buffer, None
        body = b"" if buffer is None else buffer
        if buffer is not None and self._filled < len(buffer):
            del buffer[self._filled :]
        self._digest.update(body)  # at most one part: not worth a thread
        sha256 = self._digest.hexdigest()
        response = self._call(
            "put_object",
            Bucket=self.bucket,
            Key=self.key,
            Body=body,
            ContentType=self._content_type,
            Metadata={**self._metadata, SHA256_METADATA_KEY: sha256},
            Tagging=f"{SHA256_TAG_KEY}={sha256}",
        )
        return CommittedObject(etag=str(response["ETag"]), sha256=sha256, size=self.size)

    def _complete(self) -> dict[str, Any]:
        parts = [self._parts[number] for number in sorted(self._parts)]
        response: dict[str, Any] = self._call(
            "complete_multipart_upload",
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self._upload_id,
            MultipartUpload={"Parts": parts},
        )
        # Completed: there is nothing left to abort, only an object to tag (or remove).
        self._upload_id = None
        return response

    def _tag(self, sha256: str, version_id: str | None) -> None:
        """Tag the object just completed with its SHA-256; remove it if that fails.

        A tag is stored beside the object: nothing is rewritten. ``VersionId`` (the bucket is
        versioned) makes sure the tag lands on this version, not on one a concurrent writer
        put there meanwhile.
        """
        request: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": self.key,
            "Tagging": {"TagSet": [{"Key": SHA256_TAG_KEY, "Value": sha256}]},
        }
        if version_id:
            request["VersionId"] = version_id
        try:
            self._call("put_object_tagging", **request)
        except BaseException:
            # Complete but without its digest: remove it, so a retry starts from nothing.
            try:
                self._s3.delete_object(Bucket=self.bucket, Key=self.key)
            except Exception:
                logger.exception("untagged object not removed", extra={"key": self.key})
            raise

    def _call(self, operation: str, **kwargs: Any) -> Any:
        try:
            return getattr(self._s3, operation)(**kwargs)
        except (BotoCoreError, ClientError) as exc:
            raise StorageFailed(f"s3 {operation} for {self.key!r} failed: {exc}") from exc


@dataclass(frozen=True, slots=True)
class _PartInFlight:
    """A part being uploaded and hashed; its buffer is reused once both are done."""

    number: int
    buffer: bytearray
    upload: Future[dict[str, Any]]
    hashed: Future[None]
