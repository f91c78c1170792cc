"""Reading tool parameters into checked settings, before any HTTP call.

Values reach a tool from a form, a workflow variable or an LLM, so a number may
arrive as ``512``, ``512.0``, ``"512"`` or ``"abc"``. Every reader here accepts the
reasonable forms and refuses the rest with one sentence naming the parameter,
the allowed range and what was given. txt2img and img2img share
:func:`read_sampling`, so the controls are parsed in one place.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from sdwebui.errors import InvalidInput, quoted

MIN_SIZE, MAX_SIZE = 64, 2048
MAX_STEPS = 150
MAX_BATCH = 8
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class Preset:
    steps: int
    cfg_scale: float
    sampler: str
    scheduler: str | None
    width: int
    height: int


# The community's usual starting points; any explicit parameter overrides them.
PRESETS: dict[str, Preset] = {
    "fast": Preset(steps=20, cfg_scale=7.0, sampler="Euler a", scheduler=None, width=512, height=512),
    "quality": Preset(steps=30, cfg_scale=10.0, sampler="DPM++ 2M", scheduler="karras", width=768, height=768),
    "artistic": Preset(steps=25, cfg_scale=9.0, sampler="DDIM", scheduler=None, width=512, height=768),
}
# Without a preset: what suits SD 1.5. The sampler is left to the server's default.
BASE = Preset(steps=20, cfg_scale=7.0, sampler="", scheduler=None, width=512, height=512)


@dataclass(frozen=True)
class Hires:
    scale: float
    upscaler: str  # "" = the server's default latent mode
    second_pass_steps: int
    denoising_strength: float


@dataclass(frozen=True)
class SamplingSettings:
    """The generation controls shared by txt2img and img2img."""

    prompt: str
    negative_prompt: str = ""
    width: int = BASE.width
    height: int = BASE.height
    steps: int = BASE.steps
    cfg_scale: float = BASE.cfg_scale
    seed: int = -1
    batch_size: int = 1
    model: str = ""
    sampler: str = ""
    scheduler: str = ""
    loras: str = ""
    clip_skip: int | None = None
    hires: Hires | None = None
    size_given: bool = field(default=False, compare=False)  # img2img follows the input size otherwise

    def with_size(self, width: int, height: int) -> SamplingSettings:
        return replace(self, width=width, height=height)


def is_given(params: Mapping[str, Any], name: str) -> bool:
    value = params.get(name)
    return value is not None and not (isinstance(value, str) and not value.strip())


MAX_TEXT_CHARS = 20_000  # far above what CLIP uses; keeps every message line well under Dify's 5 MiB


def read_text(params: Mapping[str, Any], name: str, *, required: bool = False, label: str | None = None) -> str:
    value = params.get(name)
    if value is None:
        value = ""
    if not isinstance(value, str):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        else:
            raise InvalidInput(f"{label or name} must be text; got {type(value).__name__}.")
    value = value.strip()
    if len(value) > MAX_TEXT_CHARS:
        raise InvalidInput(f"{label or name} is {len(value):,} characters long, more than the {MAX_TEXT_CHARS:,} allowed; shorten it.")
    if required and not value:
        raise InvalidInput(f"{label or name} is empty; describe the image to generate, for example 'a red fox in the snow, watercolor'.")
    return value


# The value of a dropdown's only option when the server lists nothing for it ("None: this WebUI lists no
# LoRAs"): an empty dropdown looks broken, so it says why instead. Choosing it chooses nothing.
NOTHING_LISTED = "(none)"


def read_choice(params: Mapping[str, Any], name: str) -> str:
    """A name chosen from a list: the free-text ``<name>_name`` wins over the ``<name>`` dropdown.

    Dynamic dropdowns are broken in some Dify versions, so every choice also has a text field.
    """
    return read_text(params, f"{name}_name") or _picked(params, name)


def _picked(params: Mapping[str, Any], name: str) -> str:
    value = read_text(params, name)
    return "" if value == NOTHING_LISTED else value


def read_number(params: Mapping[str, Any], name: str) -> float | None:
    value = params.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise InvalidInput(f"{name} must be a number; got {value}.")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise InvalidInput(f"{name} must be a number; got {quoted(value)}.") from None
    if not isinstance(value, (int, float)):
        raise InvalidInput(f"{name} must be a number; got {type(value).__name__}.")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput(f"{name} must be a finite number; got {value}.")
    return value


def read_int(params: Mapping[str, Any], name: str, default: int | None, *, low: int, high: int, multiple_of: int = 1) -> int | None:
    value = read_number(params, name)
    if value is None:
        return default
    if value != int(value):
        raise InvalidInput(f"{name} must be a whole number between {low} and {high}; got {value}.")
    value = int(value)
    if not low <= value <= high:
        raise InvalidInput(f"{name} must be between {low} and {high}; got {value}.")
    if value % multiple_of:
        lower = value - value % multiple_of
        raise InvalidInput(f"{name} must be a multiple of {multiple_of}; got {value} (try {max(lower, low)} or {lower + multiple_of}).")
    return value


def read_float(params: Mapping[str, Any], name: str, default: float | None, *, low: float, high: float) -> float | None:
    value = read_number(params, name)
    if value is None:
        return default
    if not low <= value <= high:
        raise InvalidInput(f"{name} must be between {low:g} and {high:g}; got {value:g}.")
    return float(value)


def read_bool(params: Mapping[str, Any], name: str, default: bool = False) -> bool:
    value = params.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "yes", "y", "1", "on"):
        return True
    if text in ("false", "no", "n", "0", "off"):
        return False
    raise InvalidInput(f"{name} must be true or false; got {quoted(value)}.")


def read_loras(params: Mapping[str, Any]) -> str:
    """The LoRAs field, plus the one picked from the LoRA dropdown at its weight."""
    text = read_text(params, "loras")
    picked = _picked(params, "lora")
    if picked:
        weight = read_float(params, "lora_weight", 0.8, low=-4.0, high=4.0)
        text = ", ".join(t for t in (text, f"{picked}:{weight:g}") if t)
    return text


def read_preset(params: Mapping[str, Any]) -> Preset:
    name = read_text(params, "preset").lower()
    if name in ("", "none", "custom"):
        return BASE
    if name not in PRESETS:
        raise InvalidInput(f"preset must be one of: none, {', '.join(PRESETS)}; got {quoted(name)}.")
    return PRESETS[name]


def read_sampling(params: Mapping[str, Any], *, prompt_required: bool = True) -> SamplingSettings:
    """Every shared sampling control, checked; preset values fill only what was not given."""
    preset = read_preset(params)
    size = {"low": MIN_SIZE, "high": MAX_SIZE, "multiple_of": 8}
    hires = None
    if read_bool(params, "enable_hr"):
        hires = Hires(
            scale=read_float(params, "hr_scale", 2.0, low=1.0, high=4.0),
            upscaler=read_choice(params, "hr_upscaler"),  # "": the server's own latent default
            second_pass_steps=read_int(params, "hr_second_pass_steps", 0, low=0, high=MAX_STEPS),
            denoising_strength=read_float(params, "denoising_strength", 0.5, low=0.0, high=1.0),
        )
    return SamplingSettings(
        prompt=read_text(params, "prompt", required=prompt_required),
        negative_prompt=read_text(params, "negative_prompt"),
        width=read_int(params, "width", preset.width, **size),
        height=read_int(params, "height", preset.height, **size),
        steps=read_int(params, "steps", preset.steps, low=1, high=MAX_STEPS),
        cfg_scale=read_float(params, "cfg_scale", preset.cfg_scale, low=1.0, high=30.0),
        seed=read_int(params, "seed", -1, low=-1, high=MAX_SEED),
        batch_size=read_int(params, "batch_size", 1, low=1, high=MAX_BATCH),
        model=read_choice(params, "model"),
        sampler=read_choice(params, "sampler") or preset.sampler,
        scheduler=read_choice(params, "scheduler") or (preset.scheduler or ""),
        loras=read_loras(params),
        clip_skip=read_int(params, "clip_skip", None, low=1, high=12),
        hires=hires,
        size_given=is_given(params, "width") or is_given(params, "height"),
    )


# img2img / inpainting --------------------------------------------------------

RESIZE_MODES = {"just_resize": 0, "crop_and_resize": 1, "resize_and_fill": 2, "latent_upscale": 3}
INPAINTING_FILLS = {"fill": 0, "original": 1, "latent_noise": 2, "latent_nothing": 3}
INPAINT_AREAS = {"whole_picture": False, "only_masked": True}


@dataclass(frozen=True)
class Img2ImgControls:
    denoising_strength: float = 0.75
    resize_mode: int = 0
    mask_blur: int = 4
    inpainting_fill: int = 1
    only_masked: bool = False  # the UI's default; the API's default is "only masked", so it is always sent
    padding: int = 32
    invert_mask: bool = False


def read_option(params: Mapping[str, Any], name: str, table: Mapping[str, Any], default: str) -> Any:
    key = read_text(params, name).lower().replace(" ", "_") or default
    if key not in table:
        raise InvalidInput(f"{name} must be one of: {', '.join(table)}; got {quoted(key)}.")
    return table[key]


def read_img2img_controls(params: Mapping[str, Any]) -> Img2ImgControls:
    return Img2ImgControls(
        denoising_strength=read_float(params, "denoising_strength", 0.75, low=0.0, high=1.0),
        resize_mode=read_option(params, "resize_mode", RESIZE_MODES, "just_resize"),
        mask_blur=read_int(params, "mask_blur", 4, low=0, high=64),
        inpainting_fill=read_option(params, "inpainting_fill", INPAINTING_FILLS, "original"),
        only_masked=read_option(params, "inpaint_area", INPAINT_AREAS, "whole_picture"),
        padding=read_int(params, "inpaint_padding", 32, low=0, high=256),
        invert_mask=read_bool(params, "invert_mask", False),
    )


# upscaling -------------------------------------------------------------------

MAX_UPSCALE_SIZE = 8192


@dataclass(frozen=True)
class UpscaleSettings:
    upscaler: str  # "" = the server's best available
    scale: float = 2.0
    width: int | None = None  # with height: upscale to this size instead of by a factor
    height: int | None = None


def read_upscale(params: Mapping[str, Any]) -> UpscaleSettings:
    width = read_int(params, "target_width", None, low=MIN_SIZE, high=MAX_UPSCALE_SIZE)
    height = read_int(params, "target_height", None, low=MIN_SIZE, high=MAX_UPSCALE_SIZE)
    if (width is None) != (height is None):
        raise InvalidInput("Give both target_width and target_height to upscale to a size, or neither to upscale by the scale factor.")
    return UpscaleSettings(
        upscaler=read_choice(params, "upscaler"),
        scale=read_float(params, "scale", 2.0, low=1.0, high=8.0),
        width=width,
        height=height,
    )


def read_resource_kinds(params: Mapping[str, Any], allowed: tuple[str, ...]) -> list[str]:
    text = read_text(params, "kinds").lower()
    kinds = [k.strip() for k in text.replace(";", ",").split(",") if k.strip()]
    unknown = [k for k in kinds if k not in allowed]
    if unknown:
        raise InvalidInput(f"kinds may only name {', '.join(allowed)}; got {quoted(', '.join(unknown))}.")
    return kinds or list(allowed)


OVERSIZE_FORMATS = ("none", "webp", "jpeg")


def read_oversize_format(params: Mapping[str, Any]) -> str:
    """What to do when the images exceed the output limit: "" (fail), "webp" or "jpeg"."""
    value = read_text(params, "oversize_format").lower() or "none"
    if value not in OVERSIZE_FORMATS:
        raise InvalidInput(f"oversize_format must be one of: {', '.join(OVERSIZE_FORMATS)}; got {quoted(value)}.")
    return "" if value == "none" else value
