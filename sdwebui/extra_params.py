"""The optional ``extra_params`` JSON object: WebUI request fields the tools have no parameter for.

Only keys of the WebUI's own request model are merged into the request, so a typo
fails here with one sentence instead of being silently ignored by the server
(every server drops unknown keys). Keys the plugin sets itself are refused too:
they have their own parameters, and letting JSON override them would bypass the
checks made on those (model, names, sizes, images, scripts).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sdwebui.errors import InvalidInput
from sdwebui.settings import read_text

# Fields of A1111 1.6's request models (StableDiffusionProcessingTxt2Img / ...Img2Img in its openapi.json)
# that the plugin has no parameter for, plus later additions from the API notes §3.2: hr_scheduler (A1111 1.9+),
# distilled_cfg_scale, hr_cfg, hr_distilled_cfg (Forge). Checked in, never read from a server at run time.
COMMON_EXTRA_KEYS: tuple[str, ...] = (
    "subseed",
    "subseed_strength",
    "seed_resize_from_h",
    "seed_resize_from_w",
    "restore_faces",
    "tiling",
    "eta",
    "s_min_uncond",
    "s_churn",
    "s_tmax",
    "s_tmin",
    "s_noise",
    "disable_extra_networks",
    "comments",
    "distilled_cfg_scale",
)
TXT2IMG_EXTRA_KEYS: tuple[str, ...] = COMMON_EXTRA_KEYS + (
    "firstphase_width",
    "firstphase_height",
    "hr_resize_x",
    "hr_resize_y",
    "hr_checkpoint_name",
    "hr_sampler_name",
    "hr_scheduler",
    "hr_prompt",
    "hr_negative_prompt",
    "hr_cfg",
    "hr_distilled_cfg",
)
IMG2IMG_EXTRA_KEYS: tuple[str, ...] = COMMON_EXTRA_KEYS + (
    "image_cfg_scale",
    "mask_blur_x",
    "mask_blur_y",
    "initial_noise_multiplier",
)

# The rest of those request models: set by the plugin from its own parameters (or never to be sent).
OWNED_KEYS: tuple[str, ...] = (
    "prompt",
    "negative_prompt",
    "styles",
    "seed",
    "sampler_name",
    "sampler_index",
    "scheduler",
    "batch_size",
    "n_iter",
    "steps",
    "cfg_scale",
    "width",
    "height",
    "clip_skip",
    "lora",
    "denoising_strength",
    "enable_hr",
    "hr_scale",
    "hr_upscaler",
    "hr_second_pass_steps",
    "hr_steps",  # stable-diffusion.cpp's name for hr_second_pass_steps
    "hr_additional_modules",  # Forge: set with hires fix
    "hr_resize_mode", "hr_force",  # SD.Next 2026: set with hires fix
    "schedulers_sigma",  # SD.Next 2026: set from the scheduler
    "refiner_checkpoint",
    "refiner_switch_at",
    "override_settings",
    "override_settings_restore_afterwards",
    "do_not_save_samples",
    "do_not_save_grid",
    "script_name",
    "script_args",
    "alwayson_scripts",
    "send_images",
    "save_images",
    "init_images",
    "mask",
    "latent_mask",
    "include_init_images",
    "resize_mode",
    "mask_blur",
    "inpainting_fill",
    "inpaint_full_res",
    "inpaint_full_res_padding",
    "inpainting_mask_invert",
)

EXAMPLE = '{"subseed": 42, "subseed_strength": 0.3, "tiling": true}'


def allowed_keys(mode: str) -> tuple[str, ...]:
    return IMG2IMG_EXTRA_KEYS if mode == "img2img" else TXT2IMG_EXTRA_KEYS


def read_extra_params(params: Mapping[str, Any], *, mode: str) -> dict[str, Any]:
    """The checked ``extra_params`` object (empty when not given); one sentence for any problem."""
    name = "extra_params"
    value = params.get(name)
    if isinstance(value, Mapping):  # a workflow may pass an object straight through
        data: Any = dict(value)
    else:
        text = read_text(params, name)
        if not text:
            return {}
        try:
            data = json.loads(text)
        except ValueError as exc:
            reason = getattr(exc, "msg", str(exc))
            raise InvalidInput(f"{name} is not valid JSON ({reason}); write one object such as {EXAMPLE}.") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{name} must be a JSON object such as {EXAMPLE}; got {type(data).__name__}.")
    owned = [k for k in data if k in OWNED_KEYS]
    if owned:
        raise InvalidInput(
            f"{name} may not set {', '.join(owned)}: the plugin sets {'it' if len(owned) == 1 else 'them'} "
            "from its own parameters, so use those instead."
        )
    allowed = allowed_keys(mode)
    unknown = [k for k in data if k not in allowed]
    if unknown:
        raise InvalidInput(
            f"{name} has key{'s' if len(unknown) > 1 else ''} the WebUI's {mode} does not accept: {', '.join(unknown)}; "
            f"allowed keys are {', '.join(allowed)}."
        )
    return data
