"""What can go wrong while copying an artifact from a provider into S3.

Two families, because the caller's only decision is "try again later" or "give up":

- :class:`DownloadTransient`: the same request may well succeed later (5xx, 429, network
  trouble, a truncated body, the time budget ran out, S3 hiccups). The caller lets SQS or
  Step Functions retry, no sooner than ``retry_after_s`` when it is set.
- :class:`DownloadPermanent`: retrying the same request cannot help (the link expired, the
  destination is forbidden, the provider refuses us). :class:`DownloadUnauthorized` is the
  one exception the caller handles itself: refresh the provider token once, then retry.

Messages name the host and path but never the query string: signed download links carry
their credentials there, and messages end up in logs and Step Functions error causes.
"""

from __future__ import annotations

from printflow.errors import PrintFlowError
from printflow.net.ssrf import BlockedDestination


class DownloadError(PrintFlowError):
    """Base of every error the artifact download raises on purpose."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class DownloadTransient(DownloadError):
    """Worth retrying later: 5xx, 429, 408, network errors, resets, S3 trouble.

    ``retry_after_s`` is the server's ``Retry-After`` (seconds or HTTP date) when it sent one.
    """

    def __init__(
        self, message: str, *, status: int | None = None, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after_s = retry_after_s


class DownloadTimedOut(DownloadTransient):
    """The caller's deadline (derived from the Lambda's remaining time) passed mid-download.

    Transient: the next attempt starts with a fresh budget; nothing partial was stored.
    """


class SizeMismatch(DownloadTransient):
    """The body's length disagrees with ``Content-Length`` or with the provider's declared size.

    Transient on purpose: the usual cause is a body cut short (a proxy, a reset, a CDN node
    serving a partial copy), which a retry fixes. A provider that always lies about the size
    exhausts the caller's bounded retries and fails the job then.
    """


class StorageFailed(DownloadTransient):
    """S3 refused or failed a call while storing the artifact (throttling, 5xx, network)."""


class DownloadPermanent(DownloadError):
    """Retrying the same download cannot succeed: the job's download fails for good."""


class ArtifactExpired(DownloadPermanent):
    """404 or 410: the provider no longer has the file (CHILI links live 4 hours)."""


class DownloadUnauthorized(DownloadPermanent):
    """401 or 403: the caller drops the provider token, fetches a new one and retries once."""


class ArtifactTooLarge(DownloadPermanent):
    """The file is larger than one S3 object may be (5 TiB) or than 10,000 parts can hold."""


class TooManyRedirects(DownloadPermanent):
    """The download link redirected more often than the configured limit."""


class DestinationBlocked(DownloadPermanent, BlockedDestination):
    """The download link, or a redirect it led to, points where PrintFlow may not connect.

    Also a :class:`~printflow.net.ssrf.BlockedDestination`, so code that handles the SSRF
    guard's refusal generically still recognises it.
    """
