"""The files domain: tus metadata and checksums, ranges, safe file names, signed links."""

from __future__ import annotations

import base64
import hashlib
from uuid import UUID, uuid4

import pytest

from chat4all.domain.errors import InvalidInput, RangeNotSatisfiable
from chat4all.domain.files import (
    ByteRange,
    content_disposition,
    parse_checksum,
    parse_range,
    parse_upload_metadata,
    sign_download,
    signature_valid,
)

CONVERSATION = UUID("8e03c1a0-3b8e-4c2e-9f57-2b6f0f3a9d11")  # fixed: test ids must not vary


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_upload_metadata() -> None:
    conversation = uuid4()
    meta = parse_upload_metadata(
        f"filename {b64('relatório.pdf')},filetype {b64('application/pdf')},"
        f"conversation_id {b64(str(conversation))},is_confidential"
    )
    assert (meta.filename, meta.mime_type, meta.conversation_id) == (
        "relatório.pdf",
        "application/pdf",
        conversation,
    )
    assert meta.extra == {"is_confidential": ""}
    plain = parse_upload_metadata(f"filename {b64('a')},conversation_id {b64(str(conversation))}")
    assert plain.mime_type == "application/octet-stream"


@pytest.mark.parametrize(
    ("header", "complaint"),
    [
        (None, "filename"),
        (f"filename {b64('a')}", "conversation_id"),
        (f"filename {b64('a')},conversation_id {b64('not-a-uuid')}", "conversation_id"),
        ("filename !!!", "base64"),
        (f"filename {b64('a')},filename {b64('b')}", "repeats"),
        ("filename " + b64("a\nb") + f",conversation_id {b64(str(CONVERSATION))}", "control"),
        (
            f"filename {b64('a')},conversation_id {b64(str(CONVERSATION))},filetype {b64('<x>')}",
            "type",
        ),
    ],
    ids=[
        "none",
        "no-conversation",
        "bad-conversation",
        "not-base64",
        "repeated",
        "control",
        "type",
    ],
)
def test_bad_upload_metadata(header: str | None, complaint: str) -> None:
    with pytest.raises(InvalidInput, match=complaint):
        parse_upload_metadata(header)


def test_checksums() -> None:
    digest = hashlib.sha1(b"x").digest()
    assert parse_checksum(f"sha1 {base64.b64encode(digest).decode()}") == ("sha1", digest)
    with pytest.raises(InvalidInput, match="md5"):
        parse_checksum("md5 AAAA")
    with pytest.raises(InvalidInput, match="length"):
        parse_checksum(f"sha256 {base64.b64encode(digest).decode()}")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-9", ByteRange(0, 9)),
        ("bytes=90-", ByteRange(90, 99)),
        ("bytes=-10", ByteRange(90, 99)),
        ("bytes=-1000", ByteRange(0, 99)),
        ("bytes=95-1000", ByteRange(95, 99)),
        ("bytes=0-1,5-6", None),  # several ranges: the whole file
        ("items=0-1", None),
        ("bytes=5-2", None),
        ("bytes=²-3", None),
        ("bytes=" + "9" * 40 + "-", None),
    ],
)
def test_ranges(header: str | None, expected: ByteRange | None) -> None:
    assert parse_range(header, 100) == expected


def test_ranges_outside_the_file() -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=100-", 100)
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=-0", 100)


def test_content_disposition_cannot_be_broken_out_of() -> None:
    header = content_disposition('evil"; filename="x.exe\r\nSet-Cookie: a=b.txt')
    assert "\r" not in header and "\n" not in header
    assert header.startswith('attachment; filename="evil_; filename=_x.exe__Set-Cookie: a=b.txt"')
    assert header.endswith(
        "filename*=UTF-8''evil%22%3B%20filename%3D%22x.exe%0D%0ASet-Cookie%3A%20a%3Db.txt"
    )


def test_signed_links() -> None:
    secret, file_id = b"k" * 32, uuid4()
    signature = sign_download(secret, file_id, 1000)
    assert signature_valid(secret, file_id, 1000, signature)
    assert not signature_valid(secret, file_id, 1001, signature)
    assert not signature_valid(secret, uuid4(), 1000, signature)
    assert not signature_valid(b"j" * 32, file_id, 1000, signature)
    tampered = ("B" if signature[0] == "A" else "A") + signature[1:]
    assert not signature_valid(secret, file_id, 1000, tampered)
    assert not signature_valid(secret, file_id, 1000, "é" + signature[1:])  # found by the fuzzer
