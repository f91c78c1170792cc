"""Image sizes: what to ask a server for, and what it really made.

Real servers do not always make the size they are asked for, and their ``info``
does not say so (recorded on real servers):

- A1111/Forge round a size down to a multiple of 8 (100x60 gives 96x56) and ``info`` keeps 100x60;
- stable-diffusion.cpp rounds up to a multiple of 64 (96x72 gives 128x128) and ``info`` keeps 96x72;
- with hires fix every server's ``info`` keeps the first-pass size.

So the size reported is always read from each image's own header, and a size the
server will not honour is adjusted before sending, with a warning that says so.
"""

from __future__ import annotations

import io
import math

from sdwebui.errors import MalformedResponse
from sdwebui.settings import MAX_SIZE, MIN_SIZE

# Keeping the aspect matters more than keeping the pixel count, and losing pixels more than gaining some.
_GROW_WEIGHT, _SHRINK_WEIGHT = 0.25, 0.5


def image_size(data: bytes) -> tuple[int, int]:
    """``(width, height)`` from the image header only: no pixels are decoded."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise MalformedResponse("The WebUI returned an image whose header cannot be read; check the WebUI console.") from None


def fit_to_multiple(width: int, height: int, multiple: int) -> tuple[int, int]:
    """The size closest to ``width x height`` whose sides are multiples of ``multiple`` (within 64..2048).

    Closest means: the aspect ratio kept as well as possible, then the pixel count, rather more than
    less. stable-diffusion.cpp
    only makes multiples of 64 and would otherwise round each side up on its own (96x64 -> 128x64, a
    2:1 image from a 3:2 input); asking for 192x128 keeps 3:2.
    """
    if width % multiple == 0 and height % multiple == 0:
        return width, height
    aspect, area = width / height, width * height
    low, high = _round_up(MIN_SIZE, multiple), MAX_SIZE - MAX_SIZE % multiple
    best: tuple[float, int, int] | None = None
    for h in range(low, high + 1, multiple):
        for w in {_clamp(math.floor(h * aspect / multiple) * multiple, low, high),
                  _clamp(math.ceil(h * aspect / multiple) * multiple, low, high)}:
            change = math.log(w * h / area)
            score = abs(math.log((w / h) / aspect)) + (_GROW_WEIGHT if change > 0 else -_SHRINK_WEIGHT) * change
            if best is None or score < best[0]:
                best = (score, w, h)
    assert best is not None
    return best[1], best[2]


def expected_size(width: int, height: int, hires_scale: float | None) -> tuple[int, int]:
    """What the image should measure: the asked size, times the hires scale (A1111: ``int(side * scale)``)."""
    if not hires_scale:
        return width, height
    return int(width * hires_scale), int(height * hires_scale)


def describe_difference(server_name: str, multiple: int, asked: tuple[int, int], got: tuple[int, int],
                        first_pass: tuple[int, int] | None = None) -> str:
    """One warning sentence for images whose size is not the one asked for, saying why where it is known."""
    if first_pass is not None and got == first_pass:
        why = "hires fix did not upscale: is the hires upscaler one this server lists?"
    elif all(g in (a - a % multiple, _round_up(a, multiple)) for g, a in zip(got, asked)):
        why = f"it makes sizes in multiples of {multiple}"
    else:
        why = "it changed the size"
    return (f"The {server_name} made {got[0]}x{got[1]} images instead of {asked[0]}x{asked[1]} ({why}); "
            "the sizes reported are the images' own.")


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))
