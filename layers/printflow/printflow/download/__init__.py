"""Artifact download: provider links streamed into S3 under predictable, safe keys.

- :mod:`printflow.domain.object_keys`: ``orders/{storefrontId}/{orderId}/{jobId}/{filename}``,
  the order's ``manifest.json``, and collision-free file names within a job;
- :mod:`printflow.download.streaming`: :class:`ArtifactStreamer`, httpx into S3 multipart
  upload with memory bounded by a few parts;
- :mod:`printflow.download.s3_object` and :mod:`printflow.download.parts`: the S3 side (part
  sizes, buffers, abort on failure, the ``sha256`` metadata);
- :mod:`printflow.download.errors`: transient versus permanent failures.
"""

from printflow.domain.object_keys import (
    artifact_key,
    manifest_key,
    safe_filename,
    safe_id,
    unique_filenames,
)
from printflow.download.errors import (
    ArtifactExpired,
    ArtifactTooLarge,
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
from printflow.download.streaming import ArtifactStreamer, StoredArtifact

__all__ = [
    "ArtifactExpired",
    "ArtifactStreamer",
    "ArtifactTooLarge",
    "DestinationBlocked",
    "DownloadError",
    "DownloadPermanent",
    "DownloadTimedOut",
    "DownloadTransient",
    "DownloadUnauthorized",
    "SizeMismatch",
    "StorageFailed",
    "StoredArtifact",
    "TooManyRedirects",
    "artifact_key",
    "manifest_key",
    "safe_filename",
    "safe_id",
    "unique_filenames",
]
