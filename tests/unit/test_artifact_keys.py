"""Artifact keys: hostile ids and file names always give five safe segments under orders/."""

from __future__ import annotations

import unicodedata

import pytest

from printflow.domain.object_keys import (
    FALLBACK_FILENAME,
    MAX_SEGMENT_BYTES,
    artifact_key,
    manifest_key,
    safe_filename,
    safe_id,
    unique_filenames,
)


def assert_safe_key(key: str) -> list[str]:
    """Five non-empty segments under ``orders/``, none of which can escape or nest."""
    segments = key.split("/")
    assert len(segments) == 5, key
    assert segments[0] == "orders"
    assert len(key.encode()) <= 1024
    for segment in segments[1:]:
        assert segment, key
        assert segment not in (".", "..")
        assert not segment.startswith((".", " ")), segment
        assert not segment.endswith((".", " ")), segment
        assert "\\" not in segment and ":" not in segment
        assert len(segment.encode()) <= MAX_SEGMENT_BYTES
        assert all(unicodedata.category(c) not in ("Cc", "Cf", "Cs") for c in segment)
        assert unicodedata.is_normalized("NFC", segment)
    assert ".." not in key.split("/")
    return segments


def test_plain_names_are_kept() -> None:
    assert artifact_key("shop-1", "1001", "job-7", "Poster A3.pdf") == (
        "orders/shop-1/1001/job-7/Poster A3.pdf"
    )
    assert manifest_key("shop-1", "1001") == "orders/shop-1/1001/manifest.json"


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("../", "_"),
        ("../../etc/passwd", "_.._etc_passwd"),
        ("..\\..\\windows\\win.ini", "_.._windows_win.ini"),
        ("/etc/passwd", "_etc_passwd"),
        ("C:\\x", "C__x"),
        ("C:/Windows/system32", "C__Windows_system32"),
        ("a\x00b.pdf", "ab.pdf"),
        ("line1\r\nline2.pdf", "line1 line2.pdf"),
        ("del\x7f.pdf", "del.pdf"),
        ("\x1b[31mred.pdf", "[31mred.pdf"),
        ("invoice\u202efdp.exe", "invoicefdp.exe"),  # RTL override: no spoofed extension
        ("zero\u200bwidth.pdf", "zerowidth.pdf"),
        ("", FALLBACK_FILENAME),
        (".", FALLBACK_FILENAME),
        ("..", FALLBACK_FILENAME),
        ("....", FALLBACK_FILENAME),
        ("   ", FALLBACK_FILENAME),
        (".hidden.pdf", "hidden.pdf"),
        (" . .pdf", "pdf"),
        ("trailing. . ", "trailing"),
        ("CON.pdf", "_CON.pdf"),
        ("nul", "_nul"),
        ('a<b>c:d"e|f?g*h.pdf', "a_b_c_d_e_f_g_h.pdf"),
        ("tab\there.pdf", "tab here.pdf"),
        ("\ud800lone.pdf", "lone.pdf"),
    ],
)
def test_hostile_filenames(filename: str, expected: str) -> None:
    # Given a file name chosen by someone else, when it becomes a key
    key = artifact_key("shop", "1001", "job", filename)
    # Then the key stays in the job's folder and the name is the safe form
    segments = assert_safe_key(key)
    assert segments[4] == expected
    assert segments[:4] == ["orders", "shop", "1001", "job"]


@pytest.mark.parametrize(
    "value",
    ["../", "..\\", "/etc/passwd", "C:\\x", "a/b", "\x00", "\r\n", "\x7f", "\u202e", "", "..."],
)
def test_hostile_ids_stay_one_segment(value: str) -> None:
    key = artifact_key(value, value, value, value)
    segments = assert_safe_key(key)
    assert manifest_key(value, value).split("/")[1:3] == segments[1:3]


def test_changed_ids_do_not_collide() -> None:
    # "a/b" and "a_b" would both become "a_b": the changed one carries a hash of the original.
    assert safe_id("a_b") == "a_b"
    assert safe_id("a/b") != "a_b"
    assert safe_id("a/b").startswith("a_b~")
    assert safe_id("a\\b") != safe_id("a/b")
    assert safe_id("") != safe_id(".")


def test_safe_forms_are_idempotent() -> None:
    for value in ("a/b", "../..", "x" * 400, "é" * 200, "", "CON"):
        assert safe_filename(safe_filename(value)) == safe_filename(value)
    for value in ("1001", "GEN-2026-000123", "Zoë", "a_b"):
        assert safe_id(safe_id(value)) == safe_id(value) == value


def test_an_id_cannot_imitate_another_ids_changed_form() -> None:
    # "a/b" becomes "a_b~<hash>"; a shop sending that very string must get another segment.
    changed = safe_id("a/b")
    assert "~" in changed
    assert safe_id(changed) != changed
    assert safe_id("x~1") != "x~1"


HOSTILE_IDS = [
    "..",
    ".",
    "/",
    "a/b",
    "a_b",
    "a\\b",
    "a\b",
    "../../etc",
    "x" * 5000,
    "x" * 149,
    "x" * 151,
    "é",
    unicodedata.normalize("NFD", "é") + "x",
    "CON",
    "con",
    "a~b",
    "a_b~0123456789abcdef",
    "\u202efdp.exe",
    " a",
    "a ",
    "a.",
    "",
    "1001",
    "\u0661\u0660\u0660\u0661",
    "\uff21",
    "A",
]


def test_safe_id_is_injective_over_hostile_ids() -> None:
    # NFC-equal ids are the same id; any other two must never share a segment.
    distinct = {unicodedata.normalize("NFC", v) for v in HOSTILE_IDS}
    segments = {safe_id(v) for v in distinct}
    assert len(segments) == len(distinct)
    for segment in segments:
        assert "/" not in segment and not segment.startswith(".") and segment
        assert len(segment.encode()) <= 150


def test_long_names_are_bounded_and_keep_their_extension() -> None:
    name = "x" * 1000 + ".pdf"
    safe = safe_filename(name)
    assert safe.endswith(".pdf")
    assert len(safe.encode()) == MAX_SEGMENT_BYTES

    multibyte = "日本語" * 200 + ".tiff"
    safe = safe_filename(multibyte)
    assert safe.endswith(".tiff")
    assert len(safe.encode()) <= MAX_SEGMENT_BYTES
    safe.encode().decode("utf-8")  # cut on a code point boundary

    # An "extension" that is really a long dotted tail is not kept at the stem's expense.
    dotted = "report." + "y" * 500
    assert len(safe_filename(dotted).encode()) <= MAX_SEGMENT_BYTES

    key = artifact_key("s" * 2000, "o" * 2000, "j" * 2000, name)
    assert_safe_key(key)
    assert len(key.encode()) < 1024


def test_nfd_and_nfc_give_the_same_key() -> None:
    nfc = unicodedata.normalize("NFC", "Café Übersicht.pdf")
    nfd = unicodedata.normalize("NFD", "Café Übersicht.pdf")
    assert nfc != nfd
    assert artifact_key("s", "o", "j", nfd) == artifact_key("s", "o", "j", nfc)
    assert artifact_key("s", "o", "j", nfd).endswith("/Café Übersicht.pdf")
    assert safe_id(unicodedata.normalize("NFD", "Zoë")) == safe_id("Zoë") == "Zoë"


def test_keys_are_deterministic() -> None:
    args = ("shop/1", "ord\x00er", "job", "../x.pdf")
    assert artifact_key(*args) == artifact_key(*args)


# -- unique names within a job ------------------------------------------------------------------


def test_unique_filenames_numbers_duplicates() -> None:
    assert unique_filenames(["a.pdf", "a.pdf", "a.pdf"]) == ["a.pdf", "a-2.pdf", "a-3.pdf"]


def test_unique_filenames_ignores_case() -> None:
    assert unique_filenames(["a.pdf", "A.PDF", "b.png"]) == ["a.pdf", "A-2.PDF", "b.png"]


def test_unique_filenames_keeps_real_names() -> None:
    # A file really called a-2.pdf keeps its name; the duplicate moves on to a-3.
    assert unique_filenames(["a.pdf", "a.pdf", "a-2.pdf"]) == ["a.pdf", "a-3.pdf", "a-2.pdf"]


def test_unique_filenames_after_sanitising() -> None:
    # Different raw names that become the same safe name are told apart too.
    names = unique_filenames(["a/b.pdf", "a\\b.pdf", "a:b.pdf", "", ".."])
    assert names == ["a_b.pdf", "a_b-2.pdf", "a_b-3.pdf", "artifact", "artifact-2"]
    assert len({n.casefold() for n in names}) == len(names)
    for name in names:
        assert_safe_key(artifact_key("s", "o", "j", name))
        assert artifact_key("s", "o", "j", name).endswith("/" + name)


def test_unique_filenames_stay_within_the_length_bound() -> None:
    long = "x" * 400 + ".pdf"
    names = unique_filenames([long] * 12)
    assert len({n.casefold() for n in names}) == 12
    assert all(len(n.encode()) <= MAX_SEGMENT_BYTES and n.endswith(".pdf") for n in names)
    assert names[11].endswith("-12.pdf")


def test_unique_filenames_nfc_and_nfd_collide() -> None:
    nfc = unicodedata.normalize("NFC", "é.pdf")
    nfd = unicodedata.normalize("NFD", "é.pdf")
    assert unique_filenames([nfc, nfd]) == [nfc, unicodedata.normalize("NFC", "é-2.pdf")]
