"""Upscaling one image with ``POST /extra-single-image`` and an upscaler from the server's list."""

from __future__ import annotations

from dataclasses import dataclass

from sdwebui import jobs, names
from sdwebui.catalog import Catalog
from sdwebui.client import WebUIClient
from sdwebui.deadline import Deadline
from sdwebui.errors import MalformedResponse, NotFound, Unsupported
from sdwebui.images import decode_image_base64
from sdwebui.models import ExtrasRequest
from sdwebui.servers import explained
from sdwebui.settings import UpscaleSettings
from sdwebui.sizes import image_size

# Used when no upscaler is named, best first, if the server has them.
PREFERRED_UPSCALERS = ("R-ESRGAN 4x+", "ESRGAN_4x", "SwinIR_4x", "Lanczos")


@dataclass(frozen=True)
class UpscaleResult:
    data: bytes
    mime_type: str
    extension: str
    width: int
    height: int
    upscaler: str

    @property
    def filename(self) -> str:
        return f"sd-upscaled-{self.width}x{self.height}.{self.extension}"

    def summary(self) -> dict:
        return {"width": self.width, "height": self.height, "upscaler": self.upscaler, "mime_type": self.mime_type, "size_bytes": len(self.data)}


def upscale(client: WebUIClient, image_base64: str, settings: UpscaleSettings, deadline: Deadline, *, catalog: Catalog | None = None) -> UpscaleResult:
    catalog = catalog or Catalog(client)
    server = catalog.server(deadline)
    if not server.upscale:
        raise Unsupported(
            f"The {server.name} cannot upscale (it has no /extra-single-image); use an AUTOMATIC1111, Forge or SD.Next "
            "WebUI for this tool."
        )
    available = [u.name for u in catalog.upscalers(deadline) if u.name != "None"]
    if settings.upscaler:
        upscaler = names.resolve_upscaler(settings.upscaler, available)
    else:
        upscaler = next((u for u in PREFERRED_UPSCALERS if u in available), available[0] if available else "")
        if not upscaler:
            raise NotFound("The WebUI lists no upscalers; install one (e.g. R-ESRGAN 4x+) or check its models/ESRGAN folder.")
    request = ExtrasRequest(image=image_base64, upscaler_1=upscaler, resize_mode=0, upscaling_resize=settings.scale)
    if settings.width is not None:
        request = ExtrasRequest(
            image=image_base64, upscaler_1=upscaler, resize_mode=1,
            upscaling_resize_w=settings.width, upscaling_resize_h=settings.height, upscaling_crop=True,
        )
    with explained(server):
        response = jobs.extra_single_image(client, request, deadline)
    if not response.image:
        raise MalformedResponse("The WebUI answered the upscale without an image; check its console for errors.")
    data, mime, ext = decode_image_base64(response.image, what="upscaled image")
    width, height = image_size(data)
    return UpscaleResult(data=data, mime_type=mime, extension=ext, width=width, height=height, upscaler=upscaler)
