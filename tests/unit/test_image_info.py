"""Reading the infotext out of image bytes: the real images Forge, sd.cpp and SD.Next returned, and odd files."""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from sdwebui.image_info import MAX_TEXT_BYTES, decode_user_comment, read_embedded_text
from tests.fixtures.load import FIXTURES_DIR


def _recorded_images() -> list[tuple[str, bytes, str]]:
    """(fixture, image bytes, the infotext the server reported for it) for every full recorded generation."""
    found = []
    for path in sorted(Path(FIXTURES_DIR).glob("*/post_*.json")):
        if path.stem.endswith("_short"):
            continue
        body = json.loads(path.read_text(encoding="utf-8"))["response"].get("json")
        if not (isinstance(body, dict) and isinstance(body.get("info"), str) and body.get("images")):
            continue
        info = json.loads(body["info"])
        if info.get("infotexts") and len(body["images"][0]) > 100:
            first = info.get("index_of_first_image", 0)
            found.append((f"{path.parent.name}/{path.stem}", base64.b64decode(body["images"][first]), info["infotexts"][0]))
    return found


RECORDED = _recorded_images()


def test_recordings_hold_png_and_jpeg():
    kinds = {data[:3] for _, data, _ in RECORDED}
    assert kinds == {b"\x89PN", b"\xff\xd8\xff"}  # Forge, A1111 and sd.cpp: PNG; SD.Next: JPEG
    assert {name.split("/")[0] for name, _, _ in RECORDED} == {"forge", "a1111", "sdcpp", "sdnext"}


@pytest.mark.parametrize(("name", "data", "infotext"), RECORDED, ids=[r[0] for r in RECORDED])
def test_the_text_in_each_real_image_is_the_infotext_the_server_reported(name, data, infotext):
    found = read_embedded_text(data)
    assert found is not None
    assert found.text == infotext
    assert found.where == ("EXIF UserComment" if name.startswith("sdnext/") else "PNG text chunk")


def _png(**texts: str) -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in texts.items():
        info.add_text(key, value, zip=key.startswith("z"))
    out = io.BytesIO()
    Image.new("RGB", (4, 4)).save(out, "PNG", pnginfo=info)
    return out.getvalue()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def test_png_itxt_for_non_latin_text():
    data = _png(parameters="一只猫\nSteps: 2, Seed: 7, Size: 4x4")
    assert b"iTXt" in data
    assert read_embedded_text(data).text.startswith("一只猫")


def test_png_compressed_ztxt():
    plain = _png()
    body = b"parameters\0\0" + zlib.compress(b"a dog\nSteps: 3, Seed: 9, Size: 4x4")
    data = plain[:33] + _chunk(b"zTXt", body) + plain[33:]
    assert read_embedded_text(data).text == "a dog\nSteps: 3, Seed: 9, Size: 4x4"


def test_png_text_after_the_pixels_is_found():
    plain = _png()
    iend = plain.rindex(b"IEND") - 4
    data = plain[:iend] + _chunk(b"tEXt", b"parameters\0late\nSteps: 1, Seed: 1, Size: 4x4") + plain[iend:]
    assert read_embedded_text(data).text.startswith("late")


def test_other_png_text_keys_are_not_taken_for_parameters():
    assert read_embedded_text(_png(Software="NovelAI", Description="a cat")) is None


def test_a_compressed_text_bomb_is_cut_at_the_limit():
    plain = _png()
    bomb = b"parameters\0\0" + zlib.compress(b"a" * (20 * MAX_TEXT_BYTES))
    data = plain[:33] + _chunk(b"zTXt", bomb) + plain[33:]
    assert len(read_embedded_text(data).text) == MAX_TEXT_BYTES


def _exif_with_comment(comment: bytes) -> bytes:
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = comment
    return exif.tobytes()


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
@pytest.mark.parametrize("encoding", ["utf-16-be", "utf-16-le"])
def test_jpeg_and_webp_exif_user_comment_in_either_byte_order(fmt, encoding):
    text = "a red apple, 赤いりんご\nSteps: 2, Sampler: Euler, Seed: 5, Size: 8x8"
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, fmt, exif=_exif_with_comment(b"UNICODE\0" + text.encode(encoding)))
    found = read_embedded_text(out.getvalue())
    assert found.text == text and found.where == "EXIF UserComment"


def test_user_comment_character_codes():
    assert decode_user_comment(b"ASCII\0\0\0plain text") == "plain text"
    assert decode_user_comment(b"\0" * 8 + "utf8 ✓".encode()) == "utf8 ✓"
    assert decode_user_comment("already text\0") == "already text"


def test_jpeg_comment_is_the_last_resort():
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "JPEG", comment=b"a comment\nSteps: 1, Seed: 2, Size: 8x8")
    found = read_embedded_text(out.getvalue())
    assert found.where == "image comment" and found.text.startswith("a comment")


@pytest.mark.parametrize("data", [
    b"", b"not an image", b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfftEXt", b"\xff\xd8\xff\xe1\xff\xff",
    b"RIFF\x10\x00\x00\x00WEBPEXIF\xff\xff\xff\xff", b"GIF89a" + b"\0" * 20,
])
def test_damaged_or_unknown_files_give_none(data):
    assert read_embedded_text(data) is None


def test_a_truncated_real_png_keeps_what_it_can():
    _, data, infotext = RECORDED[0]
    assert read_embedded_text(data[: len(data) // 2]).text == infotext  # the chunk sits before the pixels
    assert read_embedded_text(data[:40]) is None
