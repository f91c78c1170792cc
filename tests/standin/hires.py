"""Hires fix and image sizes as A1111 1.10 and Forge really answer them, for the stand-in WebUI.

Shaped on the real Forge recordings in ``tests/fixtures/forge/``:

- ``bad_txt2img_hires_without_hr_additional_modules.json``: Forge's txt2img with ``enable_hr: true`` and no
  ``hr_additional_modules`` (or null) fails with 500 ``TypeError: argument of type 'NoneType' is not iterable``
  (its code does ``'Use same choices' in p.hr_additional_modules``). A1111 has no such field and ignores it.
- ``post_txt2img_hires_with_hr_additional_modules*.json`` and ``post_txt2img_hires_hr_additional_modules_empty*``:
  with ``["Use same choices"]`` or ``[]`` it works; ``extra_generation_params`` then holds, in this order,
  ``Denoising strength``, ``Hires Module 1`` (the module, or ``Built-in`` for ``[]``), ``Hires prompt``,
  ``Hires negative prompt``, ``Hires CFG Scale``, ``Hires Distilled CFG Scale``, ``Hires schedule type``,
  ``Hires upscale``, ``Hires steps`` (only when set), ``Hires upscaler``; ``None`` values stay out of the infotext.
  ``info.width/height`` keep the first-pass size while the image is upscaled (64x64 x1.5 -> a 96x96 image).
- ``post_txt2img_size_not_multiple_of_8.json``: a size that is not a multiple of 8 is rounded DOWN in the image
  (100x60 -> 96x56) while ``info`` and the infotext keep 100x60.
"""

from __future__ import annotations

from typing import Any

FORGE_HIRES_TYPE_ERROR = "argument of type 'NoneType' is not iterable"


def round_down_8(size: tuple[int, int]) -> tuple[int, int]:
    """The size of the latent times 8: what A1111, Forge and SD.Next really generate."""
    return max(8, size[0] // 8 * 8), max(8, size[1] // 8 * 8)


def forge_hires_modules_missing(params: dict[str, Any]) -> bool:
    """True when Forge would fail on ``'Use same choices' in None``."""
    return params.get("hr_additional_modules") is None


def hires_extra_params(params: dict[str, Any], forge: bool) -> dict[str, Any]:
    """The hires part of ``extra_generation_params``, in the recorded order (denoising strength first)."""
    extra: dict[str, Any] = {"Denoising strength": params["denoising_strength"]}
    if forge:
        modules = params.get("hr_additional_modules") or ["Built-in"]
        extra.update({f"Hires Module {i}": module for i, module in enumerate(modules, start=1)})
    extra.update({"Hires prompt": None, "Hires negative prompt": None})
    if forge:
        extra.update({"Hires CFG Scale": params.get("hr_cfg", 1.0), "Hires Distilled CFG Scale": None})
    extra["Hires schedule type"] = None
    extra["Hires upscale"] = params.get("hr_scale")
    if params.get("hr_second_pass_steps"):
        extra["Hires steps"] = params["hr_second_pass_steps"]
    extra["Hires upscaler"] = params.get("hr_upscaler") or "Latent"
    return extra
