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


SchedulerKind = Literal["field", "sigma"]

# SD.Next has no /schedulers: its "Sigma algorithm" option (schedulers_sigma) is what Karras & co. set there.
# The choices come from its modules/shared.py (OptionInfo "schedulers_sigma"), not from any API list.
SDNEXT_SIGMAS = ("default", "karras", "exponential", "polyexponential")


@dataclass(frozen=True)
class ServerInfo:
    flavor: Flavor
    scheduler_kind: SchedulerKind | None  # "field": /schedulers + the `scheduler` field; "sigma": SD.Next

    @property
    def name(self) -> str:
        return FLAVOR_NAMES[self.flavor]

    @property
    def missing_route_advice(self) -> str:
        """What to do when this server lacks a route the plugin needs."""
        if self.flavor == "sdcpp":
            return "use an AUTOMATIC1111, Forge or SD.Next WebUI for it"
        return f"update the {self.name}, or use another WebUI of the family that has it"

    @property
    def has_schedulers(self) -> bool:
        return self.scheduler_kind is not None

    @property
    def can_switch_models(self) -> bool:
        """sd.cpp loads one model at start-up: no POST /options, override_settings ignored."""
        return self.flavor != "sdcpp"

    @property
    def reloads_on_options(self) -> bool:
        """Whether ``POST /options`` loads the model. SD.Next (API mode) only stores it: ``/reload-checkpoint`` loads."""
        return self.flavor != "sdnext"

    @property
    def lora_in_prompt(self) -> bool:
        """sd.cpp ignores ``<lora:…>`` tags and takes a ``lora`` array instead."""
        return self.flavor != "sdcpp"

    @property
    def clip_skip_as_field(self) -> bool:
        """SD.Next and sd.cpp take ``clip_skip`` in the request; A1111/Forge take an override setting."""
        return self.flavor in ("sdnext", "sdcpp")

    @property
    def takes_overrides(self) -> bool:
        """sd.cpp silently ignores ``override_settings``."""
        return self.flavor != "sdcpp"

    @property
    def size_multiple(self) -> int:
        """Sizes the server honours: sd.cpp rounds up to multiples of 64, the WebUIs down to multiples of 8."""
        return 64 if self.flavor == "sdcpp" else 8

    @property
    def max_steps(self) -> int | None:
        """sd.cpp clamps steps to 1..100 silently."""
        return 100 if self.flavor == "sdcpp" else None

    @property
    def needs_hr_additional_modules(self) -> bool:
        """Forge fails hires fix with a TypeError unless ``hr_additional_modules`` is a list; A1111 ignores the field."""
        return self.flavor in ("forge", "a1111")

    @property
    def hires_steps_field(self) -> str:
        """sd.cpp reads ``hr_steps``; the WebUIs ``hr_second_pass_steps``."""
        return "hr_steps" if self.flavor == "sdcpp" else "hr_second_pass_steps"

    @property
    def can_upscale(self) -> bool:
        """sd.cpp has no ``/extra-single-image`` (404 with an empty body)."""
        return self.flavor != "sdcpp"

    @property
    def has_img2img_controls(self) -> bool:
        """sd.cpp reads the init image, mask and its inversion, nothing else (no blur, fill, area, padding or resize mode)."""
        return self.flavor != "sdcpp"

    @property
    def needs_prompt(self) -> bool:
        """sd.cpp answers 400 "prompt required" to an empty prompt."""
        return self.flavor == "sdcpp"


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
    if flavor == "sdnext":
        kind: SchedulerKind | None = "sigma" if "schedulers_sigma" in (options.model_extra or {}) else None
    else:
        kind = "field" if client.get_optional("schedulers", deadline=deadline) is not None else None
    return ServerInfo(flavor=flavor, scheduler_kind=kind)


def _is_sdcpp_options(options: Options) -> bool:
    """sd.cpp's GET /options answers exactly two keys."""
    keys = set(options.model_dump(exclude_none=True)) | set(options.model_extra or {})
    return keys <= {"samples_format", "sd_model_checkpoint"}
