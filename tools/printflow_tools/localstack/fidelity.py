"""Make moto behave like AWS where PrintFlow's correctness depends on it.

- moto's DynamoDB checks a ``ConditionExpression`` and then writes, without a lock: two
  threads can both pass ``attribute_not_exists(pk)``. Real DynamoDB evaluates the condition
  and the write atomically per item, and PrintFlow relies on that (duplicate webhooks, job
  leases). Serialising moto's item writes restores the real semantics.
- moto's reads iterate an item's attributes while another thread may be writing them (its
  Step Functions engine runs ``dynamodb:updateItem`` states on a thread of its own), which
  fails with "dictionary changed size during iteration". DynamoDB never returns a torn item,
  so reads take the same lock.
- moto 5.2's ``SendTaskFailure`` handler drops the ``cause`` parameter, so a flow's Catch
  sees ``Cause: null``. AWS passes it through; so does the patched handler.
- moto's SQS long poll (``WaitTimeSeconds``) looks for messages once a second: a message whose
  ``DelaySeconds`` (or visibility timeout) runs out during the wait is returned up to 1 s
  late (measured: 0.3-0.8 s late for messages due 0.2-0.7 s into the wait). SQS returns a
  long poll as soon as a message is available, and the render jobs' poll timers are delayed
  messages, so the patched wait wakes when the next waiting message becomes available.
  (moto does honour ``DelaySeconds`` in real time and refuses more than 900 s, as SQS does.)
- moto's S3 reads a request body through werkzeug's form parser, so a ``PUT`` sent with
  ``Content-Type: application/x-www-form-urlencoded`` (or ``multipart/form-data``) is stored
  as 0 bytes and its checksum fails on the next read. S3 stores the bytes of a PUT whatever
  its content type; the patched S3 handler reads a PUT's body raw, unparsed. (A browser
  ``POST`` upload really is a form, and is left to moto.)
- moto's server finds the service of every request under one process-wide lock, and inside
  it lists moto's package directory (``os.listdir`` plus ~150 ``isdir`` calls) to learn the
  service names: every AWS call of every function queued on that lock (profiled in the fault
  run: the largest single wait of the local stack under load). AWS has no such choke point;
  the service names never change while the process runs, so the patched lookup lists them
  once. (Speed, not semantics: the answers are the same.)
- moto's ``CompleteMultipartUpload`` with a full-object checksum (``ChecksumType:
  FULL_OBJECT``, as the download function asks for) copies the whole object twice more, into
  a second buffer and then into ``bytes``, just to compute the CRC, and the object itself into
  another buffer before ``bytes`` again: four copies of a 1 GiB file at once, seconds of
  memory traffic that grows faster than the file (measured: the completion took 11.5 of the
  download bench's 19.1 s at 1 GiB, and boto3's ``upload_fileobj``, with per-part checksums,
  did not pay it). S3 combines the parts' checksums and does not re-read the object. The
  patched completion computes the same CRC running over the parts and joins the parts once;
  the stored object, its ETag and its checksum are unchanged.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import functools
import threading
from collections.abc import Iterator
from typing import Any

from moto.core.request import Request
from moto.core.utils import unix_time_millis
from moto.dynamodb.models import DynamoDBBackend
from moto.s3.exceptions import EntityTooSmall, InvalidPart, MalformedXML
from moto.s3.models import FakeMultipart, MultipartChecksumBuilder
from moto.s3.responses import S3Response
from moto.settings import S3_UPLOAD_PART_MIN_SIZE
from moto.sqs.models import Queue
from moto.stepfunctions.responses import StepFunctionResponse
from moto.utilities.utils import md5_hash

_ITEM_LOCK = threading.RLock()
_SERIALISED = (
    "put_item",
    "update_item",
    "delete_item",
    "transact_write_items",
    "batch_write_item",
    "get_item",
    "batch_get_item",
    "query",
    "scan",
    "transact_get_items",
)
_installed = False


def make_moto_behave_like_aws() -> None:
    """Idempotent: applies the corrections above to the moto backends in this process."""
    global _installed
    if _installed:
        return
    for name in _SERIALISED:
        original = getattr(DynamoDBBackend, name)

        @functools.wraps(original)
        def locked(
            self: DynamoDBBackend, *args: Any, __original: Any = original, **kwargs: Any
        ) -> Any:
            with _ITEM_LOCK:
                return __original(self, *args, **kwargs)

        setattr(DynamoDBBackend, name, locked)
    StepFunctionResponse.send_task_failure = _send_task_failure_with_cause  # type: ignore[method-assign]
    S3Response.setup_class = _s3_setup_class_keeping_put_bodies(S3Response.setup_class)  # type: ignore[method-assign]
    Queue.wait_for_messages = _wait_for_messages_until_available  # type: ignore[method-assign]
    _list_moto_services_once()
    FakeMultipart.complete = _complete_multipart_copying_once  # type: ignore[method-assign]
    _installed = True


def _send_task_failure_with_cause(self: StepFunctionResponse) -> Any:
    from moto.core.responses import EmptyResult

    self.stepfunction_backend.send_task_failure(  # type: ignore[call-arg]
        self._get_param("taskToken"),
        error=self._get_param("error"),
        cause=self._get_param("cause"),
    )
    return EmptyResult()


def _wait_for_messages_until_available(self: Queue, timeout: int) -> None:
    """Wait up to ``timeout`` s for a message: a new one, or a delayed or invisible one whose
    time has come (moto's own wait notices only new ones, and only once a second)."""
    deadline_ms = unix_time_millis() + timeout * 1000
    with self._messages_lock:
        while not self.messages:
            now_ms = unix_time_millis()
            if now_ms >= deadline_ms:
                return
            upcoming = [
                max(message.delayed_until, message.visible_at)
                for message in self._messages
                if max(message.delayed_until, message.visible_at) > now_ms
            ]
            wake_ms = min([deadline_ms, *upcoming])
            # A few ms past the due time, so the message counts as available on waking.
            self._messages_lock.wait(max(0.001, (wake_ms - now_ms) / 1000 + 0.002))


_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _s3_setup_class_keeping_put_bodies(original: Any) -> Any:
    @functools.wraps(original)
    def setup_class(self: S3Response, request: Request, *args: Any, **kwargs: Any) -> Any:
        if request.method == "PUT" and request.mimetype in _FORM_TYPES:
            # Cache the raw bytes before anything parses them, and give the request an
            # empty form: werkzeug's parser would consume the stream, and moto would
            # read form fields of an object's bytes as query parameters.
            request.get_data(cache=True, parse_form_data=False)
            empty = request.parameter_storage_class()
            request.__dict__.update(form=empty, files=request.parameter_storage_class())
        return original(self, request, *args, **kwargs)

    return setup_class


def _list_moto_services_once() -> None:
    """moto's service names (its package's sub-directories), listed once, not per request."""
    from moto import backends

    services = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: services


# moto without the optional crc32c / awscrt libraries computes CRC32 for these as well.
_RUNNING_CRC32 = frozenset({"CRC32", "CRC32C", "CRC64NVME"})


def _complete_multipart_copying_once(
    self: FakeMultipart, body: Iterator[tuple[int, str]]
) -> tuple[bytes, str, tuple[str, str, int] | None]:
    """moto's ``FakeMultipart.complete`` (same checks, same ETag and checksum), with the
    parts joined once and a full-object CRC computed over them as they pass."""
    algorithm: str = self.metadata.get("x-amz-checksum-algorithm") or "CRC64NVME"
    checksum_type: str | None = self.metadata.get("x-amz-checksum-type")
    running = checksum_type == "FULL_OBJECT" or (
        not checksum_type and algorithm == "CRC64NVME"  # moto's default: full-object
    )
    if running and algorithm not in _RUNNING_CRC32 | _real_crc_algorithms():
        running = False
    composite = None if running else MultipartChecksumBuilder(algorithm, checksum_type)
    decode_hex = codecs.getdecoder("hex_codec")
    values: list[bytes] = []
    md5s = bytearray()
    crc = 0
    last = None
    for number, etag in body:
        part = self.parts.get(number)
        if part is None or part.etag.replace('"', "") != etag.replace('"', ""):
            raise InvalidPart()
        if last is not None and last.contentsize < S3_UPLOAD_PART_MIN_SIZE:
            raise EntityTooSmall()
        md5s.extend(decode_hex(part.etag.replace('"', ""))[0])  # type: ignore[arg-type]
        value = part.value
        values.append(value)
        if composite is not None:
            composite.addPart(value)
        else:
            crc = binascii.crc32(value, crc)
        last = part
    if not values:
        raise MalformedXML
    full_etag = md5_hash()
    full_etag.update(bytes(md5s))
    if composite is not None:
        checksum = composite.build()
    else:
        checksum = ("FULL_OBJECT", base64.b64encode(crc.to_bytes(4, "big")).decode(), 1)
    return b"".join(values), f"{full_etag.hexdigest()}-{len(values)}", checksum


def _real_crc_algorithms() -> frozenset[str]:
    """Algorithms moto computes with a library of their own (not as CRC32): not run here."""
    found = set()
    for algorithm, module in (("CRC32C", "crc32c"), ("CRC64NVME", "awscrt")):
        try:
            __import__(module)
        except ImportError:
            continue
        found.add(algorithm)
    return frozenset(found)
