"""ControlNet, ADetailer, refiner, VAE, styles and extra parameters: reading, checking, and the request they add.

Three steps, so that nothing reaches the WebUI before everything is checked:

1. :func:`read_extension_settings` reads the tool parameters (no HTTP): ControlNet units,
   ADetailer, refiner, VAE, styles and the allow-listed ``extra_params``.
2. :func:`prepare` checks them against the server (before the generation and before any
   model switch): is the extension installed (its own routes answer), does the server
   list the model, module, VAE or style. Any problem is one sentence, with the closest names.
3. :meth:`RequestAdditions.apply` adds the result to the request the generation built.

Shapes follow the extensions' own code. ControlNet (Mikubill/sd-webui-controlnet and Forge's
built-in sd_forge_controlnet): ``alwayson_scripts["ControlNet"]["args"]`` is a list of unit
objects (``ControlNetUnit.from_dict``). ADetailer (Bing-su/adetailer):
``alwayson_scripts["ADetailer"]["args"] = [enable, skip_img2img, {ADetailerArgs}]``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sdwebui import checkpoints
from sdwebui.catalog import Catalog
from sdwebui.deadline import Deadline
from sdwebui.errors import InvalidInput, NotFound, Unsupported, quoted
from sdwebui.extra_params import read_extra_params
from sdwebui.images import decode_image_base64
from sdwebui.models import GenerationResponse, Txt2ImgRequest
from sdwebui.names import normalise, unknown_name
from sdwebui.servers import ServerProfile
from sdwebui.settings import read_bool, read_choice, read_float, read_option, read_text

CONTROLNET_SCRIPT = "ControlNet"
ADETAILER_SCRIPT = "ADetailer"
CONTROLNET_SLOTS = ("controlnet", "controlnet2")  # parameter prefixes of unit 1 and unit 2

# The extensions' enum values (scripts/enums.py in both ControlNets); both accept them as strings.
CONTROL_MODES = {"balanced": "Balanced", "prompt": "My prompt is more important", "controlnet": "ControlNet is more important"}
CONTROLNET_RESIZE_MODES = {"just_resize": "Just Resize", "crop_and_resize": "Crop and Resize", "resize_and_fill": "Resize and Fill"}

CONTROLNET_MISSING = (
    "ControlNet is not installed on this WebUI; install the sd-webui-controlnet extension (Forge has it built in), "
    "put ControlNet models in models/ControlNet and restart the WebUI, or leave the ControlNet fields empty."
)
ADETAILER_MISSING = (
    "ADetailer is not installed on this WebUI; install the ADetailer extension (Bing-su/adetailer) and restart "
    "the WebUI, or turn ADetailer off."
)


# ---------------------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class ControlNetUnitSettings:
    slot: int  # 1 or 2, as numbered in the form
    image: str  # raw base64
    model: str
    module: str = "none"
    weight: float = 1.0
    guidance_start: float = 0.0
    guidance_end: float = 1.0
    control_mode: str = "Balanced"
    resize_mode: str = "Crop and Resize"
    pixel_perfect: bool = False


@dataclass(frozen=True)
class ADetailerSettings:
    model: str
    prompt: str = ""
    negative_prompt: str = ""
    denoising_strength: float = 0.4


@dataclass(frozen=True)
class ExtensionSettings:
    """Everything beyond the shared sampling settings; the default asks for nothing and costs no request."""

    controlnet: tuple[ControlNetUnitSettings, ...] = ()
    return_maps: bool = False
    adetailer: ADetailerSettings | None = None
    refiner: str = ""
    refiner_switch_at: float = 0.8
    vae: str = ""
    styles: tuple[str, ...] = ()
    extra_params: dict[str, Any] = field(default_factory=dict)


ImageReader = Callable[[str, str], str | None]  # (parameter name, what) -> raw base64, or None when not given


def _given(value: Any) -> bool:
    return value not in (None, "", [], {})


def _read_unit(params: Mapping[str, Any], prefix: str, slot: int) -> dict[str, Any] | None:
    """One unit's controls, checked; ``None`` when the unit is not used. The image is fetched later."""
    model = read_choice(params, f"{prefix}_model")
    has_image = _given(params.get(f"{prefix}_image"))
    if not model and not has_image:
        return None
    unit = f"ControlNet unit {slot}"
    if not model:
        raise InvalidInput(f"{unit} has a control image but no model; pick a ControlNet model (list_resources lists them as controlnet_models).")
    if not has_image:
        raise InvalidInput(
            f"{unit} has a model but no control image; give an image file (a photo to preprocess, or a ready-made "
            "pose or depth map with the preprocessor 'none')."
        )
    start = read_float(params, f"{prefix}_guidance_start", 0.0, low=0.0, high=1.0)
    end = read_float(params, f"{prefix}_guidance_end", 1.0, low=0.0, high=1.0)
    if start > end:
        raise InvalidInput(f"{unit} starts its guidance ({start:g}) after it ends ({end:g}); make the start smaller than the end.")
    return dict(
        slot=slot,
        model=model,
        module=read_choice(params, f"{prefix}_module") or "none",
        weight=read_float(params, f"{prefix}_weight", 1.0, low=0.0, high=2.0),
        guidance_start=start,
        guidance_end=end,
        control_mode=read_option(params, f"{prefix}_control_mode", CONTROL_MODES, "balanced"),
        resize_mode=read_option(params, f"{prefix}_resize_mode", CONTROLNET_RESIZE_MODES, "crop_and_resize"),
        pixel_perfect=read_bool(params, f"{prefix}_pixel_perfect", False),
    )


def _read_adetailer(params: Mapping[str, Any]) -> ADetailerSettings | None:
    if not read_bool(params, "adetailer", False):
        return None
    return ADetailerSettings(
        model=read_choice(params, "adetailer_model") or "face_yolov8n.pt",
        prompt=read_text(params, "adetailer_prompt"),
        negative_prompt=read_text(params, "adetailer_negative_prompt"),
        denoising_strength=read_float(params, "adetailer_denoising_strength", 0.4, low=0.0, high=1.0),
    )


def _split_names(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(n.strip() for n in text.replace(";", ",").split(",") if n.strip()))


def read_extension_settings(params: Mapping[str, Any], *, mode: str, read_image: ImageReader) -> ExtensionSettings:
    """Every extension control, checked without any HTTP call; control images are fetched last."""
    units = [u for slot, prefix in enumerate(CONTROLNET_SLOTS, 1) if (u := _read_unit(params, prefix, slot))]
    style_names = _split_names(read_text(params, "style_name")) or _split_names(read_choice(params, "style"))
    settings = dict(
        return_maps=read_bool(params, "controlnet_return_maps", False),
        adetailer=_read_adetailer(params),
        refiner=read_choice(params, "refiner"),
        refiner_switch_at=read_float(params, "refiner_switch_at", 0.8, low=0.01, high=1.0),
        vae=read_choice(params, "vae"),
        styles=style_names,
        extra_params=read_extra_params(params, mode=mode),
    )
    controlnet = []
    for unit in units:  # only now: every cheap check above has passed
        prefix = CONTROLNET_SLOTS[unit["slot"] - 1]
        image = read_image(f"{prefix}_image", f"ControlNet unit {unit['slot']} image")
        controlnet.append(ControlNetUnitSettings(image=image or "", **unit))
    return ExtensionSettings(controlnet=tuple(controlnet), **settings)


# ---------------------------------------------------------------------------------------------- checks


def closest(kind: str, name: str, available: list[str]) -> NotFound:
    """:func:`sdwebui.names.unknown_name`, comparing without case and ``[hash]`` suffixes, then by substring."""
    keys = {_strip_hash(a).lower(): a for a in available}  # compare without case and "[hash]" suffixes
    wanted = _strip_hash(name).lower()
    close = [keys[k] for k in difflib.get_close_matches(wanted, list(keys), n=3, cutoff=0.4)]
    close = close or [a for k, a in keys.items() if wanted in k or k in wanted][:3]
    return unknown_name(kind, name, available, close)


def _strip_hash(name: str) -> str:
    """'control_v11p_sd15_canny [d14c016b]' -> 'control_v11p_sd15_canny'."""
    return name.rsplit(" [", 1)[0] if name.endswith("]") else name


def resolve_name(kind: str, name: str, available: list[str], *, hashless: bool = False) -> str:
    """The server's own spelling of ``name`` (case, spaces and ``[hash]`` suffix forgiven)."""
    wanted = normalise(name)
    for candidate in available:
        if normalise(candidate) == wanted or (hashless and normalise(_strip_hash(candidate)) == normalise(_strip_hash(name))):
            return candidate
    raise closest(kind, name, [a for a in available if a.lower() != "none"] or available)


@dataclass
class RequestAdditions:
    """What the extensions add to one txt2img/img2img request, all names already resolved."""

    fields: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)
    alwayson_scripts: dict[str, Any] = field(default_factory=dict)
    extra_params: dict[str, Any] = field(default_factory=dict)
    return_maps: bool = False
    controlnet_units: list[str] = field(default_factory=list)  # "unit 1 (openpose, control_…)", one per unit sent

    def apply[R: Txt2ImgRequest](self, request: R) -> R:
        update: dict[str, Any] = dict(self.fields)
        if self.alwayson_scripts:
            update["alwayson_scripts"] = self.alwayson_scripts
        if self.overrides:
            update["override_settings"] = {**(request.override_settings or {}), **self.overrides}
            update["override_settings_restore_afterwards"] = False
        if self.extra_params:
            update["extra_params"] = dict(self.extra_params)
        return request.model_copy(update=update) if update else request


def _require(server: ServerProfile, what: str, supported: object, why: str = "") -> None:
    if not supported:
        raise Unsupported(f"{what} is not supported by {server.name}{why}; leave it empty for this server.")


def prepare(catalog: Catalog, server: ServerProfile, settings: ExtensionSettings, deadline: Deadline) -> RequestAdditions:
    """Check every extension setting against the server and build what the request gets. No POST is made."""
    additions = RequestAdditions(extra_params=settings.extra_params, return_maps=settings.return_maps)
    if settings.extra_params:
        _require(server, "The extra_params field", server.extra_params, " (it silently ignores the fields it does not read)")
    if settings.controlnet:
        _require(server, "ControlNet", server.alwayson_extensions, " (it has its own control API, which this plugin does not use)")
        units = _controlnet_units(catalog, settings, deadline)
        additions.alwayson_scripts[CONTROLNET_SCRIPT] = {"args": units}
        additions.controlnet_units = [f"ControlNet unit {u.slot} ({m['module']}, {m['model']})" for u, m in zip(settings.controlnet, units)]
    if settings.adetailer is not None:
        _require(server, "ADetailer", server.alwayson_extensions)
        additions.alwayson_scripts[ADETAILER_SCRIPT] = {"args": _adetailer_args(catalog, settings.adetailer, deadline)}
    if settings.refiner:
        _require(server, "The refiner", server.refiner, " (it needs A1111 1.6+ or Forge)")
        model = checkpoints.resolve_model(settings.refiner, catalog.models(deadline))
        additions.fields.update(refiner_checkpoint=model.title, refiner_switch_at=settings.refiner_switch_at)
    if settings.vae:
        _require(server, "Choosing a VAE", server.vae_route)
        additions.overrides.update(_vae_override(catalog, server, settings.vae, deadline))
    if settings.styles:
        _require(server, "Prompt styles", server.styles)
        available = [s.name for s in catalog.styles(deadline) or []]
        if not available:
            raise NotFound("The WebUI has no saved prompt styles; save one in its UI (styles.csv) first, or leave the style empty.")
        additions.fields["styles"] = [resolve_name("prompt style", n, available) for n in settings.styles]
    return additions


def _controlnet_units(catalog: Catalog, settings: ExtensionSettings, deadline: Deadline) -> list[dict[str, Any]]:
    models = catalog.controlnet_models(deadline)
    if models is None:
        raise Unsupported(CONTROLNET_MISSING)
    modules = catalog.controlnet_modules(deadline) or []
    units = []
    for unit in settings.controlnet:
        model = resolve_name(f"ControlNet model (unit {unit.slot})", unit.model, [m for m in models if m.lower() != "none"], hashless=True)
        # 'none' uses the image as a ready-made control map; each server spells it its own way ("none"/"None").
        module = resolve_name(f"ControlNet preprocessor (unit {unit.slot})", unit.module, modules) if modules else unit.module
        # Always asked for: a unit that ran returns its map, a skipped one none; the only evidence either way
        # (fixtures a1111/controlnet/ and forge/webui_mode/ *_save_detected_map_ran vs *_skipped_*).
        units.append(controlnet_unit(unit, model=model, module=module, save_detected_map=True))
    return units


def controlnet_unit(unit: ControlNetUnitSettings, *, model: str, module: str, save_detected_map: bool) -> dict[str, Any]:
    """One ControlNet unit object, as both ControlNets' ``ControlNetUnit.from_dict`` read it."""
    return {
        "enabled": True,
        "image": unit.image,
        "module": module,
        "model": model,
        "weight": unit.weight,
        "guidance_start": unit.guidance_start,
        "guidance_end": unit.guidance_end,
        "control_mode": unit.control_mode,
        "resize_mode": unit.resize_mode,
        "pixel_perfect": unit.pixel_perfect,
        "save_detected_map": save_detected_map,
    }


def _adetailer_args(catalog: Catalog, adetailer: ADetailerSettings, deadline: Deadline) -> list[Any]:
    models = catalog.adetailer_models(deadline)
    if models is None:
        raise Unsupported(ADETAILER_MISSING)
    model = resolve_name("ADetailer model", adetailer.model, [m for m in models if m.lower() != "none"])
    return adetailer_args(adetailer, model=model)


def adetailer_args(adetailer: ADetailerSettings, *, model: str) -> list[Any]:
    """``[enable, skip_img2img, {ADetailerArgs}]``; every key is an ``ADetailerArgs`` field (extra=forbid)."""
    return [
        True,
        False,
        {
            "ad_model": model,
            "ad_prompt": adetailer.prompt,
            "ad_negative_prompt": adetailer.negative_prompt,
            "ad_denoising_strength": adetailer.denoising_strength,
        },
    ]


def _vae_override(catalog: Catalog, server: ServerProfile, name: str, deadline: Deadline) -> dict[str, Any]:
    """A1111/SD.Next: ``sd_vae`` (a name from /sd-vae). Forge: ``forge_additional_modules`` (paths from /sd-modules)."""
    forge = server.vae_route == "sd-modules"
    if name.lower() in ("automatic", "none"):
        return {"forge_additional_modules": []} if forge else {"sd_vae": "Automatic" if name.lower() == "automatic" else "None"}
    entries = catalog.vaes(deadline, server) or []
    if not entries:
        folder = "models/VAE (or models/text_encoder)" if forge else "models/VAE"
        raise NotFound(f"The WebUI lists no VAE, so {quoted(name)} cannot be used; put the file in {folder} and refresh.")
    by_name = {e.model_name: e for e in entries}
    stems = {e.model_name.rsplit(".", 1)[0]: e for e in entries}
    wanted = next((e for n, e in {**stems, **by_name}.items() if normalise(n) == normalise(name)), None)
    if wanted is None:
        raise closest("VAE", name, list(by_name))
    if forge:
        return {"forge_additional_modules": [wanted.filename or wanted.model_name]}
    return {"sd_vae": wanted.model_name}


# ---------------------------------------------------------------------------------------------- detected maps


@dataclass(frozen=True)
class DetectedMap:
    """A ControlNet preprocessor's output that the WebUI appended after the generated images."""

    data: bytes
    mime_type: str
    extension: str
    index: int

    @property
    def filename(self) -> str:
        return f"controlnet-map-{self.index + 1}.{self.extension}"


def count_maps(response: GenerationResponse) -> int | None:
    """How many images came after the generated ones; ``None`` when they cannot be told apart (no seeds listed)."""
    info = response.info
    if not info.all_seeds:
        return None
    return max(0, len(response.images) - max(0, info.index_of_first_image) - len(info.all_seeds))


def controlnet_warnings(units: list[str], maps: int | None) -> list[str]:
    """A warning for each ControlNet unit that returned no detected map, so probably did not run.

    Both real ControlNets answer 200 with an image made without control when a unit cannot run (a preprocessor
    whose weights cannot be downloaded, a model that does not load), and the infotext still lists the unit.
    """
    if not units or maps is None or maps >= len(units):
        return []
    cause = ("its preprocessor's weights could not be downloaded or its model did not load; check the WebUI console, "
             "or use a ready-made control image with the preprocessor None")
    if maps == 0:
        return [f"{unit} returned no detected map, so it probably did not run and the image was made without it: {cause}."
                for unit in units]
    return [f"Only {maps} of {len(units)} ControlNet units returned a detected map, so {len(units) - maps} probably did "
            f"not run ({', '.join(units)}): {cause}."]


def decode_maps(response: GenerationResponse) -> list[DetectedMap]:
    """The images after the generated ones (``index_of_first_image + len(all_seeds)`` on); call before decode_images."""
    info = response.info
    if not info.all_seeds:  # without it the generated images cannot be told from the maps
        return []
    first_after = max(0, info.index_of_first_image) + len(info.all_seeds)
    maps = []
    for index, encoded in enumerate(response.images[first_after:]):
        data, mime, ext = decode_image_base64(encoded)
        maps.append(DetectedMap(data=data, mime_type=mime, extension=ext, index=index))
    return maps
