"""Which member of the WebUI family is behind a base URL, and what it can do.

Detection follows the compatibility notes (A1111 1.10, Forge, SD.Next,
stable-diffusion.cpp). It is done once per base URL and cached by :mod:`sdwebui.catalog`.
Never calls ``/cmd-flags``: it returns the server's auth secrets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sdwebui.client import WebUIClient
from sdwebui.deadline import Deadline
from sdwebui.models import Options

Flavor = Literal["a1111", "forge", "sdnext", "sdcpp"]

FLAVOR_NAMES: dict[str, str] = {
    "a1111": "AUTOMATIC1111 WebUI",
    "forge": "Forge",
    "sdnext": "SD.Next",
    "sdcpp": "stable-diffusion.cpp server",
}


@dataclass(frozen=True)
class ServerInfo:
    flavor: Flavor
    has_schedulers: bool

    @property
    def name(self) -> str:
        return FLAVOR_NAMES[self.flavor]

    @property
    def can_switch_models(self) -> bool:
        """sd.cpp loads one model at start-up: no POST /options, override_settings ignored."""
        return self.flavor != "sdcpp"

    @property
    def lora_in_prompt(self) -> bool:
        """sd.cpp ignores ``<lora:…>`` tags and takes a ``lora`` array instead."""
        return self.flavor != "sdcpp"

    @property
    def clip_skip_as_field(self) -> bool:
        """SD.Next and sd.cpp take ``clip_skip`` in the request; A1111/Forge take an override setting."""
        return self.flavor in ("sdnext", "sdcpp")


def detect_server(client: WebUIClient, deadline: Deadline, options: Options | None = None) -> ServerInfo:
    options = options or client.options(deadline)
    version = client.get_optional("version", deadline=deadline)
    if isinstance(version, dict) and "sd.next" in str(version.get("app", "")).lower():
        flavor: Flavor = "sdnext"
    elif _is_sdcpp_options(options):
        flavor = "sdcpp"
    elif options.model_extra and "forge_preset" in options.model_extra:
        flavor = "forge"
    elif client.get_optional("sd-modules", deadline=deadline) is not None:
        flavor = "forge"
    else:
        flavor = "a1111"
    has_schedulers = flavor != "sdnext" and client.get_optional("schedulers", deadline=deadline) is not None
    return ServerInfo(flavor=flavor, has_schedulers=has_schedulers)


def _is_sdcpp_options(options: Options) -> bool:
    """sd.cpp's GET /options answers exactly two keys."""
    keys = set(options.model_dump(exclude_none=True)) | set(options.model_extra or {})
    return keys <= {"samples_format", "sd_model_checkpoint"}
