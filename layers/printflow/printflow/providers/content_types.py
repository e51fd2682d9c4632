"""The one map of file format to content type: for the adapters' artifact sources (the S3
object's ``Content-Type``) and for the local sandboxes' files. A provider's spec names the
formats it produces with :func:`content_types_for`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

CONTENT_TYPES: Mapping[str, str] = {
    "pdf": "application/pdf",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "tif": "image/tiff",
    "tiff": "image/tiff",
    "svg": "image/svg+xml",
    "mp4": "video/mp4",
    "json": "application/json",
    "zip": "application/zip",
}


def content_types_for(formats: Iterable[str]) -> dict[str, str]:
    """The content types of ``formats`` (each must be in :data:`CONTENT_TYPES`)."""
    return {fmt: CONTENT_TYPES[fmt] for fmt in formats}
