"""Keeping a tool call's images under the size Dify accepts.

Dify refuses tool files above 15-50 MB depending on its version (15 MB is the
strictest), so the total is checked before anything is sent. Over the limit the
images are re-encoded to WebP or JPEG when the user allowed it; otherwise the
call fails with a message naming the limit and how to change it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol, TypeVar

from sdwebui.errors import OutputTooLarge
from sdwebui.images import REENCODE_FORMATS, reencode

DEFAULT_MAX_OUTPUT_MB = 15.0


class ImageLike(Protocol):
    data: bytes
    mime_type: str
    extension: str


T = TypeVar("T", bound=ImageLike)


def _direct(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


def fit_output(
    images: list[T], *, limit_mb: float, fallback_format: str = "", run: Callable[..., Any] = _direct
) -> tuple[list[T], str | None]:
    """Return the images (re-encoded if needed and allowed) and a note saying what was done, if anything.

    ``run(fn, *args)`` executes the CPU-heavy re-encoding; the Dify layer passes one
    that uses a real thread, so the plugin's event loop and heartbeat keep going.
    """
    limit = int(limit_mb * 1024 * 1024)
    total = sum(len(image.data) for image in images)
    if total <= limit:
        return images, None
    count = f"{len(images)} image{'s' if len(images) != 1 else ''}"
    if fallback_format not in REENCODE_FORMATS:
        raise OutputTooLarge(
            f"The {count} total {total / 1048576:.1f} MB, over the {limit_mb:g} MB output limit; lower the size or the number "
            "of images, set 'If output too large' to WebP or JPEG, or raise 'Max output size' in the provider settings "
            "(if your Dify allows larger tool files)."
        )
    converted = []
    for image in images:
        data, mime, ext = run(reencode, image.data, fallback_format)
        converted.append(replace(image, data=data, mime_type=mime, extension=ext))
    new_total = sum(len(image.data) for image in converted)
    if new_total > limit:
        raise OutputTooLarge(
            f"Even as {fallback_format.upper()} the {count} total {new_total / 1048576:.1f} MB, over the {limit_mb:g} MB output limit; "
            "lower the size or the number of images, or raise 'Max output size' in the provider settings."
        )
    note = f"Re-encoded to {fallback_format.upper()} ({total / 1048576:.1f} MB -> {new_total / 1048576:.1f} MB) to stay under the {limit_mb:g} MB output limit."
    return converted, note
