"""Image bytes: base64 decoding, format sniffing, and preparing input images.

The WebUI returns raw base64 in whatever format its global ``samples_format``
says (PNG on A1111/Forge, JPEG on SD.Next), so the format is always read from
the bytes, never assumed.
"""

from __future__ import annotations

import base64
import binascii
import io
import warnings
from dataclasses import dataclass

from sdwebui.errors import InvalidInput, MalformedResponse

# (magic prefix, MIME type, file extension)
_SIGNATURES: tuple[tuple[bytes, str, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
    (b"GIF87a", "image/gif", "gif"),
    (b"GIF89a", "image/gif", "gif"),
    (b"BM", "image/bmp", "bmp"),
    (b"II*\x00", "image/tiff", "tif"),
    (b"MM\x00*", "image/tiff", "tif"),
)


def sniff_image_type(data: bytes) -> tuple[str, str] | None:
    """Return ``(mime_type, extension)`` for known image bytes, else ``None``."""
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp", "webp"
    if len(data) >= 12 and data[4:8] == b"ftyp" and data[8:12] in (b"avif", b"avis"):
        return "image/avif", "avif"
    for magic, mime, ext in _SIGNATURES:
        if data.startswith(magic):
            return mime, ext
    return None


def strip_data_url(text: str) -> str:
    """Drop a ``data:image/...;base64,`` prefix if there is one."""
    if text.startswith("data:"):
        _, _, text = text.partition(",")
    return text


def decode_image_base64(text: object, *, what: str = "image") -> tuple[bytes, str, str]:
    """Decode one base64 image from the WebUI into ``(bytes, mime_type, extension)``.

    Raises :class:`MalformedResponse` for anything that is not base64 of a known image format.
    """
    if not isinstance(text, str) or not text:
        raise MalformedResponse(f"The WebUI returned an empty {what}; check the WebUI console for errors.")
    try:
        data = base64.b64decode(strip_data_url(text), validate=True)
    except (binascii.Error, ValueError):
        raise MalformedResponse(
            f"The WebUI returned an {what} that is not valid base64; check the WebUI console, "
            "or an extension that rewrites the response."
        ) from None
    kind = sniff_image_type(data)
    if kind is None:
        raise MalformedResponse(
            f"The WebUI returned {len(data)} bytes for an {what} that are not a PNG, JPEG or WebP image; "
            "check the WebUI's samples_format setting."
        )
    return data, kind[0], kind[1]


def encode_base64(data: bytes) -> str:
    """Raw base64, no ``data:`` prefix: the form every WebUI of the family accepts."""
    return base64.b64encode(data).decode("ascii")


_EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class PreparedImage:
    """An input image checked and normalised for the WebUI."""

    data: bytes  # PNG or the original bytes, ready for base64
    width: int
    height: int
    mode: str


# 4096 x 4096. Larger inputs are refused before decoding: they would block the
# plugin's event loop while decoding and are far beyond what SD models take.
MAX_INPUT_PIXELS = 4096 * 4096


def prepare_input_image(data: bytes, *, what: str = "image", max_pixels: int = MAX_INPUT_PIXELS) -> PreparedImage:
    """Check that ``data`` is a real image of sane size and apply its EXIF orientation.

    The pixel count is read from the header before any decoding, so a
    decompression bomb is refused without allocating it.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not data:
        raise InvalidInput(f"The {what} file is empty; upload a PNG, JPEG or WebP image.")
    if sniff_image_type(data) is None:
        raise InvalidInput(f"The {what} file is not a PNG, JPEG, WebP, GIF, BMP or TIFF image; upload an image file.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
                if width * height > max_pixels:
                    raise InvalidInput(
                        f"The {what} is {width}x{height} pixels, more than the {max_pixels:,} allowed; "
                        "resize it before sending it."
                    )
                img.load()  # a damaged file fails here, not on the WebUI
                rotated = img.getexif().get(_EXIF_ORIENTATION, 1) not in (0, 1)
                if not rotated and img.format in ("PNG", "JPEG", "WEBP"):
                    return PreparedImage(data=data, width=width, height=height, mode=img.mode)
                image = ImageOps.exif_transpose(img)
                out = io.BytesIO()
                if image.mode not in ("RGB", "RGBA", "L", "LA"):
                    image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
                image.save(out, format="PNG", compress_level=1)
                return PreparedImage(data=out.getvalue(), width=image.width, height=image.height, mode=image.mode)
    except InvalidInput:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidInput(f"The {what} is too large to decode safely; resize it before sending it.") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise InvalidInput(f"The {what} file is damaged or not a readable image; upload a PNG, JPEG or WebP image.") from None


REENCODE_FORMATS = {"webp": ("WEBP", "image/webp", "webp"), "jpeg": ("JPEG", "image/jpeg", "jpg")}


def reencode(data: bytes, fmt: str, *, quality: int = 90) -> tuple[bytes, str, str]:
    """Re-encode image bytes as WebP or JPEG: ``(bytes, mime_type, extension)``. CPU-heavy: run it off the event loop."""
    from PIL import Image

    pil_format, mime, ext = REENCODE_FORMATS[fmt]
    with Image.open(io.BytesIO(data)) as img:
        image = img.convert("RGB") if fmt == "jpeg" or img.mode not in ("RGB", "RGBA") else img
        options = {"quality": quality, **({"method": 4} if fmt == "webp" else {})}
        out = io.BytesIO()
        image.save(out, format=pil_format, **options)
    return out.getvalue(), mime, ext
