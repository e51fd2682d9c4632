"""Predictable, safe S3 keys (and key segments) built from shop- and provider-supplied values.

``orders/{storefrontId}/{orderId}/{jobId}/{filename}``, and the order's
``orders/{storefrontId}/{orderId}/manifest.json``.

Every segment comes from outside (a provider names the files, a storefront the order), and
the keys outlive S3: consumers sync them to Windows and macOS file systems, unzip them, print
them. So each segment is made safe, deterministically (a retry writes the same key):

- Unicode NFC, so the same visible name (``é`` typed or decomposed) is one key;
- control and format characters removed (NUL, CR/LF, DEL, the right-to-left override that
  makes ``fdp.exe`` look like ``exe.pdf``), other whitespace becomes a plain space;
- ``/`` and ``\\`` replaced, with the other characters Windows forbids (``<>:"|?*``; ``:``
  also means a drive letter or an NTFS stream), so a segment can never nest or escape;
- no leading dots or spaces (no ``.``/``..``, no hidden files), no trailing ones (Windows
  drops them), no reserved device names (``CON``, ``NUL``, ``COM1``…);
- bounded to :data:`MAX_SEGMENT_BYTES` of UTF-8, the extension kept, so a key stays far
  below S3's 1,024 bytes;
- empty (or nothing left) becomes a fallback name.

An identifier that had to be changed (beyond NFC) also gets ``~`` and a hash of its original,
so two different order ids never share a folder (``a/b`` and ``a_b`` stay apart). An id that
holds ``~`` itself always counts as changed, so no shop can send an id that reads like
another id's changed form: :func:`safe_id` is injective (up to a 64-bit hash collision). File
names are not: collisions within a job are resolved by :func:`unique_filenames`, readable.

Every key built from an order id goes through :func:`safe_id`: artifacts and manifests here,
raw webhook bodies and large order documents (:mod:`printflow.adapters.raw_bodies`).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable

PREFIX = "orders"
MANIFEST_NAME = "manifest.json"
FALLBACK_FILENAME = "artifact"
FALLBACK_ID = "unnamed"
MAX_SEGMENT_BYTES = 150
# Marks a changed identifier; kept ids never contain it, so no kept id reads like a changed one.
_HASH_MARK = "~"
ID_HASH_CHARS = 16
# Longer "extensions" are just a dot inside a name; don't spend the length budget keeping them.
MAX_EXTENSION_CHARS = 16

# "/" and "\" nest or escape; the rest are forbidden on Windows.
_REPLACED = re.compile(r'[/\\<>:"|?*]')
_SPACES = re.compile(r" {2,}")
_EXTENSION = re.compile(r"^\.[^.\s]+$")
_WINDOWS_DEVICES = frozenset(
    {"con", "prn", "aux", "nul", "conin$", "conout$"}
    | {f"{stem}{n}" for stem in ("com", "lpt") for n in (*"123456789", "¹", "²", "³")}
)
# Cc: C0/C1 controls and DEL; Cf: format (bidi overrides, zero-width, BOM); Cs: lone
# surrogates (not encodable as UTF-8, boto3 would fail on them); Co: private use.
_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co"})


def artifact_key(storefront_id: str, order_id: str, job_id: str, filename: str) -> str:
    """``orders/{storefrontId}/{orderId}/{jobId}/{filename}`` with every segment made safe.

    Pass a name from :func:`unique_filenames` when a job has several files; the name is
    made safe again here (a no-op for such names), so any input gives a safe key.
    """
    return "/".join(
        (
            PREFIX,
            safe_id(storefront_id),
            safe_id(order_id),
            safe_id(job_id),
            safe_filename(filename),
        )
    )


def manifest_key(storefront_id: str, order_id: str) -> str:
    """``orders/{storefrontId}/{orderId}/manifest.json``: written last, after every artifact."""
    return "/".join((PREFIX, safe_id(storefront_id), safe_id(order_id), MANIFEST_NAME))


def safe_filename(name: str) -> str:
    """``name`` as one safe key segment and file name, its extension kept when truncated."""
    return _bounded(_clean(name), MAX_SEGMENT_BYTES) or FALLBACK_FILENAME


def safe_id(value: str) -> str:
    """An identifier as one safe key segment; a changed identifier keeps a hash of the original.

    Injective: two different identifiers never give the same segment. A safe identifier
    without ``~`` comes back as is.
    """
    # NFC is not a change: the same visible id in either form is the same id.
    original = unicodedata.normalize("NFC", value)
    cleaned = _clean(original).replace(_HASH_MARK, "_")
    if original and cleaned == original and len(original.encode()) <= MAX_SEGMENT_BYTES:
        return original
    digest = hashlib.sha256(original.encode("utf-8", "surrogatepass")).hexdigest()
    suffix = _HASH_MARK + digest[:ID_HASH_CHARS]
    stem = _truncate(cleaned, MAX_SEGMENT_BYTES - len(suffix)).rstrip(". ")
    return (stem or FALLBACK_ID) + suffix


def unique_filenames(names: Iterable[str]) -> list[str]:
    """Safe names for one job's files, unique ignoring case: ``a.pdf``, ``a-2.pdf``, ``a-3.pdf``.

    Case-insensitive because consumers unpack the files on case-insensitive file systems,
    where ``A.pdf`` would overwrite ``a.pdf``. Names that are already unique keep their name
    (a real ``a-2.pdf`` is not renamed because of two ``a.pdf``); the first of several equal
    names keeps it, the others get the lowest free ``-N``. The order of ``names`` is kept, and
    the result is deterministic for a given order.
    """
    safe = [safe_filename(name) for name in names]
    taken: set[str] = set()
    first: list[bool] = []
    for name in safe:
        folded = _fold(name)
        first.append(folded not in taken)
        taken.add(folded)

    result: list[str] = []
    for name, keeps_name in zip(safe, first, strict=True):
        if keeps_name:
            result.append(name)
            continue
        stem, extension = _split_extension(name)
        number = 2
        while True:
            suffix = f"-{number}{extension}"
            candidate = _truncate(stem, MAX_SEGMENT_BYTES - len(suffix.encode())) + suffix
            if _fold(candidate) not in taken:
                break
            number += 1
        taken.add(_fold(candidate))
        result.append(candidate)
    return result


# -- internals --------------------------------------------------------------------------------


def _clean(value: str) -> str:
    """NFC, controls dropped, separators replaced, no leading/trailing dots or spaces."""
    text = unicodedata.normalize("NFC", value)
    kept: list[str] = []
    for char in text:
        category = unicodedata.category(char)
        if category in _DROPPED_CATEGORIES:
            # Tab, CR and LF separate words: a space keeps them apart.
            if char in "\t\r\n\v\f":
                kept.append(" ")
            continue
        kept.append(" " if category.startswith("Z") else char)
    text = _REPLACED.sub("_", "".join(kept))
    text = _SPACES.sub(" ", text).strip(". ")
    stem = text.split(".", 1)[0].rstrip(" ").casefold()
    if stem in _WINDOWS_DEVICES:
        text = "_" + text
    return text


def _bounded(name: str, max_bytes: int) -> str:
    """``name`` cut to ``max_bytes`` of UTF-8, keeping a (short) extension."""
    if len(name.encode()) <= max_bytes:
        return name
    stem, extension = _split_extension(name)
    stem = _truncate(stem, max_bytes - len(extension.encode())).rstrip(". ")
    # A truncated stem may end in a space or dot: a Windows consumer would drop those.
    return stem + extension if stem else _truncate(name, max_bytes).rstrip(". ")


def _split_extension(name: str) -> tuple[str, str]:
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem or len(extension) > MAX_EXTENSION_CHARS:
        return name, ""
    if not _EXTENSION.match(dot + extension):
        return name, ""
    return stem, dot + extension


def _truncate(text: str, max_bytes: int) -> str:
    """The longest prefix of ``text`` within ``max_bytes`` of UTF-8 (whole code points)."""
    encoded = text.encode()
    if len(encoded) <= max_bytes:
        return text
    return encoded[: max(max_bytes, 0)].decode("utf-8", "ignore")


def _fold(name: str) -> str:
    return unicodedata.normalize("NFC", name.casefold())
