"""What each member of the WebUI family does differently, as one table, and how to tell which one answers.

Every server behaviour the plugin depends on is a field of :class:`ServerProfile`; every server (and every
version whose behaviour changed) is one entry of :data:`PROFILES`, in detection order. A new server version is one
entry plus its recordings under ``tests/fixtures/``. The README's server table is rendered from here
(:func:`markdown_table`), and a test keeps the two equal.

Detection runs once per base URL (cached by :mod:`sdwebui.catalog`): the first entry one of whose clues matches
wins. Never calls ``/cmd-flags``: it returns the server's auth secrets (A1111 1.10, SD.Next).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Literal

from sdwebui.client import WebUIClient
from sdwebui.deadline import Deadline
from sdwebui.errors import ServerError, WebUIError
from sdwebui.models import Options

Family = Literal["a1111", "forge", "sdnext", "sdcpp"]
# "options": POST /options makes the model active; "options+reload": it only stores the name and
# POST /reload-checkpoint loads it; None: one model, fixed at start-up.
ModelSwitch = Literal["options", "options+reload"]
# "route": /schedulers and the request's `scheduler` field; "sigma": SD.Next's sigma algorithm, sent as the
# `schedulers_sigma` override (and, where `sigma_field`, as a top-level field too); None: no separate scheduler.
Schedulers = Literal["route", "sigma"]
# Where a running job's progress can be read (sdwebui.progress).
ProgressSource = Literal["internal", "sdnext-status", "sdcpp-jobs"]

# SD.Next's sigma algorithms: no API lists them. 431bcc3: modules/shared.py OptionInfo "schedulers_sigma";
# 2026: the request field's choices in modules/api/models.py (source, not recorded).
SDNEXT_SIGMAS_2025 = ("default", "karras", "exponential", "polyexponential")
SDNEXT_SIGMAS = ("default", "karras", "betas", "exponential", "lambdas", "flowmatch")

# stable-diffusion.cpp's own aliases for WebUI sampler names (routes_sdapi.cpp, get_sdapi_sample_method):
# it takes these, but /samplers lists only the native names.
SDCPP_SAMPLER_ALIASES = {
    "ddim": "ddim_trailing", "k_euler_a": "euler_a", "k_euler": "euler", "k_heun": "heun", "k_dpm_2": "dpm2",
    "k_dpmpp_2m": "dpm++2m", "dpm++ 2m sde gpu": "dpm++2m_sde_bt", "k_dpmpp_2m_sde": "dpm++2m_sde",
    "k_dpmpp_2m_sde_gpu": "dpm++2m_sde_bt", "res multistep": "res_multistep", "res 2s": "res_2s",
}


# ------------------------------------------------------------------ detection clues


@dataclass(frozen=True)
class VersionApp:
    """``GET /version`` names this app (case-insensitive), updated on or after ``since`` (ISO date) if given."""

    app: str
    since: str = ""


@dataclass(frozen=True)
class OptionsWithin:
    """``GET /options`` has no keys but these."""

    keys: frozenset[str]


@dataclass(frozen=True)
class OptionKey:
    """``GET /options`` has one of these keys."""

    keys: tuple[str, ...]


@dataclass(frozen=True)
class Route:
    """This ``GET`` route answers (not 404)."""

    path: str


Clue = VersionApp | OptionsWithin | OptionKey | Route


# ------------------------------------------------------------------ the profile


@dataclass(frozen=True)
class KnownFailure:
    """A server error whose text contains ``marker``, said as one plain sentence instead of the generic one."""

    marker: str
    sentence: str


@dataclass(frozen=True)
class ServerProfile:
    key: str  # unique: "a1111", "forge", "forge-classic", "sdnext-2025", "sdnext", "sdcpp"
    family: Family  # what the tools report as "server"
    name: str
    recorded: str  # the version the recordings under tests/fixtures/ come from
    clues: tuple[Clue, ...] = ()  # any one identifies the server; none: the fallback
    model_switch: ModelSwitch | None = "options"
    lora_in_prompt: bool = True  # <lora:name:w> tags; else a `lora` array of paths
    lora_evidence: str = ""  # the infotext key that lists the LoRAs applied ("" : none to check)
    clip_skip_as_field: bool = False  # `clip_skip` in the request; else the CLIP_stop_at_last_layers override
    takes_overrides: bool = True  # honours override_settings
    sends_n_iter: bool = True
    sends_image_flags: bool = True  # send_images / save_images are read
    size_multiple: int = 8
    max_steps: int | None = None  # clamped silently above this
    needs_prompt: bool = False
    img2img_controls: bool = True  # mask blur, fill, inpaint area, padding, resize mode
    schedulers: Schedulers | None = "route"
    sigma_field: bool = False  # SD.Next 2026: schedulers_sigma is a request field as well as a setting
    sigmas: tuple[str, ...] = ()  # the sigma algorithms, where schedulers == "sigma"
    sampler_aliases: dict[str, str] = field(default_factory=dict)
    hires_modules: bool = False  # hires fix fails unless `hr_additional_modules` is a list
    hires_steps_field: str = "hr_second_pass_steps"
    hires_resize_mode: bool = False  # hires fix upscales only with hr_resize_mode 1 (and hr_force for a second pass)
    hires_latent_upscales: bool = True  # a latent hires upscaler really enlarges the image
    upscale: bool = True  # POST /extra-single-image
    describe_routes: tuple[str, ...] = ("interrogate",)  # tried in order; () : cannot describe images
    lists_interrogators: bool = False  # GET /interrogate lists the interrogators
    alwayson_extensions: bool = True  # ControlNet, ADetailer and the refiner through alwayson_scripts
    refiner: bool = True
    extra_params: bool = True
    vae_route: str | None = "sd-vae"  # where the VAEs are listed ("sd-modules": Forge's forge_additional_modules)
    styles: bool = True
    task_ids: bool = True  # force_task_id and /internal/progress, when the UI is on
    progress: ProgressSource | None = "internal"
    empty_answer: str = "check that it has a model loaded and look at its console for errors"
    known_failures: tuple[KnownFailure, ...] = ()
    image_format: str = "PNG"

    @property
    def flavor(self) -> Family:  # the older name, kept for the JSON output's "server"
        return self.family

    @property
    def scheduler_kind(self) -> Literal["field", "sigma"] | None:
        return {"route": "field", "sigma": "sigma", None: None}[self.schedulers]

    @property
    def has_schedulers(self) -> bool:
        return self.schedulers is not None

    @property
    def can_switch_models(self) -> bool:
        return self.model_switch is not None

    @property
    def reloads_on_options(self) -> bool:
        """Whether ``POST /options`` makes the model the one used next (else ``/reload-checkpoint`` does)."""
        return self.model_switch == "options"

    @property
    def missing_route_advice(self) -> str:
        """What to do when this server lacks a route the plugin needs."""
        if self.family == "sdcpp":
            return "use an AUTOMATIC1111, Forge or SD.Next WebUI for it"
        return f"update the {self.name}, or use another WebUI of the family that has it"

    def known_failure(self, text: str) -> str | None:
        return next((f.sentence for f in self.known_failures if f.marker.lower() in text.lower()), None)


_NANS = KnownFailure(
    "tensor with NaNs",  # A1111's NansException (fixtures a1111/bad_txt2img_lora_nans_in_unet.json)
    "The WebUI stopped because the model produced NaNs (a tensor with NaNs was produced in the Unet): usually a "
    "half-precision problem or a broken model or LoRA. Try another seed or a lower LoRA weight, or start the WebUI "
    "with --no-half-vae (or --no-half), or use another checkpoint.",
)
_SDNEXT_UPSCALE = KnownFailure(
    "html_info",  # fixtures sdnext/058a7f0/post_extra_single_image_*.json
    "This SD.Next version's upscale route (/extra-single-image) fails after upscaling (a known SD.Next bug: its answer "
    "does not validate), so the plugin cannot upscale here; upscale in SD.Next's own UI, use hires fix in "
    "txt2img instead, or use another SD.Next version or WebUI for upscaling.",
)

A1111 = ServerProfile(
    key="a1111", family="a1111", name="AUTOMATIC1111 WebUI", recorded="1.10.1",
    lora_evidence="Lora hashes", hires_modules=True, known_failures=(_NANS,),
)
FORGE = replace(
    A1111, key="forge", family="forge", name="Forge", recorded="dfdcbab6 (lllyasviel, UI on)",
    clues=(OptionKey(("forge_preset",)), Route("sd-modules")), vae_route="sd-modules",
)
# Haoming02's Forge Classic: the pre-2024-08 Forge on an A1111 1.7-era API (fixtures forge-classic/README.md).
FORGE_CLASSIC = replace(
    A1111, key="forge-classic", family="forge", name="Forge Classic", recorded="1f95d717 (Haoming02)",
    clues=(OptionKey(("k_sched_type", "fp8_fast")),), schedulers=None, hires_modules=False, describe_routes=(),
)
SDNEXT_2025 = ServerProfile(
    key="sdnext-2025", family="sdnext", name="SD.Next", recorded="431bcc3 (2025-03)",
    clues=(VersionApp("sd.next"),), model_switch="options+reload", clip_skip_as_field=True, schedulers="sigma",
    sigmas=SDNEXT_SIGMAS_2025,    lists_interrogators=True, alwayson_extensions=False, refiner=False, task_ids=False, progress="sdnext-status",
    known_failures=(_NANS,),
    image_format="JPEG",
    empty_answer="it has no model loaded (SD.Next unloads its model when asked for one it does not have); "
                 "choose a listed model, or load one in SD.Next",
)
# SD.Next since its caption overhaul (2026-02): sparse GET /options, POST /options switches in the call, /caption
# replaces /interrogate, hires fix needs hr_resize_mode, /extra-single-image fails (fixtures sdnext/058a7f0/).
SDNEXT = replace(
    SDNEXT_2025, key="sdnext", recorded="058a7f0 (2026-07)", clues=(VersionApp("sd.next", since="2026-02-01"),),
    model_switch="options", sigma_field=True, sigmas=SDNEXT_SIGMAS, hires_resize_mode=True, hires_latent_upscales=False,
    describe_routes=("caption", "interrogate"), lists_interrogators=False, known_failures=(_NANS, _SDNEXT_UPSCALE),
)
SDCPP = ServerProfile(
    key="sdcpp", family="sdcpp", name="stable-diffusion.cpp server", recorded="97d29908",
    clues=(OptionsWithin(frozenset({"samples_format", "sd_model_checkpoint"})),), model_switch=None,
    lora_in_prompt=False, clip_skip_as_field=True, takes_overrides=False, sends_n_iter=False, sends_image_flags=False,
    size_multiple=64, max_steps=100, needs_prompt=True, img2img_controls=False, sampler_aliases=SDCPP_SAMPLER_ALIASES,
    hires_steps_field="hr_steps", upscale=False, describe_routes=(), alwayson_extensions=False, refiner=False,
    extra_params=False, vae_route=None, styles=False, task_ids=False, progress="sdcpp-jobs",
)

# Detection order: the newer SD.Next before the older, the specific before the fallback (A1111, last).
PROFILES: tuple[ServerProfile, ...] = (SDNEXT, SDNEXT_2025, SDCPP, FORGE_CLASSIC, FORGE, A1111)
BY_KEY = {p.key: p for p in PROFILES}

def detect_server(client: WebUIClient, deadline: Deadline, options: Options | None = None) -> ServerProfile:
    options = options or client.options(deadline)
    keys = set(options.model_dump(exclude_none=True)) | set(options.model_extra or {})
    probe = _Probe(client, deadline, keys)
    profile = next(p for p in PROFILES if not p.clues or any(probe.matches(c) for c in p.clues))
    if profile.schedulers == "route" and client.get_optional("schedulers", deadline=deadline) is None:
        profile = replace(profile, schedulers=None)  # A1111 before 1.9: the schedule is part of the sampler name
    return profile


class _Probe:
    """Answers clues, fetching each route once."""

    def __init__(self, client: WebUIClient, deadline: Deadline, option_keys: set[str]) -> None:
        self.client, self.deadline, self.option_keys = client, deadline, option_keys
        self._routes: dict[str, object] = {}

    def _get(self, path: str) -> object:
        if path not in self._routes:
            self._routes[path] = self.client.get_optional(path, deadline=self.deadline)
        return self._routes[path]

    def matches(self, clue: Clue) -> bool:
        if isinstance(clue, OptionsWithin):
            return self.option_keys <= clue.keys
        if isinstance(clue, OptionKey):
            return any(key in self.option_keys for key in clue.keys)
        if isinstance(clue, Route):
            return self._get(clue.path) is not None
        version = self._get("version")
        if not isinstance(version, dict) or clue.app not in str(version.get("app", "")).lower():
            return False
        return not clue.since or str(version.get("updated") or "") >= clue.since


@contextmanager
def explained(server: ServerProfile) -> Iterator[None]:
    """A server failure this server is known for (``ServerProfile.known_failures``) said as its plain sentence."""
    try:
        yield
    except WebUIError as exc:
        detail = getattr(exc, "errors", "") or ""
        sentence = server.known_failure(str(detail)) if detail else None
        if sentence is None:
            raise
        raise ServerError(sentence, status=getattr(exc, "status", None), errors=detail) from None


# ------------------------------------------------------------------ the README's table


def _clue_text(clue: Clue) -> str:
    if isinstance(clue, VersionApp):
        return f"`/version` → `{clue.app}`" + (f", updated ≥ {clue.since}" if clue.since else "")
    if isinstance(clue, OptionsWithin):
        return f"`/options` with only {len(clue.keys)} keys"
    if isinstance(clue, OptionKey):
        return "`/options` has " + " or ".join(f"`{k}`" for k in clue.keys)
    return f"`/{clue.path}` answers"


def _yes(value: bool, no: str = "—") -> str:
    return "✓" if value else no


_ROWS: tuple[tuple[str, object], ...] = (
    ("Recorded", lambda p: p.recorded),
    ("Detected by", lambda p: " or ".join(_clue_text(c) for c in p.clues) or "otherwise"),
    ("Model switch", lambda p: {"options": "`POST /options` + override", "options+reload": "`/options` + `/reload-checkpoint` + override",
                                None: "one model, fixed at start-up"}[p.model_switch]),
    ("Scheduler", lambda p: {"route": "`scheduler` field", None: "none (in the sampler name)",
                             "sigma": "sigma algorithm (" + ("field + " if p.sigma_field else "") + "override)"}[p.schedulers]),
    ("LoRA", lambda p: ("prompt tags" if p.lora_in_prompt else "`lora` array") + (f"; checked in `{p.lora_evidence}`" if p.lora_evidence else "")),
    ("Clip skip", lambda p: "`clip_skip` field" if p.clip_skip_as_field else "override setting"),
    ("Hires fix", lambda p: ", ".join(filter(None, [
        "`hr_additional_modules` sent" if p.hires_modules else "",
        "`hr_resize_mode: 1` + `hr_force` sent, no latent upscalers" if p.hires_resize_mode else "",
        f"steps as `{p.hires_steps_field}`" if p.hires_steps_field != "hr_second_pass_steps" else "",
    ])) or "as asked"),
    ("Sizes", lambda p: f"multiples of {p.size_multiple}" + (f", ≤ {p.max_steps} steps" if p.max_steps else "")),
    ("Upscale tool", lambda p: _yes(p.upscale, "no route: refused plainly") + ("; its route fails: said plainly" if any(f is _SDNEXT_UPSCALE for f in p.known_failures) else "")),
    ("Describe image", lambda p: " then ".join(f"`/{r}`" for r in p.describe_routes) or "no route: refused plainly"),
    ("Inpainting controls", lambda p: "all" if p.img2img_controls else "mask and invert only"),
    ("ControlNet, ADetailer", lambda p: _yes(p.alwayson_extensions)),
    ("VAE list", lambda p: f"`/{p.vae_route}`" if p.vae_route else "—"),
    ("Progress", lambda p: {"internal": "`/internal/progress` (task id) or `/progress`", "sdnext-status": "`/status` + `/progress`",
                            "sdcpp-jobs": "native job API", None: "—"}[p.progress]),
    ("Images", lambda p: p.image_format),
)


def markdown_table(profiles: tuple[ServerProfile, ...] = PROFILES) -> str:
    """The README's server table: one column per profile, one row per behaviour."""
    ordered = sorted(profiles, key=lambda p: ("a1111", "forge", "forge-classic", "sdnext", "sdnext-2025", "sdcpp").index(p.key))
    lines = ["| | " + " | ".join(f"{p.name} (`{p.key}`)" for p in ordered) + " |",
             "|---" * (len(ordered) + 1) + "|"]
    for label, render in _ROWS:
        lines.append(f"| {label} | " + " | ".join(render(p) for p in ordered) + " |")  # type: ignore[operator]
    return "\n".join(lines)
