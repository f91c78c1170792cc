"""Reading how an image was made: its infotext, parsed by :mod:`sdwebui.infotext`.

Local first, the server second:

1. the text is read from the file itself (:mod:`sdwebui.image_info`: PNG ``parameters`` chunk,
   EXIF UserComment). That is where A1111's own ``/png-info`` looks for its format, so both agree;
   it works with stable-diffusion.cpp (no ``/png-info``), with a WebUI that is down or busy, and
   without sending the image (up to 25 MiB as base64) over the network again;
2. only when the file has no readable text is it sent to ``POST /png-info``: A1111 and Forge also
   understand other tools' metadata there (NovelAI's, for one), which the local reader does not.
   That is a best effort: if the server cannot be asked (unreachable, no such route, sd.cpp's 404),
   the answer stays "no generation parameters", which is what the file itself says.
"""

from __future__ import annotations

from dataclasses import dataclass

from sdwebui import models
from sdwebui.client import WebUIClient
from sdwebui.deadline import Deadline
from sdwebui.errors import InvalidInput, WebUIError
from sdwebui.image_info import read_embedded_text
from sdwebui.images import encode_base64, sniff_image_type
from sdwebui.infotext import GenerationParameters, parse_infotext

NO_PARAMETERS = "This image carries no generation parameters (no infotext in its metadata)."


@dataclass(frozen=True)
class ImageInfo:
    parameters: GenerationParameters | None
    source: str  # "PNG text chunk", "EXIF UserComment", "image comment", "WebUI /png-info" or "" (none found)

    @property
    def found(self) -> bool:
        return self.parameters is not None and self.parameters.found

    def summary(self) -> dict:
        data = self.parameters.to_json() if self.found else {}
        return {"found": self.found, "source": self.source, **data}

    def describe(self) -> str:
        """A few lines for an agent: the prompts, then the settings that reproduce the image."""
        if not self.found:
            return NO_PARAMETERS
        p = self.parameters
        lines = [f"Prompt: {p.prompt or '(empty)'}"]
        if p.negative_prompt:
            lines.append(f"Negative prompt: {p.negative_prompt}")
        settings = [
            f"steps {p.steps}" if p.steps is not None else "",
            f"sampler {p.sampler}" + (f" ({p.scheduler})" if p.scheduler else "") if p.sampler else "",
            f"CFG {p.cfg_scale:g}" if p.cfg_scale is not None else "",
            f"seed {p.seed}" if p.seed is not None else "",
            f"{p.width}x{p.height}" if p.width and p.height else "",
            f"model {p.model}" if p.model else "",
            "LoRAs " + ", ".join(f"{lora.name}:{lora.weight:g}" for lora in p.loras) if p.loras else "",
        ]
        shown = ", ".join(s for s in settings if s)
        if shown:
            lines.append(f"Settings: {shown}.")
        return "\n".join(lines)


def read_image_info(data: bytes, *, client: WebUIClient | None = None, deadline: Deadline | None = None) -> ImageInfo:
    if sniff_image_type(data) is None:
        raise InvalidInput("The file is not a PNG, JPEG or WebP image; pass the image whose generation info you want.")
    embedded = read_embedded_text(data)
    if embedded is not None:
        parsed = parse_infotext(embedded.text)
        if parsed.found:
            return ImageInfo(parsed, embedded.where)
    if client is not None and deadline is not None:
        text = _ask_server(client, data, deadline)
        if text:
            return ImageInfo(parse_infotext(text), "WebUI /png-info")
    return ImageInfo(None, "")


def _ask_server(client: WebUIClient, data: bytes, deadline: Deadline) -> str:
    try:
        answer = client.post("png-info", {"image": encode_base64(data)}, deadline=deadline)
        return (models.parse(models.PngInfoResponse, answer, what="POST /png-info").info or "").strip()
    except WebUIError:
        return ""
