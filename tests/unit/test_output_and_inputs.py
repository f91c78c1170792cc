"""Output size guard and input files: sizes, formats, bombs, EXIF orientation."""

from __future__ import annotations

import io

import pytest
from dify_plugin.errors.model import InvokeBadRequestError
from PIL import Image

from sdwebui import errors
from sdwebui.generation import GeneratedImage
from sdwebui.images import prepare_input_image
from sdwebui.inputs import FileRef, fetch_file, output_size_for
from sdwebui.output import fit_output
from tests.conftest import BASE, generation_body
from tools.txt2img import Txt2ImgTool


def big_png(width: int = 800, height: int = 800) -> bytes:
    """A smooth gradient stored without compression: large as PNG, tiny as WebP/JPEG."""
    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=0)
    return out.getvalue()


def generated(data: bytes, seed: int = 1) -> GeneratedImage:
    return GeneratedImage(data=data, mime_type="image/png", extension="png", seed=seed, index=0, width=8, height=8)


def test_under_the_limit_nothing_changes():
    images = [generated(b"x" * 1000)]
    assert fit_output(images, limit_mb=1) == (images, None)


def test_over_the_limit_without_permission_names_the_limit_and_the_ways_out():
    images = [generated(big_png()), generated(big_png(), 2)]
    with pytest.raises(errors.OutputTooLarge, match=r"The 2 images total 3\.7 MB, over the 1 MB output limit.*'If output too large'.*'Max output size'"):
        fit_output(images, limit_mb=1)


@pytest.mark.parametrize(("fmt", "mime", "ext"), [("webp", "image/webp", "webp"), ("jpeg", "image/jpeg", "jpg")])
def test_over_the_limit_with_permission_re_encodes(fmt, mime, ext):
    ran = []

    def run(fn, *args):
        ran.append(fn.__name__)
        return fn(*args)

    images, note = fit_output([generated(big_png(), 7)], limit_mb=1, fallback_format=fmt, run=run)
    assert (images[0].mime_type, images[0].extension, images[0].filename) == (mime, ext, f"sd-7.{ext}")
    assert Image.open(io.BytesIO(images[0].data)).size == (800, 800)
    assert note.startswith(f"Re-encoded to {fmt.upper()}") and ran == ["reencode"]


def test_txt2img_tool_applies_the_providers_limit(webui):
    webui.answer_txt2img(generation_body([big_png()], seeds=[3]))
    credentials = {"base_url": BASE, "max_output_mb": "1", "progress_messages": "off"}  # no log messages first
    with pytest.raises(InvokeBadRequestError, match="over the 1 MB output limit"):
        list(Txt2ImgTool.from_credentials(credentials).invoke({"prompt": "x"}))
    webui.answer_txt2img(generation_body([big_png()], seeds=[3]))
    messages = list(Txt2ImgTool.from_credentials(credentials).invoke({"prompt": "x", "oversize_format": "webp"}))
    assert messages[0].meta == {"mime_type": "image/webp", "filename": "sd-3.webp"}
    assert "Re-encoded to WEBP" in messages[-1].message.text


def _encoded(image: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **kwargs)
    return out.getvalue()


def test_wrong_file_type_empty_and_damaged_files():
    with pytest.raises(errors.InvalidInput, match="not a PNG, JPEG, WebP"):
        prepare_input_image(b"%PDF-1.7 hello")
    with pytest.raises(errors.InvalidInput, match="empty"):
        prepare_input_image(b"")
    with pytest.raises(errors.InvalidInput, match="damaged"):
        prepare_input_image(_encoded(Image.effect_noise((64, 64), 60))[:500])


def test_a_decompression_bomb_is_refused_before_decoding():
    # A 20000x20000 PNG header claims 400 M pixels; the file itself is tiny.
    bomb = _encoded(Image.new("1", (20000, 20000)), optimize=True)
    assert len(bomb) < 200_000
    with pytest.raises(errors.InvalidInput, match="too large to decode safely"):
        prepare_input_image(bomb)


def test_oversized_files_are_refused_by_size():
    with pytest.raises(errors.InvalidInput, match="more than the 1 MiB allowed"):
        fetch_file(FileRef(url="http://127.0.0.1:1/x", size=5 * 1024 * 1024), what="input image", max_bytes=1024 * 1024)
    with pytest.raises(errors.InvalidInput, match="more than the 1 MiB allowed"):
        fetch_file(FileRef(url="", data=b"x" * (2 * 1024 * 1024)), what="input image", max_bytes=1024 * 1024)


def test_a_relative_file_url_points_at_files_url():
    with pytest.raises(errors.InvalidInput, match="FILES_URL"):
        fetch_file(FileRef(url="/files/abc/file-preview"), what="input image")


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    prepared = prepare_input_image(_encoded(image, "JPEG", exif=exif))
    assert (prepared.width, prepared.height) == (20, 40)
    assert Image.open(io.BytesIO(prepared.data)).size == (20, 40)


def test_an_upright_png_is_sent_unchanged():
    data = _encoded(Image.new("RGBA", (30, 30)))
    assert prepare_input_image(data).data is data


@pytest.mark.parametrize(
    ("size", "expected"),
    [((100, 60), (104, 64)), ((512, 512), (512, 512)), ((4000, 3000), (2048, 1536)), ((30, 30), (64, 64)), ((1023, 767), (1024, 768))],
)
def test_img2img_output_follows_the_input_size(size, expected):
    assert output_size_for(*size) == expected
