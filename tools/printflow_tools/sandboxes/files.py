"""Real, deterministic PDF and PNG files of any size, streamed without building them in memory.

A file is a list of segments: short literal byte strings (headers, tables, CRCs) and long
runs of one repeated 64 KiB block. Only the block lives in memory, so a 1 GiB "render" costs
64 KiB and streams as fast as the socket takes it.

- PDF: a one-page document (catalog, page tree, page, text content, font) followed by an
  unreferenced padding stream; the cross-reference table gives every object's true offset.
  The page shows ``lines``: what the sandbox was sent (template, variables, line item), so
  whoever opens the file sees the shop's data reached it.
- PNG: signature, ``IHDR``, a ``tEXt`` comment, one ``iTXt`` (UTF-8) chunk per line, a 16x16
  ``IDAT`` image, private ancillary ``pfPd`` padding chunks (decoders skip unknown ancillary
  chunks) and ``IEND``.
- other formats (jpg, gif, mp4): the content type is right but the bytes are filler.

When ``size`` is smaller than the smallest valid file, the file is that smallest size:
``GeneratedFile.size`` is always the true length.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from printflow.providers.content_types import CONTENT_TYPES

BLOCK_SIZE = 64 * 1024
# What a page shows at most: lines of an A4 page at 11 pt, characters of one line.
MAX_LINES = 46
MAX_LINE_LENGTH = 90
# PNG chunk type: ancillary (p), private (f), reserved bit clear (P), safe to copy (d).
PNG_PADDING_CHUNK = b"pfPd"
PNG_MAX_PADDING_DATA = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Repeat:
    """``length`` bytes of ``block`` repeated (and cut at the end)."""

    block: bytes
    length: int


Segment = bytes | Repeat


@dataclass(frozen=True, slots=True)
class GeneratedFile:
    content_type: str
    segments: tuple[Segment, ...]

    @property
    def size(self) -> int:
        return sum(len(s) if isinstance(s, bytes) else s.length for s in self.segments)

    def chunks(self) -> Iterator[bytes]:
        """The file's bytes in chunks of at most ``BLOCK_SIZE``."""
        for segment in self.segments:
            if isinstance(segment, bytes):
                yield segment
                continue
            view = memoryview(segment.block)
            remaining = segment.length
            while remaining > 0:
                take = min(remaining, len(view))
                yield bytes(view[:take]) if take < len(view) else segment.block
                remaining -= take

    def read(self) -> bytes:
        """All bytes at once: for small files in tests only."""
        return b"".join(self.chunks())


def filler_block(label: str) -> bytes:
    """A deterministic, incompressible-looking 64 KiB block derived from ``label``."""
    seed = hashlib.sha256(label.encode()).digest()
    parts = [hashlib.sha256(seed + i.to_bytes(4, "big")).digest() for i in range(BLOCK_SIZE // 32)]
    return b"".join(parts)


def generated_file(
    fmt: str,
    size: int,
    label: str,
    content_type: str | None = None,
    lines: Sequence[str] = (),
) -> GeneratedFile:
    """A file of ``fmt`` (pdf, png, anything else as filler) that is ``size`` bytes long.

    ``lines`` is the render's content (shown on the PDF page, carried as PNG text chunks).
    """
    fmt = fmt.lower()
    if fmt == "pdf":
        file = pdf_file(size, label, lines)
    elif fmt == "png":
        file = png_file(size, label, lines)
    else:
        file = GeneratedFile(
            CONTENT_TYPES.get(fmt, "application/octet-stream"),
            (Repeat(filler_block(label), max(size, 0)),),
        )
    if content_type:
        return GeneratedFile(content_type, file.segments)
    return file


# -- PDF -----------------------------------------------------------------------------------


def _pdf_string(text: str) -> bytes:
    """``text`` as a PDF literal string in WinAnsi (the font's encoding), escaped."""
    cleaned = "".join(c if c.isprintable() else " " for c in text)[:MAX_LINE_LENGTH]
    raw = cleaned.encode("cp1252", errors="replace")
    escaped = raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
    return b"(" + escaped + b")"


def page_lines(lines: Sequence[str]) -> list[str]:
    """The lines a page can show: at most :data:`MAX_LINES`, the last saying what was cut."""
    shown = [line for line in lines][:MAX_LINES]
    if len(lines) > MAX_LINES:
        shown[-1] = f"... and {len(lines) - MAX_LINES + 1} more lines"
    return shown


def pdf_file(size: int, label: str, lines: Sequence[str] = ()) -> GeneratedFile:
    """A valid one-page PDF of exactly ``size`` bytes (or the minimum, when larger)."""
    content = (
        b"BT /F1 24 Tf 72 770 Td (PrintFlow sandbox render) Tj "
        b"0 -24 Td /F1 10 Tf " + _pdf_string(label) + b" Tj /F1 11 Tf 14 TL T*"
    )
    for line in page_lines(lines):
        content += b" T* " + _pdf_string(line) + b" Tj"
    content += b" ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    prefix = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(prefix))
        prefix += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    padding_offset = len(prefix)
    offsets.append(padding_offset)
    count = len(offsets) + 1

    # The padding stream's /Length is written with fixed width (spaces are legal in a
    # dictionary), so only the startxref number's digits depend on the padding length.
    def padding_head(length: int) -> bytes:
        return b"%d 0 obj\n<< /Length %-14d >>\nstream\n" % (count - 1, length)

    padding_tail = b"\nendstream\nendobj\n"
    xref = b"xref\n0 %d\n0000000000 65535 f \n" % count + b"".join(
        b"%010d 00000 n \n" % offset for offset in offsets
    )

    def trailer(extra: int, xref_offset: int) -> bytes:
        # ``extra`` spaces inside the dictionary absorb the one-byte gap where the
        # startxref number gains a digit.
        return (
            b"trailer\n<< /Size %d /Root 1 0 R " % count
            + b" " * extra
            + b">>\nstartxref\n%d\n%%%%EOF\n" % xref_offset
        )

    fixed = len(prefix) + len(padding_head(0)) + len(padding_tail) + len(xref)
    length = 0
    for extra in (0, 1):
        for digits in range(1, 16):
            candidate = size - fixed - len(trailer(extra, 0)) + 1 - digits
            if candidate < 0:
                continue
            xref_offset = fixed - len(xref) + candidate
            if len(str(xref_offset)) == digits:
                length, chosen_extra = candidate, extra
                break
        else:
            continue
        break
    else:
        length, chosen_extra = 0, 0
    xref_offset = fixed - len(xref) + length
    return GeneratedFile(
        "application/pdf",
        (
            bytes(prefix),
            padding_head(length),
            Repeat(filler_block(label), length),
            padding_tail,
            xref,
            trailer(chosen_extra, xref_offset),
        ),
    )


# -- PNG -----------------------------------------------------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(data, zlib.crc32(kind))
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _repeated_crc(kind: bytes, block: bytes, length: int) -> int:
    crc = zlib.crc32(kind)
    full, rest = divmod(length, len(block))
    for _ in range(full):
        crc = zlib.crc32(block, crc)
    return zlib.crc32(block[:rest], crc)


def _png_image(label: str, width: int = 16, height: int = 16) -> bytes:
    """A small RGB gradient tinted by ``label`` (filter byte 0 on every row)."""
    tint = hashlib.sha256(label.encode()).digest()[0]
    rows = bytearray()
    for y in range(height):
        rows.append(0)
        for x in range(width):
            rows += bytes((x * 16 % 256, y * 16 % 256, tint))
    return zlib.compress(bytes(rows), 9)


def _png_text(line: str) -> bytes:
    """An ``iTXt`` chunk (UTF-8, uncompressed) with keyword ``Description``."""
    text = "".join(c if c.isprintable() else " " for c in line)[:MAX_LINE_LENGTH]
    return _png_chunk(b"iTXt", b"Description\x00\x00\x00\x00\x00" + text.encode())


def png_file(size: int, label: str, lines: Sequence[str] = ()) -> GeneratedFile:
    """A valid 16x16 PNG of exactly ``size`` bytes (or the minimum, when larger)."""
    header = b"\x89PNG\r\n\x1a\n" + _png_chunk(
        b"IHDR", struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0)
    )
    header += b"".join(_png_text(line) for line in page_lines(lines))
    comment = b"Comment\x00PrintFlow sandbox render " + label.encode("latin-1", "replace")[:80]
    image = _png_chunk(b"IDAT", _png_image(label))
    end = _png_chunk(b"IEND", b"")
    base = len(header) + len(_png_chunk(b"tEXt", comment)) + len(image) + len(end)

    padding = max(size - base, 0)
    chunk_total = PNG_MAX_PADDING_DATA + 12
    full, rest = divmod(padding, chunk_total)
    last_data = rest - 12 if rest >= 12 else None
    # Fewer than 12 bytes cannot form a chunk: they lengthen the comment instead.
    comment += b" " * (rest if last_data is None else 0)

    block = filler_block(label)
    segments: list[Segment] = [header, _png_chunk(b"tEXt", comment), image]
    if full:
        crc = struct.pack(">I", _repeated_crc(PNG_PADDING_CHUNK, block, PNG_MAX_PADDING_DATA))
        head = struct.pack(">I", PNG_MAX_PADDING_DATA) + PNG_PADDING_CHUNK
        for _ in range(full):
            segments += [head, Repeat(block, PNG_MAX_PADDING_DATA), crc]
    if last_data is not None:
        crc = struct.pack(">I", _repeated_crc(PNG_PADDING_CHUNK, block, last_data))
        segments += [
            struct.pack(">I", last_data) + PNG_PADDING_CHUNK,
            Repeat(block, last_data),
            crc,
        ]
    segments.append(end)
    return GeneratedFile("image/png", tuple(segments))
