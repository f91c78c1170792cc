"""Typed shapes of what goes to and comes from ``/sdapi/v1``.

Shapes follow real exchanges recorded from a Forge server (tests/fixtures/forge)
and the A1111 / SD.Next / stable-diffusion.cpp differences in the API notes.
Responses ignore unknown keys, so a newer server that adds fields still parses.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sdwebui.errors import MalformedResponse


class _Response(BaseModel):
    model_config = ConfigDict(extra="ignore")


class SDModel(_Response):
    """One entry of ``GET /sd-models``."""

    title: str
    model_name: str = ""
    hash: str | None = None
    sha256: str | None = None
    filename: str | None = None


class Sampler(_Response):
    name: str
    aliases: list[str] | None = None
    options: dict[str, Any] = Field(default_factory=dict)


class Scheduler(_Response):
    name: str
    label: str | None = None
    aliases: list[str] | None = None


class Lora(_Response):
    """``GET /loras``: A1111/Forge give name, alias, path, metadata; sd.cpp gives name and path."""

    name: str
    alias: str | None = None
    path: str | None = None


class Upscaler(_Response):
    name: str
    scale: float | None = None


class LatentUpscaleMode(_Response):
    name: str


class VaeEntry(_Response):
    """``GET /sd-vae`` (A1111, SD.Next) and Forge's ``GET /sd-modules``: VAEs and text encoders."""

    model_name: str
    filename: str | None = None


class PromptStyle(_Response):
    """``GET /prompt-styles``."""

    name: str
    prompt: str | None = None
    negative_prompt: str | None = None


class GenerationInfo(_Response):
    """The ``info`` JSON string of a txt2img/img2img response, parsed.

    SD.Next leaves out ``sd_model_name`` and ``version``; sd.cpp leaves out a few more.
    """

    seed: int | None = None
    all_seeds: list[int] = Field(default_factory=list)
    index_of_first_image: int = 0
    sd_model_name: str | None = None
    sd_model_hash: str | None = None
    sampler_name: str | None = None
    steps: int | None = None
    cfg_scale: float | None = None
    width: int | None = None
    height: int | None = None
    denoising_strength: float | None = None
    clip_skip: int | None = None
    extra_generation_params: dict[str, Any] = Field(default_factory=dict)
    infotexts: list[str] = Field(default_factory=list)
    version: str | None = None

    @field_validator("extra_generation_params", mode="before")
    @classmethod
    def _none_is_empty(cls, value: object) -> object:
        return value or {}


class GenerationResponse(_Response):
    """``POST /txt2img`` and ``/img2img``."""

    images: list[Any] = Field(default_factory=list)
    info: GenerationInfo = Field(default_factory=GenerationInfo)

    @field_validator("images", mode="before")
    @classmethod
    def _null_images(cls, value: object) -> object:
        return value or []

    @field_validator("info", mode="before")
    @classmethod
    def _info_is_a_json_string(cls, value: object) -> object:
        if value in (None, ""):
            return {}
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise ValueError("info is not valid JSON") from None
        return value


class ExtrasResponse(_Response):
    """``POST /extra-single-image``."""

    image: str | None = None
    html_info: str | None = None


class Options(_Response):
    """The few ``GET /options`` keys the plugin reads (the real answer has hundreds)."""

    model_config = ConfigDict(extra="allow")

    sd_model_checkpoint: str | None = None
    samples_format: str | None = None
    # sha256 of the checkpoint actually loaded (A1111, SD.Next); may lag behind sd_model_checkpoint.
    sd_checkpoint_hash: str | None = None


def parse[T: BaseModel](model: type[T], data: object, *, what: str) -> T:
    """Validate a decoded JSON body, turning a shape mismatch into one clear error."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "body"
        raise MalformedResponse(
            f"The WebUI's answer to {what} has an unexpected shape ({where}: {first.get('msg')}); "
            "is this a Stable Diffusion WebUI of a supported version?"
        ) from None


def parse_list[T: BaseModel](model: type[T], data: object, *, what: str) -> list[T]:
    if not isinstance(data, list):
        raise MalformedResponse(f"The WebUI's answer to {what} is not a list; is this a Stable Diffusion WebUI?")
    return [parse(model, item, what=what) for item in data]


def name_list(data: object, key: str, *, what: str) -> list[str]:
    """An extension's ``{"<key>": ["name", ...]}`` answer (ControlNet's model_list, ADetailer's ad_model)."""
    names = data.get(key) if isinstance(data, dict) else None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise MalformedResponse(f"The WebUI's answer to {what} has no '{key}' list of names; is the extension up to date?")
    return names


class _Request(BaseModel):
    """Request bodies: unknown keys are ignored by every server, ``None`` fields are left out."""

    model_config = ConfigDict(extra="forbid")

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class LoraRef(_Request):
    """stable-diffusion.cpp's ``lora`` array item (the WebUIs take ``<lora:…>`` prompt tags instead)."""

    path: str
    multiplier: float


class Txt2ImgRequest(_Request):
    prompt: str
    negative_prompt: str = ""
    width: int
    height: int
    steps: int
    cfg_scale: float
    seed: int = -1
    batch_size: int = 1
    n_iter: int | None = 1  # None for sd.cpp, which ignores it
    sampler_name: str | None = None
    scheduler: str | None = None
    clip_skip: int | None = None
    lora: list[LoraRef] | None = None
    enable_hr: bool | None = None
    hr_scale: float | None = None
    hr_upscaler: str | None = None
    hr_second_pass_steps: int | None = None
    hr_steps: int | None = None  # stable-diffusion.cpp's name for hr_second_pass_steps
    hr_additional_modules: list[str] | None = None  # Forge: must be a list with hires fix, or it fails
    hr_resize_mode: int | None = None  # SD.Next 2026: 0 (its default) never upscales; 1 scales by hr_scale
    hr_force: bool | None = None  # SD.Next 2026: run the second pass after a non-latent upscale
    schedulers_sigma: str | None = None  # SD.Next 2026: the sigma algorithm as a request field
    denoising_strength: float | None = None
    override_settings: dict[str, Any] | None = None
    # False keeps the override model loaded: one load per switch, and GET /options tells the truth.
    override_settings_restore_afterwards: bool | None = None
    send_images: bool | None = True  # None for sd.cpp, which does not read them
    save_images: bool | None = False
    # Extensions and finer control (sdwebui/extensions.py fills them).
    styles: list[str] | None = None
    refiner_checkpoint: str | None = None
    refiner_switch_at: float | None = None
    alwayson_scripts: dict[str, Any] | None = None
    # Allow-listed extra fields (sdwebui/extra_params.py), merged into the body by to_json.
    extra_params: dict[str, Any] = Field(default_factory=dict, exclude=True)

    def to_json(self) -> dict[str, Any]:
        return {**self.extra_params, **super().to_json()}


class Img2ImgRequest(Txt2ImgRequest):
    init_images: list[str]
    resize_mode: int | None = None
    mask: str | None = None
    mask_blur: int | None = None
    inpainting_fill: int | None = None
    inpaint_full_res: bool | None = None
    inpaint_full_res_padding: int | None = None
    inpainting_mask_invert: int | None = None


class ExtrasRequest(_Request):
    image: str
    upscaler_1: str
    resize_mode: int = 0  # 0: scale by upscaling_resize, 1: to upscaling_resize_w x _h
    upscaling_resize: float | None = None
    upscaling_resize_w: int | None = None
    upscaling_resize_h: int | None = None
    upscaling_crop: bool | None = None
    show_extras_results: bool = True


class InterrogateResponse(_Response):
    """``POST /interrogate``: ``{"caption": ...}`` on A1111, Forge and SD.Next; SD.Next 2026's ``POST /caption``
    (``ResCaptionDispatch`` in its modules/api/caption.py) adds the tagger's ``tags`` and the VLM's ``answer``."""

    caption: str | None = None
    tags: str | None = None
    answer: str | None = None


class PngInfoResponse(_Response):
    """``POST /png-info`` (tests/fixtures/forge/post_png_info.json): the infotext in ``info``."""

    info: str | None = None
    items: dict[str, Any] = Field(default_factory=dict)
    parameters: dict[str, Any] = Field(default_factory=dict)
