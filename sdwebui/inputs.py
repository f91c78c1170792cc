"""Input images from Dify files: fetched with a bounded time and size, checked, sized for the WebUI.

Dify hands a tool a signed file URL that expires after 300 s (and ``File.blob``
would fetch it with a 5 s timeout and no size limit), so the plugin fetches it
itself, early. The WebUI gets raw base64, never the URL: it usually cannot
reach Dify's private file URLs.
"""

from __future__ import annotations

from dataclasses import dataclass

import requests

from sdwebui.errors import InvalidInput
from sdwebui.images import PreparedImage, encode_base64, prepare_input_image
from sdwebui.settings import MAX_SIZE, MIN_SIZE

MAX_INPUT_BYTES = 25 * 1024 * 1024
FETCH_CONNECT_TIMEOUT_S = 5.0
FETCH_TOTAL_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class FileRef:
    """What the plugin knows of a Dify file parameter, without Dify types."""

    url: str
    filename: str | None = None
    mime_type: str | None = None
    size: int | None = None
    data: bytes | None = None  # already fetched (Dify's File may carry its blob)


def fetch_file(ref: FileRef, *, what: str, max_bytes: int = MAX_INPUT_BYTES) -> bytes:
    if ref.data is not None:
        data = ref.data
    else:
        if ref.size is not None and ref.size > max_bytes:
            raise InvalidInput(_too_big(what, ref.size, max_bytes))
        if not ref.url.startswith(("http://", "https://")):
            raise InvalidInput(
                f"The {what} file has no usable URL; set FILES_URL (or INTERNAL_FILES_URL) in Dify's .env "
                "to an address the plugin daemon can reach."
            )
        data = _download(ref.url, what=what, max_bytes=max_bytes)
    if len(data) > max_bytes:
        raise InvalidInput(_too_big(what, len(data), max_bytes))
    return data


def _download(url: str, *, what: str, max_bytes: int) -> bytes:
    try:
        with requests.get(url, stream=True, timeout=(FETCH_CONNECT_TIMEOUT_S, FETCH_TOTAL_TIMEOUT_S)) as response:
            if response.status_code != 200:
                raise InvalidInput(
                    f"Dify's file server answered HTTP {response.status_code} for the {what} file; the link may have expired "
                    "(they last 300 s) or FILES_URL may be wrong. Run the step again."
                )
            body = bytearray()
            for chunk in response.iter_content(256 * 1024):
                body += chunk
                if len(body) > max_bytes:
                    raise InvalidInput(_too_big(what, len(body), max_bytes))
            return bytes(body)
    except requests.exceptions.RequestException:
        raise InvalidInput(
            f"Could not download the {what} file from Dify's file server; check that FILES_URL (or INTERNAL_FILES_URL) "
            "in Dify's .env is reachable from the plugin daemon."
        ) from None


def _too_big(what: str, size: int, max_bytes: int) -> str:
    return f"The {what} file is {size / 1048576:.1f} MiB, more than the {max_bytes // 1048576} MiB allowed; use a smaller image."


@dataclass(frozen=True)
class InputImage:
    image: PreparedImage
    base64: str


def read_input_image(ref: FileRef, *, what: str) -> InputImage:
    prepared = prepare_input_image(fetch_file(ref, what=what), what=what)
    return InputImage(image=prepared, base64=encode_base64(prepared.data))


def output_size_for(width: int, height: int) -> tuple[int, int]:
    """The input's size as the WebUI wants it: multiples of 8, within 64..2048, aspect kept.

    The WebUI does not infer the size from the init image; it would stretch it to 512x512.
    """
    scale = min(1.0, MAX_SIZE / max(width, height))
    if min(width, height) * scale < MIN_SIZE:  # a tiny input is scaled up to the WebUI's minimum
        scale = MIN_SIZE / min(width, height)

    def fit(value: int) -> int:
        return int(min(MAX_SIZE, max(MIN_SIZE, round(value * scale / 8) * 8)))

    return fit(width), fit(height)
