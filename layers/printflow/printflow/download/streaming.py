"""Copy one artifact from a provider's download link into S3 without holding it in memory.

:class:`ArtifactStreamer` sends the GET through an httpx client, follows redirects itself
(each hop vetted by the SSRF guard, credentials kept to the original origin), streams the
body into a :class:`~printflow.download.s3_object.StreamedObject` while hashing it, checks the
length against ``Content-Length`` and the provider's declared size, and only then makes the
object visible. Any failure aborts the upload: a key either holds the complete file with its
``sha256`` tag, or nothing new.

Time: httpx's timeouts bound each network wait, not the download. The caller passes a
``deadline`` (``time.monotonic()`` based, derived from the Lambda's remaining time); it is
checked after every network read, and each request's timeouts are capped by what is left,
so a stalled or trickling server costs at most one read timeout past the deadline.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from botocore.exceptions import BotoCoreError, ClientError

from printflow.download.errors import (
    ArtifactExpired,
    DestinationBlocked,
    DownloadError,
    DownloadPermanent,
    DownloadTimedOut,
    DownloadTransient,
    DownloadUnauthorized,
    SizeMismatch,
    StorageFailed,
    TooManyRedirects,
)
from printflow.download.parts import MiB, plan_parts
from printflow.download.s3_object import SHA256_TAG_KEY, StreamedObject, object_metadata
from printflow.net.ssrf import BlockedDestination, EgressGuard, UnresolvableDestination
from printflow.providers.http_answers import retry_after_s
from printflow.validators import ascii_int

DEFAULT_CONTENT_TYPE = "application/octet-stream"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
OK_STATUSES = frozenset({200, 203})
# Sent only to the origin the caller named: a CHILI link may redirect to a blob store, which
# must never see the provider's bearer token.
CREDENTIAL_HEADERS = ("authorization", "proxy-authorization", "cookie")
_DEFAULT_PORTS = {"http": 80, "https": 443}
DEFAULT_UPLOAD_CONCURRENCY = 4


@dataclass(frozen=True, slots=True)
class StoredArtifact:
    """A file now in S3: what the manifest lists and the next step passes on."""

    key: str
    size: int
    sha256: str  # hex digest of the file's bytes
    content_type: str
    etag: str


class ArtifactStreamer:
    """Streams artifact downloads into S3 multipart uploads, memory bounded by a few parts.

    ``s3_client`` is a boto3 S3 client; ``http`` an ``httpx.Client`` that does not follow
    redirects (use :func:`printflow.net.safe_http.guarded_client` with the same ``guard``, so
    every connection is pinned to a checked address). ``upload_concurrency`` parts upload
    while the next one downloads; memory is about ``(upload_concurrency + 1) x part size``
    (40 MiB at the defaults). Four in flight, not two: one S3 connection moves well under
    what the function's network can, so with two the download waited on S3 for most of
    every part of a large file (``bench/download.py`` at 1 GiB).
    """

    def __init__(
        self,
        s3_client: Any,
        bucket: str,
        http: httpx.Client,
        guard: EgressGuard,
        *,
        min_part_size: int = 8 * MiB,
        max_redirects: int = 5,
        upload_concurrency: int = DEFAULT_UPLOAD_CONCURRENCY,
    ) -> None:
        plan_parts(None, min_part_size)  # validates the size now, not at the first download
        if max_redirects < 0 or upload_concurrency < 1:
            raise ValueError("max_redirects must be >= 0 and upload_concurrency >= 1")
        self._s3 = s3_client
        self.bucket = bucket
        self._http = http
        self._guard = guard
        self._min_part_size = min_part_size
        self._max_redirects = max_redirects
        self._upload_concurrency = upload_concurrency

    def stream(
        self,
        source_url: str,
        headers: Mapping[str, str],
        key: str,
        *,
        content_type: str | None,
        declared_size: int | None,
        metadata: Mapping[str, str],
        deadline: float,
    ) -> StoredArtifact:
        """Download ``source_url`` into ``key``; return what was stored.

        ``headers`` (the provider's bearer token, if any) go to the source's origin only.
        ``content_type`` is the provider's; the response's is used when it is None.
        ``metadata`` (order id, job id, provider reference) is stored with the object, the
        computed SHA-256 as its ``sha256`` tag. Raises :class:`DownloadTransient` or
        :class:`DownloadPermanent` subclasses (see :mod:`printflow.download.errors`); on any
        error, nothing is stored.
        """
        object_metadata(metadata)  # a bad key is a programming error: fail before any I/O
        try:
            url = httpx.URL(source_url)
        except httpx.InvalidURL as exc:
            raise DestinationBlocked(f"not a valid download URL: {exc}") from None
        response = self._open(url, headers, deadline)
        try:
            return self._store(response, key, content_type, declared_size, metadata, deadline)
        finally:
            response.close()

    def existing_matches(self, key: str, size: int, sha256: str) -> bool:
        """Is ``key`` already the file with this size and SHA-256? (Then skip the download.)

        Only an object carrying the ``sha256`` tag counts: it was stored completely by
        :meth:`stream` (the tag is its last write). The tag is read only when the size matches.
        """
        try:
            head = self._s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound"):
                return False
            raise StorageFailed(f"s3 head_object for {key!r} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageFailed(f"s3 head_object for {key!r} failed: {exc}") from exc
        if head.get("ContentLength") != size:
            return False
        try:
            tagging = self._s3.get_object_tagging(
                Bucket=self.bucket,
                Key=key,
                **({"VersionId": head["VersionId"]} if head.get("VersionId") else {}),
            )
        except (BotoCoreError, ClientError) as exc:
            raise StorageFailed(f"s3 get_object_tagging for {key!r} failed: {exc}") from exc
        tags = {tag["Key"]: tag["Value"] for tag in tagging.get("TagSet", [])}
        return tags.get(SHA256_TAG_KEY) == sha256.lower()

    # -- the request, redirects included ----------------------------------------------------

    def _open(self, url: httpx.URL, headers: Mapping[str, str], deadline: float) -> httpx.Response:
        """The final (non-redirect, successful) response, streaming and not yet read."""
        origin = _origin(url)
        own_headers = httpx.Headers(headers)
        # Sizes must match Content-Length byte for byte, so no transfer compression.
        own_headers["Accept-Encoding"] = "identity"
        foreign_headers = own_headers.copy()
        for name in CREDENTIAL_HEADERS:
            foreign_headers.pop(name, None)

        for _ in range(self._max_redirects + 1):
            self._vet(url)
            sent = own_headers if _origin(url) == origin else foreign_headers
            response = self._send(url, sent, deadline)
            if response.status_code not in REDIRECT_STATUSES:
                if response.status_code not in OK_STATUSES:
                    response.close()
                    raise _status_error(response, url)
                return response
            location = response.headers.get("location")
            response.close()
            if not location:
                raise DownloadPermanent(
                    f"GET {_shown(url)}: HTTP {response.status_code} without a Location",
                    status=response.status_code,
                )
            try:
                url = url.join(location)
            except httpx.InvalidURL as exc:
                raise DestinationBlocked(f"GET {_shown(url)}: invalid redirect: {exc}") from None
        raise TooManyRedirects(f"GET {_shown(url)}: more than {self._max_redirects} redirects")

    def _vet(self, url: httpx.URL) -> None:
        """The SSRF guard's verdict on ``url``, as a download error."""
        try:
            self._guard.check(url)
        except BlockedDestination as exc:
            raise DestinationBlocked(f"GET {_shown(url)}: {exc}") from None
        except UnresolvableDestination as exc:
            raise DownloadTransient(f"GET {_shown(url)}: {exc}") from None

    def _send(self, url: httpx.URL, headers: httpx.Headers, deadline: float) -> httpx.Response:
        _check_deadline(deadline, url)
        request = self._http.build_request(
            "GET", url, headers=headers, timeout=_capped_timeout(self._http.timeout, deadline)
        )
        try:
            return self._http.send(request, stream=True, follow_redirects=False)
        except httpx.TimeoutException as exc:
            raise _timeout_error(url, deadline) from exc
        except httpx.TransportError as exc:
            raise DownloadTransient(f"GET {_shown(url)}: {type(exc).__name__}") from exc
        except BlockedDestination as exc:  # the pinned transport's own check disagreed
            raise DestinationBlocked(f"GET {_shown(url)}: {exc}") from None
        except UnresolvableDestination as exc:
            raise DownloadTransient(f"GET {_shown(url)}: {exc}") from None

    # -- the body ----------------------------------------------------------------------------

    def _store(
        self,
        response: httpx.Response,
        key: str,
        content_type: str | None,
        declared_size: int | None,
        metadata: Mapping[str, str],
        deadline: float,
    ) -> StoredArtifact:
        url = response.request.url
        length = _content_length(response)
        encoded = response.headers.get("content-encoding", "identity").lower() != "identity"
        if not encoded and None not in (length, declared_size) and length != declared_size:
            # Known before a byte of the body: don't download what will be rejected.
            raise SizeMismatch(
                f"GET {_shown(url)}: Content-Length {length}, declared size {declared_size}"
            )
        stored_type = _stored_content_type(content_type, response.headers.get("content-type"))
        target = StreamedObject(
            self._s3,
            self.bucket,
            key,
            # Up to two parts' worth in one PutObject: memory stays within the bound of
            # (concurrency + 1) parts, and a 10 MiB file costs 1 request instead of 5.
            plan=plan_parts(
                None if encoded else length,
                self._min_part_size,
                single_put_limit=2 * self._min_part_size,
            ),
            content_type=stored_type,
            metadata=metadata,
            concurrency=self._upload_concurrency,
        )
        try:
            self._copy_body(response, target, declared_size, length, deadline)
            _check_deadline(deadline, url)
            stored = target.commit()
        except BaseException:
            # KeyboardInterrupt and SystemExit too: never leave parts (billed) behind.
            target.abort()
            raise
        return StoredArtifact(
            key=key,
            size=stored.size,
            sha256=stored.sha256,
            content_type=stored_type,
            etag=stored.etag,
        )

    def _copy_body(
        self,
        response: httpx.Response,
        target: StreamedObject,
        declared_size: int | None,
        length: int | None,
        deadline: float,
    ) -> None:
        """Stream the body into ``target`` (which hashes it), checking its length."""
        url = response.request.url
        size = 0
        expected = declared_size if declared_size is not None else length
        try:
            # No re-chunking: one piece per network read, so the deadline is checked after
            # every read even when a server trickles.
            for chunk in response.iter_bytes():
                size += len(chunk)
                if declared_size is not None and size > declared_size:
                    raise SizeMismatch(
                        f"GET {_shown(url)}: more than the declared {declared_size} bytes"
                    )
                target.write(chunk)
                _check_deadline(deadline, url)
        except DownloadError:
            raise
        except httpx.TimeoutException as exc:
            raise _timeout_error(url, deadline) from exc
        except httpx.RemoteProtocolError as exc:
            # h11 says so when the peer closes before Content-Length (or the last chunk).
            if expected is not None:
                raise SizeMismatch(
                    f"GET {_shown(url)}: body cut short after {size} of {expected} bytes"
                ) from exc
            raise DownloadTransient(f"GET {_shown(url)}: body cut short: {exc}") from exc
        except (httpx.TransportError, httpx.DecodingError) as exc:
            raise DownloadTransient(
                f"GET {_shown(url)}: {type(exc).__name__} after {size} bytes"
            ) from exc

        if length is not None and response.num_bytes_downloaded != length:
            raise SizeMismatch(
                f"GET {_shown(url)}: received {response.num_bytes_downloaded} bytes, "
                f"Content-Length {length}"
            )
        if declared_size is not None and size != declared_size:
            raise SizeMismatch(
                f"GET {_shown(url)}: received {size} bytes, declared {declared_size}"
            )


# -- helpers ----------------------------------------------------------------------------------


def _status_error(response: httpx.Response, url: httpx.URL) -> DownloadError:
    """The error a non-success, non-redirect status means for a download."""
    status = response.status_code
    message = f"GET {_shown(url)}: HTTP {status}"
    if status in (404, 410):
        return ArtifactExpired(message + " (no longer available)", status=status)
    if status in (401, 403):
        return DownloadUnauthorized(message, status=status)
    # 202: the provider is still preparing the file; 408/425/429 and 5xx: try again later.
    if status in (202, 408, 425, 429) or status >= 500:
        return DownloadTransient(message, status=status, retry_after_s=retry_after_s(response))
    return DownloadPermanent(message, status=status)


def _timeout_error(url: httpx.URL, deadline: float) -> DownloadTransient:
    if time.monotonic() >= deadline:
        return DownloadTimedOut(f"GET {_shown(url)}: the download's deadline passed")
    return DownloadTransient(f"GET {_shown(url)}: the server did not answer in time")


def _check_deadline(deadline: float, url: httpx.URL) -> None:
    if time.monotonic() >= deadline:
        raise DownloadTimedOut(f"GET {_shown(url)}: the download's deadline passed")


def _capped_timeout(timeout: httpx.Timeout, deadline: float) -> httpx.Timeout:
    """The client's timeouts, none longer than the time left before ``deadline``."""
    left = max(deadline - time.monotonic(), 0.001)

    def cap(value: float | None) -> float:
        return left if value is None else min(value, left)

    return httpx.Timeout(
        connect=cap(timeout.connect),
        read=cap(timeout.read),
        write=cap(timeout.write),
        pool=cap(timeout.pool),
    )


def _content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length")
    # 5 TiB, S3's largest object, has 13 digits: a longer length is none S3 could store.
    return None if value is None else ascii_int(value.strip(), max_digits=15)


def _stored_content_type(declared: str | None, served: str | None) -> str:
    """The provider's content type, else the server's, else ``application/octet-stream``."""
    for candidate in (declared, served):
        if candidate and len(candidate) <= 255 and candidate.isascii() and candidate.isprintable():
            return candidate.strip()
    return DEFAULT_CONTENT_TYPE


def _origin(url: httpx.URL) -> tuple[str, str, int]:
    port = url.port if url.port is not None else _DEFAULT_PORTS.get(url.scheme, 0)
    return url.scheme, url.host.lower(), port


def _shown(url: httpx.URL) -> str:
    """``url`` for messages: no query (signed links carry credentials there), no fragment."""
    return str(url.copy_with(query=None, fragment=None))
