"""ArtifactStreamer against moto S3 and real loopback HTTP servers.

Every failure case ends the same way: the right exception, nothing under the key, no
multipart upload left behind. Files are a few MiB with 5 MiB parts (S3's minimum, which moto
enforces), so the multipart path runs for real and the suite stays fast.
"""

from __future__ import annotations

import gzip
import hashlib
import random
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import httpx
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from printflow.download import (
    ArtifactExpired,
    ArtifactStreamer,
    DestinationBlocked,
    DownloadPermanent,
    DownloadTimedOut,
    DownloadTransient,
    DownloadUnauthorized,
    SizeMismatch,
    StorageFailed,
    TooManyRedirects,
    artifact_key,
)
from printflow.download.parts import MiB, plan_parts
from printflow.download.s3_object import StreamedObject
from printflow.net import BlockedDestination, EgressGuard, EgressPolicy, guarded_client

BUCKET = "printflow-artifacts"
KEY = artifact_key("shop-1", "1001", "job-1", "poster.pdf")
PART = 5 * MiB
META = {"order-id": "1001", "job-id": "job-1", "reference": "task-42"}


def payload(size: int, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(size)


# -- a loopback file server ---------------------------------------------------------------------

Route = Callable[["FileHandler"], None]


@dataclass
class Received:
    path: str
    headers: dict[str, str]


@dataclass
class FileServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 whose routes are plain functions."""

    server: LoopbackServer
    routes: dict[str, Route] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def netloc(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"http://{self.netloc}{path}"

    def paths(self) -> list[str]:
        return [r.path for r in self.received]


class FileHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: LoopbackServer

    @property
    def files(self) -> FileServer:
        return self.server.files

    def do_GET(self) -> None:
        self.files.received.append(
            Received(self.path, {k.lower(): v for k, v in self.headers.items()})
        )
        route = self.files.routes.get(self.path.split("?")[0])
        if route is None:
            self.reply_status(404)
            return
        route(self)

    # building blocks for routes

    def reply_status(self, status: int, **headers: str) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def reply_body(
        self,
        body: bytes,
        *,
        content_length: int | None = None,
        content_type: str = "application/pdf",
        send: int | None = None,
        pause_s: float = 0.0,
        chunked: bool = False,
    ) -> None:
        """``body`` in 1 MiB writes; ``send`` bytes only (then a clean close) if given."""
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            length = len(body) if content_length is None else content_length
            self.send_header("Content-Length", str(length))
        self.end_headers()
        limit = len(body) if send is None else send
        for start in range(0, limit, MiB):
            piece = body[start : min(start + MiB, limit)]
            if chunked:
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            else:
                self.wfile.write(piece)
            if pause_s:
                time.sleep(pause_s)
        if chunked and send is None:
            self.wfile.write(b"0\r\n\r\n")
        if send is not None:
            self.close_connection = True

    def reset(self) -> None:
        """Abort the connection with a TCP RST (SO_LINGER 0), as a crashed proxy would."""
        self.wfile.flush()
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass


class LoopbackServer(ThreadingHTTPServer):
    daemon_threads = True
    files: FileServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # resets and early closes are what some routes do on purpose


def redirect(status: int, location: str) -> Route:
    return lambda handler: handler.reply_status(status, Location=location)


def start_server() -> FileServer:
    server = LoopbackServer(("127.0.0.1", 0), FileHandler)
    files = server.files = FileServer(server)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return files


@pytest.fixture
def files() -> Iterator[FileServer]:
    server = start_server()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def other_files() -> Iterator[FileServer]:
    """A second origin (another port): where a provider's link might redirect to."""
    server = start_server()
    yield server
    server.server.shutdown()
    server.server.server_close()


# -- S3 (moto), spied ---------------------------------------------------------------------------


class SpyS3:
    """The moto client, recording each call; ``fail`` raises on the n-th call of an operation."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: list[str] = []
        self.fail: dict[tuple[str, int], BaseException] = {}
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.calls.append(name)
                failure = self.fail.get((name, self.calls.count(name)))
            if failure is not None:
                raise failure
            return attribute(*args, **kwargs)

        return call


@pytest.fixture(scope="module")
def moto_s3() -> Iterator[Any]:
    """One moto S3 for the module (starting moto per test would double the suite's time)."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        with mock_aws():
            yield boto3.client("s3", region_name="us-east-1")


@pytest.fixture
def s3(moto_s3: Any) -> Iterator[SpyS3]:
    """A fresh, empty bucket per test, behind a spy."""
    moto_s3.create_bucket(Bucket=BUCKET)
    yield SpyS3(moto_s3)
    for upload in moto_s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []):
        moto_s3.abort_multipart_upload(
            Bucket=BUCKET, Key=upload["Key"], UploadId=upload["UploadId"]
        )
    for obj in moto_s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        moto_s3.delete_object(Bucket=BUCKET, Key=obj["Key"])
    moto_s3.delete_bucket(Bucket=BUCKET)


def sha256_tag(s3: SpyS3, key: str = KEY) -> str | None:
    tags = s3._client.get_object_tagging(Bucket=BUCKET, Key=key)["TagSet"]
    return {tag["Key"]: tag["Value"] for tag in tags}.get("sha256")


def stored(s3: SpyS3, key: str = KEY) -> tuple[bytes, dict[str, Any]]:
    obj = s3._client.get_object(Bucket=BUCKET, Key=key)
    return obj["Body"].read(), obj


def assert_nothing_stored(s3: SpyS3, key: str = KEY) -> None:
    with pytest.raises(ClientError) as caught:
        s3._client.head_object(Bucket=BUCKET, Key=key)
    assert caught.value.response["Error"]["Code"] in ("404", "NoSuchKey")
    assert s3._client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


def assert_aborted(s3: SpyS3) -> None:
    """The failure happened with parts already uploaded, and the upload was aborted."""
    assert "create_multipart_upload" in s3.calls and "upload_part" in s3.calls
    assert "abort_multipart_upload" in s3.calls
    assert "complete_multipart_upload" not in s3.calls
    assert_nothing_stored(s3)


# -- the streamer -------------------------------------------------------------------------------


def public_dns(host: str, port: int) -> list[str]:
    """Test resolver: real-looking names resolve to a public address, internal ones to 10/8."""
    return ["10.0.0.7"] if host.endswith(".internal") else ["93.184.216.34"]


def make_streamer(s3: SpyS3, *servers: FileServer, **options: Any) -> ArtifactStreamer:
    policy = EgressPolicy.parse(",".join(server.netloc for server in servers))
    guard = EgressGuard(policy, resolver=public_dns)
    http = guarded_client(guard, timeout=5.0)
    return ArtifactStreamer(s3, BUCKET, http, guard, min_part_size=PART, **options)


def download(
    streamer: ArtifactStreamer,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    declared_size: int | None = None,
    content_type: str | None = "application/pdf",
    seconds: float = 10.0,
) -> Any:
    return streamer.stream(
        url,
        headers or {},
        KEY,
        content_type=content_type,
        declared_size=declared_size,
        metadata=META,
        deadline=time.monotonic() + seconds,
    )


# -- success ------------------------------------------------------------------------------------


def test_multipart_happy_path(s3: SpyS3, files: FileServer) -> None:
    # Given a 12 MiB + 123 byte file (three parts of 5 MiB, 5 MiB, 2 MiB + 123)
    body = payload(12 * MiB + 123)
    files.routes["/task/42/download"] = lambda h: h.reply_body(body)
    streamer = make_streamer(s3, files)

    # When it is streamed into S3
    result = download(streamer, files.url("/task/42/download"), declared_size=len(body))

    # Then the object is the file, with the caller's metadata and its SHA-256 as a tag
    sha = hashlib.sha256(body).hexdigest()
    assert (result.key, result.size, result.sha256) == (KEY, len(body), sha)
    content, obj = stored(s3)
    assert content == body
    assert obj["ContentType"] == "application/pdf" == result.content_type
    assert obj["Metadata"] == META
    assert sha256_tag(s3) == sha
    assert obj["ETag"] == result.etag
    assert s3.calls.count("upload_part") == 3
    # written once: no copy of the object onto itself
    assert not {"copy_object", "upload_part_copy"} & set(s3.calls)
    assert s3._client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    # and the server was asked for the identity encoding
    assert files.received[0].headers["accept-encoding"] == "identity"


def test_chunked_body_of_unknown_length(s3: SpyS3, files: FileServer) -> None:
    body = payload(11 * MiB + 5)
    files.routes["/f"] = lambda h: h.reply_body(body, chunked=True, content_type="image/tiff")
    streamer = make_streamer(s3, files)

    # No declared size, no content type from the provider: the response's is used.
    result = download(streamer, files.url("/f"), content_type=None)

    content, obj = stored(s3)
    assert content == body
    assert result.sha256 == hashlib.sha256(body).hexdigest()
    assert obj["ContentType"] == "image/tiff"
    assert s3.calls.count("upload_part") == 3


def test_small_file_is_a_single_put(s3: SpyS3, files: FileServer) -> None:
    body = payload(300_000)
    files.routes["/f"] = lambda h: h.reply_body(body, content_type="")
    result = download(make_streamer(s3, files), files.url("/f"), content_type=None)
    content, obj = stored(s3)
    assert content == body
    assert obj["ContentType"] == "application/octet-stream"
    assert obj["Metadata"]["sha256"] == result.sha256 == hashlib.sha256(body).hexdigest()
    assert "create_multipart_upload" not in s3.calls


def test_a_file_of_up_to_two_parts_with_a_known_length_is_a_single_put(
    s3: SpyS3, files: FileServer
) -> None:
    # 10 MiB with 5 MiB parts: one PutObject (tag included) instead of create, 2 parts,
    # complete and tag; S3 bills every request.
    body = payload(2 * PART)
    files.routes["/f"] = lambda h: h.reply_body(body)
    result = download(make_streamer(s3, files), files.url("/f"), declared_size=len(body))
    content, obj = stored(s3)
    assert content == body
    assert obj["Metadata"]["sha256"] == result.sha256 == hashlib.sha256(body).hexdigest()
    assert sha256_tag(s3) == result.sha256
    assert s3.calls == ["put_object"]
    # One byte more is stored in parts again
    body = payload(2 * PART + 1)
    files.routes["/g"] = lambda h: h.reply_body(body)
    download(make_streamer(s3, files), files.url("/g"), declared_size=len(body))
    assert s3.calls.count("upload_part") == 3


def test_empty_file(s3: SpyS3, files: FileServer) -> None:
    files.routes["/f"] = lambda h: h.reply_body(b"")
    result = download(make_streamer(s3, files), files.url("/f"), declared_size=0)
    assert result.size == 0
    assert result.sha256 == hashlib.sha256(b"").hexdigest()
    assert stored(s3)[0] == b""


def test_server_that_compresses_anyway(s3: SpyS3, files: FileServer) -> None:
    # Some servers send gzip whatever Accept-Encoding says: the file is stored decoded, the
    # Content-Length (of the compressed body) and the declared size (of the file) both hold.
    body = b"%PDF-1.7 " + b"0123456789" * 700_000
    compressed = gzip.compress(body)

    def gzipped(handler: FileHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Encoding", "gzip")
        handler.send_header("Content-Length", str(len(compressed)))
        handler.end_headers()
        handler.wfile.write(compressed)

    files.routes["/f"] = gzipped
    result = download(make_streamer(s3, files), files.url("/f"), declared_size=len(body))
    assert stored(s3)[0] == body
    assert result.sha256 == hashlib.sha256(body).hexdigest()


def test_invalid_source_url(s3: SpyS3, files: FileServer) -> None:
    with pytest.raises(DestinationBlocked):
        download(make_streamer(s3, files), "https://exa mple.com/f")
    assert s3.calls == []


# -- failures mid-body ----------------------------------------------------------------------------


def test_truncated_body(s3: SpyS3, files: FileServer) -> None:
    # The server promises 12 MiB, sends 7 MiB and closes cleanly.
    body = payload(12 * MiB)
    files.routes["/f"] = lambda h: h.reply_body(body, send=7 * MiB)
    with pytest.raises(SizeMismatch, match="7340032 of 12582912"):
        download(make_streamer(s3, files), files.url("/f"))
    assert_aborted(s3)


def test_connection_reset_mid_stream(s3: SpyS3, files: FileServer) -> None:
    body = payload(12 * MiB)

    def reset_after_7_mib(handler: FileHandler) -> None:
        handler.reply_body(body, send=7 * MiB)
        time.sleep(0.2)  # let the client read what was sent, then RST
        handler.reset()

    files.routes["/f"] = reset_after_7_mib
    with pytest.raises(DownloadTransient, match="ReadError after") as caught:
        download(make_streamer(s3, files), files.url("/f"))
    assert type(caught.value) is DownloadTransient
    assert_aborted(s3)


def test_content_length_disagrees_with_declared_size(s3: SpyS3, files: FileServer) -> None:
    body = payload(12 * MiB)
    files.routes["/f"] = lambda h: h.reply_body(body)
    with pytest.raises(SizeMismatch, match="declared size"):
        download(make_streamer(s3, files), files.url("/f"), declared_size=len(body) + 1)
    # Known from the headers: not a byte was stored.
    assert "create_multipart_upload" not in s3.calls
    assert_nothing_stored(s3)


def test_body_longer_than_declared_stops_early(s3: SpyS3, files: FileServer) -> None:
    body = payload(12 * MiB)
    files.routes["/f"] = lambda h: h.reply_body(body, chunked=True)
    with pytest.raises(SizeMismatch, match="more than the declared"):
        download(make_streamer(s3, files), files.url("/f"), declared_size=6 * MiB)
    assert_aborted(s3)


def test_body_shorter_than_declared(s3: SpyS3, files: FileServer) -> None:
    body = payload(11 * MiB)
    files.routes["/f"] = lambda h: h.reply_body(body, chunked=True)
    with pytest.raises(SizeMismatch, match="declared 12582912"):
        download(make_streamer(s3, files), files.url("/f"), declared_size=12 * MiB)
    assert_aborted(s3)


def test_deadline_passes_mid_stream(s3: SpyS3, files: FileServer) -> None:
    # 1 MiB every 0.1 s: the first part is uploaded before the 0.8 s budget runs out.
    body = payload(15 * MiB)
    files.routes["/f"] = lambda h: h.reply_body(body, pause_s=0.1)
    started = time.monotonic()
    with pytest.raises(DownloadTimedOut):
        download(make_streamer(s3, files), files.url("/f"), seconds=0.8)
    assert time.monotonic() - started < 2.0
    assert_aborted(s3)


def test_stalled_server_times_out_at_the_deadline(s3: SpyS3, files: FileServer) -> None:
    # Headers, then nothing: the read timeout (5 s) is capped by the 0.5 s left.
    def stall(handler: FileHandler) -> None:
        handler.reply_body(payload(MiB), send=0)
        time.sleep(3)

    files.routes["/f"] = stall
    started = time.monotonic()
    with pytest.raises(DownloadTimedOut):
        download(make_streamer(s3, files), files.url("/f"), seconds=0.5)
    assert time.monotonic() - started < 2.0
    assert_nothing_stored(s3)


def test_s3_failure_aborts_the_upload(s3: SpyS3, files: FileServer) -> None:
    body = payload(12 * MiB)
    files.routes["/f"] = lambda h: h.reply_body(body)
    s3.fail[("upload_part", 2)] = ClientError(
        {"Error": {"Code": "SlowDown", "Message": "slow down"}}, "UploadPart"
    )
    with pytest.raises(StorageFailed):
        download(make_streamer(s3, files), files.url("/f"))
    assert_aborted(s3)


def test_keyboard_interrupt_aborts_the_upload(s3: SpyS3, files: FileServer) -> None:
    body = payload(12 * MiB)
    files.routes["/f"] = lambda h: h.reply_body(body)
    s3.fail[("upload_part", 2)] = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt):
        download(make_streamer(s3, files), files.url("/f"))
    assert_aborted(s3)


def test_failed_tagging_leaves_nothing(s3: SpyS3, files: FileServer) -> None:
    body = payload(12 * MiB)
    files.routes["/f"] = lambda h: h.reply_body(body)
    s3.fail[("put_object_tagging", 1)] = ClientError(
        {"Error": {"Code": "InternalError", "Message": "boom"}}, "PutObjectTagging"
    )
    with pytest.raises(StorageFailed):
        download(make_streamer(s3, files), files.url("/f"))
    assert "delete_object" in s3.calls
    assert_nothing_stored(s3)


# -- statuses -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (404, ArtifactExpired),
        (410, ArtifactExpired),
        (401, DownloadUnauthorized),
        (403, DownloadUnauthorized),
        (400, DownloadPermanent),
        (500, DownloadTransient),
        (502, DownloadTransient),
        (503, DownloadTransient),
    ],
)
def test_statuses(s3: SpyS3, files: FileServer, status: int, error: type[Exception]) -> None:
    files.routes["/f"] = lambda h: h.reply_status(status)
    with pytest.raises(error) as caught:
        download(make_streamer(s3, files), files.url("/f?token=secret"))
    assert type(caught.value) is error
    assert caught.value.status == status  # type: ignore[attr-defined]
    assert "secret" not in str(caught.value)  # signed links keep their query out of messages
    assert s3.calls == []
    assert_nothing_stored(s3)


def test_5xx_and_expiry_are_on_the_right_side() -> None:
    assert issubclass(ArtifactExpired, DownloadPermanent)
    assert issubclass(DownloadUnauthorized, DownloadPermanent)
    assert issubclass(SizeMismatch, DownloadTransient)
    assert issubclass(DownloadTimedOut, DownloadTransient)
    assert issubclass(DestinationBlocked, DownloadPermanent)
    assert issubclass(DestinationBlocked, BlockedDestination)


def test_429_with_retry_after_then_success(s3: SpyS3, files: FileServer) -> None:
    body = payload(2 * MiB)
    answers = iter(["throttle", "ok"])

    def throttled_once(handler: FileHandler) -> None:
        if next(answers) == "throttle":
            handler.reply_status(429, Retry_After="7")
        else:
            handler.reply_body(body)

    files.routes["/f"] = throttled_once
    streamer = make_streamer(s3, files)
    with pytest.raises(DownloadTransient) as caught:
        download(streamer, files.url("/f"))
    assert caught.value.status == 429
    assert caught.value.retry_after_s == 7.0
    assert_nothing_stored(s3)

    result = download(streamer, files.url("/f"))
    assert stored(s3)[0] == body
    assert result.size == len(body)


def test_retry_after_as_http_date(s3: SpyS3, files: FileServer) -> None:
    from email.utils import formatdate

    files.routes["/f"] = lambda h: h.reply_status(
        503, Retry_After=formatdate(time.time() + 120, usegmt=True)
    )
    with pytest.raises(DownloadTransient) as caught:
        download(make_streamer(s3, files), files.url("/f"))
    assert caught.value.retry_after_s is not None
    assert 100 < caught.value.retry_after_s <= 120


# -- redirects ------------------------------------------------------------------------------------


def test_redirect_to_another_origin_drops_credentials(
    s3: SpyS3, files: FileServer, other_files: FileServer
) -> None:
    # Given a provider link that redirects (relative, then absolute) to a blob store
    body = payload(3 * MiB)
    files.routes["/download"] = redirect(302, "/download/2")
    files.routes["/download/2"] = redirect(307, other_files.url("/blob?sig=abc"))
    other_files.routes["/blob"] = lambda h: h.reply_body(body)
    streamer = make_streamer(s3, files, other_files)

    # When downloaded with the provider's bearer token
    headers = {"Authorization": "Bearer provider-token", "X-Request-Id": "r-1", "Cookie": "s=1"}
    result = download(streamer, files.url("/download"), headers=headers)

    # Then the provider's origin saw the token on both hops, the blob store never did
    assert files.paths() == ["/download", "/download/2"]
    assert all(r.headers["authorization"] == "Bearer provider-token" for r in files.received)
    [blob_request] = other_files.received
    assert blob_request.path == "/blob?sig=abc"
    assert "authorization" not in blob_request.headers
    assert "cookie" not in blob_request.headers
    assert blob_request.headers["x-request-id"] == "r-1"
    assert stored(s3)[0] == body and result.size == len(body)


@pytest.mark.parametrize(
    "location",
    [
        "http://files.example.com/blob",  # plain http, not allowlisted
        "https://10.0.0.1/blob",  # private address literal
        "https://169.254.169.254/latest/meta-data/",  # instance metadata
        "https://storage.internal/blob",  # a name resolving to a private address
        "https://127.0.0.1:1/blob",  # loopback, not an allowlisted port
        "ftp://files.example.com/blob",
    ],
)
def test_redirect_to_a_forbidden_destination(s3: SpyS3, files: FileServer, location: str) -> None:
    files.routes["/f"] = redirect(302, location)
    with pytest.raises(DestinationBlocked) as caught:
        download(make_streamer(s3, files), files.url("/f"))
    assert isinstance(caught.value, BlockedDestination)
    assert isinstance(caught.value, DownloadPermanent)
    assert files.paths() == ["/f"]
    assert s3.calls == []
    assert_nothing_stored(s3)


def test_source_url_itself_is_guarded(s3: SpyS3, files: FileServer) -> None:
    with pytest.raises(DestinationBlocked):
        download(make_streamer(s3, files), "http://metadata.internal/latest")
    assert_nothing_stored(s3)


def test_too_many_redirects(s3: SpyS3, files: FileServer) -> None:
    for n in range(10):
        files.routes[f"/hop/{n}"] = redirect(302, f"/hop/{n + 1}")
    with pytest.raises(TooManyRedirects):
        download(make_streamer(s3, files, max_redirects=3), files.url("/hop/0"))
    assert files.paths() == ["/hop/0", "/hop/1", "/hop/2", "/hop/3"]
    assert_nothing_stored(s3)


def test_redirect_within_the_limit(s3: SpyS3, files: FileServer) -> None:
    body = payload(1000)
    for n in range(3):
        files.routes[f"/hop/{n}"] = redirect(301, f"/hop/{n + 1}")
    files.routes["/hop/3"] = lambda h: h.reply_body(body)
    download(make_streamer(s3, files, max_redirects=3), files.url("/hop/0"))
    assert stored(s3)[0] == body


def test_redirect_without_location(s3: SpyS3, files: FileServer) -> None:
    files.routes["/f"] = lambda h: h.reply_status(302)
    with pytest.raises(DownloadPermanent, match="without a Location"):
        download(make_streamer(s3, files), files.url("/f"))


# -- idempotency -----------------------------------------------------------------------------------


def test_existing_matches(s3: SpyS3, files: FileServer) -> None:
    body = payload(6 * MiB)
    files.routes["/f"] = lambda h: h.reply_body(body)
    streamer = make_streamer(s3, files)
    sha = hashlib.sha256(body).hexdigest()

    assert not streamer.existing_matches(KEY, len(body), sha)  # nothing there yet
    download(streamer, files.url("/f"))

    assert streamer.existing_matches(KEY, len(body), sha)
    assert streamer.existing_matches(KEY, len(body), sha.upper())
    assert not streamer.existing_matches(KEY, len(body) - 1, sha)
    assert not streamer.existing_matches(KEY, len(body), "0" * 64)
    # An object without the digest (written by something else, or never tagged) is not it.
    s3._client.put_object(Bucket=BUCKET, Key="orders/x", Body=body)
    assert not streamer.existing_matches("orders/x", len(body), sha)


# -- the digest on the object, without a second write ----------------------------------------


def test_the_tag_lands_on_the_version_just_completed(s3: SpyS3) -> None:
    # On a versioned bucket (as the artifact bucket is), a writer that lands a newer version
    # between complete and tag must not get our digest.
    s3._client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    body = payload(12 * MiB)
    target = StreamedObject(
        s3,
        BUCKET,
        KEY,
        plan=plan_parts(len(body), PART),
        content_type="application/pdf",
        metadata=META,
    )
    for start in range(0, len(body), MiB):
        target.write(body[start : start + MiB])
    committed = target.commit()

    versions = s3._client.list_object_versions(Bucket=BUCKET, Prefix=KEY)["Versions"]
    assert len(versions) == 1  # one write: no copy made a second version
    tags = s3._client.get_object_tagging(
        Bucket=BUCKET, Key=KEY, VersionId=versions[0]["VersionId"]
    )["TagSet"]
    assert tags == [{"Key": "sha256", "Value": committed.sha256}]
    assert committed.sha256 == hashlib.sha256(body).hexdigest()
    for version in versions:  # the fixture removes the bucket, which must be empty
        s3._client.delete_object(Bucket=BUCKET, Key=KEY, VersionId=version["VersionId"])


def test_client_must_not_follow_redirects_itself(s3: SpyS3, files: FileServer) -> None:
    # Even a client configured to follow redirects is not allowed to: every hop is vetted here.
    files.routes["/f"] = redirect(302, "https://10.0.0.1/x")
    guard = EgressGuard(EgressPolicy.parse(files.netloc), resolver=public_dns)
    http = httpx.Client(follow_redirects=True, trust_env=False)
    streamer = ArtifactStreamer(s3, BUCKET, http, guard, min_part_size=PART)
    with pytest.raises(DestinationBlocked):
        download(streamer, files.url("/f"))
