"""Finding the infotext inside image bytes, without decoding a single pixel.

Where the WebUI family stores it (A1111's ``images.read_info_from_image`` reads the same places):

- PNG: a text chunk with the key ``parameters`` (``tEXt``; ``iTXt`` when the text is not latin-1;
  ``zTXt`` if compressed). A1111, Forge, SD.Next in PNG mode and stable-diffusion.cpp all write it;
- JPEG and WebP: the EXIF ``UserComment`` tag, ``UNICODE`` + UTF-16 (A1111 writes big-endian through
  piexif; SD.Next's real JPEGs carry little-endian, so the byte order is detected);
- a JPEG/GIF comment, as a last resort.

The container is walked chunk by chunk over bytes already in memory: cost is linear in the number of
chunks, text is bounded (:data:`MAX_TEXT_BYTES`, compressed text inflated at most that far), and a
damaged or truncated file just yields ``None``. Pillow is used only to read an EXIF block's tags.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from sdwebui.images import sniff_image_type

MAX_TEXT_BYTES = 1024 * 1024
PARAMETERS_KEY = b"parameters"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_EXIF_IFD = 0x8769
_USER_COMMENT = 0x9286


@dataclass(frozen=True)
class EmbeddedText:
    text: str
    where: str  # "PNG text chunk", "EXIF UserComment" or "image comment", for the result and the logs


def read_embedded_text(data: bytes) -> EmbeddedText | None:
    """The infotext stored in PNG/JPEG/WebP bytes, or ``None`` when there is none (or no such format)."""
    reader = _READERS.get((sniff_image_type(data) or ("", ""))[1])
    return reader(data) if reader else None


# ---------------------------------------------------------------------------- PNG

_PNG_WANTED = {b"tEXt", b"zTXt", b"iTXt", b"eXIf"}


def _png_chunks(data: bytes):
    """``(kind, body)`` of the metadata chunks; pixel chunks are skipped without being copied."""
    position = len(_PNG_SIGNATURE)
    while position + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, position)
        start = position + 8
        if start + length > len(data) or kind == b"IEND":
            return  # the end, or a truncated file
        if kind in _PNG_WANTED:
            yield kind, data[start : start + length]
        position = start + length + 4  # skip the CRC


def _from_png(data: bytes) -> EmbeddedText | None:
    exif = None
    for kind, body in _png_chunks(data):
        text = None
        if kind == b"tEXt":
            key, _, value = body.partition(b"\0")
            text = value[:MAX_TEXT_BYTES].decode("latin-1") if key == PARAMETERS_KEY else None
        elif kind == b"zTXt":
            key, _, rest = body.partition(b"\0")
            text = _inflate(rest[1:]).decode("latin-1") if key == PARAMETERS_KEY and rest[:1] == b"\0" else None
        elif kind == b"iTXt":
            text = _itxt(body)
        elif kind == b"eXIf":
            exif = body
        if text:
            return EmbeddedText(text, "PNG text chunk")
    comment = _exif_user_comment(exif) if exif else None
    return EmbeddedText(comment, "EXIF UserComment") if comment else None


def _itxt(body: bytes) -> str | None:
    key, _, rest = body.partition(b"\0")
    if key != PARAMETERS_KEY or len(rest) < 2:
        return None
    compressed, method, rest = rest[0], rest[1], rest[2:]
    _language, _, rest = rest.partition(b"\0")
    _translated, _, value = rest.partition(b"\0")
    if compressed:
        if method != 0:
            return None
        value = _inflate(value)
    return value[:MAX_TEXT_BYTES].decode("utf-8", errors="replace")


def _inflate(data: bytes) -> bytes:
    """zlib-decompress at most MAX_TEXT_BYTES (a zip bomb stops there)."""
    try:
        return zlib.decompressobj().decompress(data, MAX_TEXT_BYTES)
    except zlib.error:
        return b""


# ---------------------------------------------------------------------------- JPEG, WebP

def _from_jpeg(data: bytes) -> EmbeddedText | None:
    position, comment = 2, None
    while position + 4 <= len(data) and data[position] == 0xFF:
        marker = data[position + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length field
            position += 2
            continue
        if marker == 0xDA:  # start of scan: the pixels follow, no metadata after this
            break
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        segment = data[position + 4 : position + 2 + length]
        if marker == 0xE1 and segment.startswith(b"Exif\0\0"):
            text = _exif_user_comment(segment)
            if text:
                return EmbeddedText(text, "EXIF UserComment")
        elif marker == 0xFE and comment is None:
            comment = segment[:MAX_TEXT_BYTES].decode("utf-8", errors="replace").strip("\0 \n")
        position += 2 + length
    return EmbeddedText(comment, "image comment") if comment else None


def _from_webp(data: bytes) -> EmbeddedText | None:
    position = 12
    while position + 8 <= len(data):
        kind = data[position : position + 4]
        (length,) = struct.unpack("<I", data[position + 4 : position + 8])
        body = data[position + 8 : position + 8 + length]
        if kind == b"EXIF":
            text = _exif_user_comment(body)
            return EmbeddedText(text, "EXIF UserComment") if text else None
        position += 8 + length + (length & 1)  # chunks are padded to an even size
    return None


# ---------------------------------------------------------------------------- EXIF UserComment

def _exif_user_comment(exif: bytes) -> str | None:
    from PIL import Image

    try:
        tags = Image.Exif()
        tags.load(exif if exif.startswith(b"Exif\0\0") else b"Exif\0\0" + exif)
        raw = tags.get_ifd(_EXIF_IFD).get(_USER_COMMENT)
    except Exception:  # a damaged EXIF block is simply no text; Pillow raises many kinds here
        return None
    text = decode_user_comment(raw) if raw else ""
    return text or None


def decode_user_comment(raw: bytes | str) -> str:
    """EXIF UserComment: an 8-byte character code, then the text."""
    if isinstance(raw, str):
        return raw.strip("\0")
    head, body = raw[:8], raw[8:MAX_TEXT_BYTES]
    if head == b"UNICODE\0":
        text = _utf16(body)
    elif head in (b"ASCII\0\0\0", b"\0" * 8):
        text = body.decode("utf-8", errors="replace")
    else:  # no character code: what A1111 falls back to
        text = raw[:MAX_TEXT_BYTES].decode("utf-8", errors="ignore")
    return text.strip("\0")


def _utf16(body: bytes) -> str:
    if body[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return body.decode("utf-16", errors="replace")
    # Mostly-ASCII text has a zero in every other byte: before the letter in big-endian, after it in little-endian.
    big_endian = body[0::2].count(0) >= body[1::2].count(0)
    return body[: len(body) & ~1].decode("utf-16-be" if big_endian else "utf-16-le", errors="replace")


# The formats that carry an infotext, by the extension :func:`sdwebui.images.sniff_image_type` gives them.
_READERS = {"png": _from_png, "jpg": _from_jpeg, "webp": _from_webp}
