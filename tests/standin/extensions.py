"""The stand-in's extensions: ControlNet, ADetailer, VAEs, prompt styles and ``alwayson_scripts`` checks.

Shaped on the extensions' own code (read when this was written, never at run time):

* Mikubill/sd-webui-controlnet ``scripts/api.py`` (A1111): ``GET /controlnet/version`` ``{"version": 2}``,
  ``/controlnet/model_list`` ``{"model_list": [...]}`` ("None" first), ``/controlnet/module_list``
  ``{"module_list", "module_detail"}`` ("none" first), ``/controlnet/control_types``, ``/controlnet/settings``.
  Units are objects read by ``ControlNetUnit.from_dict`` (``internal_controlnet/args.py``): unknown keys are
  ignored; ``module``/``model`` not listed -> ValueError "module(x) not found in supported modules." /
  "model(x) not found in supported models."; weight 0..2; guidance 0..1 with start <= end.
* Forge's built-in ``extensions-builtin/sd_forge_controlnet/lib_controlnet/api.py``: only ``model_list`` and
  ``module_list`` (no version, no control types); "None" is its spelling of no preprocessor.
* Both append each enabled unit's detected map after the generated images unless ``save_detected_map`` is false.
* Bing-su/adetailer ``scripts/!adetailer.py``: ``GET /adetailer/v1/version``, ``/adetailer/v1/schema``,
  ``/adetailer/v1/ad_model`` ``{"ad_model": [...]}``; args ``[enable, skip_img2img, {ADetailerArgs}, ...]``, each
  dict checked with ``extra=forbid`` and skipped (logged) when invalid; an unknown ``ad_model`` fails the job.
* A1111 ``modules/api/api.py::init_script_args``: an unknown always-on title -> 422 "always on script x not
  found"; a selectable script there -> 422 "Cannot have a selectable script in the always on scripts params".

``StandInWebUI(..., controlnet=True, adetailer=True)`` installs the extensions; without them their routes
answer 404 and their titles are unknown always-on scripts, as on a WebUI without them.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, ImageFilter, ImageOps

CONTROLNET_MODELS = ["None", "control_v11p_sd15_canny [d14c016b]", "control_v11p_sd15_openpose [cab727d4]",
                     "control_v11f1p_sd15_depth [cfd03158]"]
MIKUBILL_MODULES = ["none", "canny", "depth_midas", "openpose", "openpose_full", "lineart_realistic", "invert"]
FORGE_MODULES = ["None", "canny", "depth_midas", "openpose", "openpose_full", "lineart_realistic", "invert"]
CONTROL_TYPES = {
    "All": {"module_list": MIKUBILL_MODULES, "model_list": CONTROLNET_MODELS, "default_option": "none",
            "default_model": "None"},
    "Canny": {"module_list": ["none", "canny", "invert"], "model_list": ["None", CONTROLNET_MODELS[1]],
              "default_option": "canny", "default_model": CONTROLNET_MODELS[1]},
    "OpenPose": {"module_list": ["none", "openpose", "openpose_full"], "model_list": ["None", CONTROLNET_MODELS[2]],
                 "default_option": "openpose_full", "default_model": CONTROLNET_MODELS[2]},
    "Depth": {"module_list": ["none", "depth_midas"], "model_list": ["None", CONTROLNET_MODELS[3]],
              "default_option": "depth_midas", "default_model": CONTROLNET_MODELS[3]},
}
CONTROL_MODES = ["Balanced", "My prompt is more important", "ControlNet is more important"]
CN_RESIZE_MODES = ["Just Resize", "Crop and Resize", "Resize and Fill"]
CN_RESIZE_ALIASES = {"Inner Fit (Scale to Fit)": "Crop and Resize", "Outer Fit (Shrink to Fit)": "Resize and Fill",
                     "Scale to Fit (Inner Fit)": "Crop and Resize", "Envelope (Outer Fit)": "Resize and Fill"}

ADETAILER_VERSION = "24.11.1"
ADETAILER_MODELS = ["face_yolov8n.pt", "face_yolov8s.pt", "hand_yolov8n.pt", "person_yolov8n-seg.pt",
                    "person_yolov8s-seg.pt", "mediapipe_face_full", "mediapipe_face_short", "mediapipe_face_mesh",
                    "mediapipe_face_mesh_eyes_only"]
# ADetailerArgs (adetailer/args.py), extra=forbid: any other key makes the dict invalid.
ADETAILER_FIELDS = {
    "ad_model", "ad_model_classes", "ad_tap_enable", "ad_prompt", "ad_negative_prompt", "ad_confidence",
    "ad_mask_k_largest", "ad_mask_min_ratio", "ad_mask_max_ratio", "ad_dilate_erode", "ad_x_offset", "ad_y_offset",
    "ad_mask_merge_invert", "ad_mask_blur", "ad_denoising_strength", "ad_inpaint_only_masked",
    "ad_inpaint_only_masked_padding", "ad_use_inpaint_width_height", "ad_inpaint_width", "ad_inpaint_height",
    "ad_use_steps", "ad_steps", "ad_use_cfg_scale", "ad_cfg_scale", "ad_use_checkpoint", "ad_checkpoint",
    "ad_use_vae", "ad_vae", "ad_use_sampler", "ad_sampler", "ad_scheduler", "ad_use_noise_multiplier",
    "ad_noise_multiplier", "ad_use_clip_skip", "ad_clip_skip", "ad_restore_face", "ad_controlnet_model",
    "ad_controlnet_module", "ad_controlnet_weight", "ad_controlnet_guidance_start", "ad_controlnet_guidance_end",
    "is_api"}

VAE_FILES = ["vae-ft-mse-840000-ema-pruned.safetensors", "sdxl_vae.safetensors"]
FORGE_MODULE_FILES = ["ae.safetensors", "clip_l.safetensors", "t5xxl_fp8_e4m3fn.safetensors",
                      "vae-ft-mse-840000-ema-pruned.safetensors"]
PROMPT_STYLES = [
    {"name": "cinematic", "prompt": "{prompt}, cinematic lighting, film grain", "negative_prompt": "cartoon"},
    {"name": "watercolor", "prompt": "{prompt}, watercolor painting, soft edges", "negative_prompt": ""},
]

# Always-on scripts built into every WebUI of the family (GET /scripts of the recorded Forge, lower-cased titles);
# the selectable ones must not appear under alwayson_scripts.
SELECTABLE_SCRIPTS = {"prompt matrix", "prompts from file or textbox", "x/y/z plot", "img2img alternative test",
                      "loopback", "outpainting mk2", "poor man's outpainting", "sd upscale"}
BUILTIN_ALWAYSON = {"extra options", "refiner", "sampler", "seed"}
BUILTIN_ALWAYSON_IMG2IMG = {"soft inpainting"}


def _webui():  # the stand-in's module, imported late: it imports this one
    from tests.standin import webui

    return webui


@dataclass
class ScriptsOutcome:
    """What the always-on scripts did to one job: maps to append, infotext fields, what was skipped."""

    maps: list[Image.Image] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


class ExtensionsMixin:
    """Mixed into ``StandInWebUI``; it sets ``controlnet_installed`` and ``adetailer_installed`` first."""

    controlnet_installed: bool
    adetailer_installed: bool
    extension_log: list[str]  # what the extensions skipped or logged, for tests
    flavor: str

    # ---- routes ------------------------------------------------------------------------------------------

    def _extension_routes(self) -> dict[tuple[str, str], Any]:
        """VAE/module lists and prompt styles for every WebUI; ControlNet and ADetailer when installed."""
        w = _webui()
        reply = w._json_reply
        if self.flavor == "sdcpp":
            return {}
        install = w.INSTALL_DIR[self.flavor]
        routes: dict[tuple[str, str], Any] = {
            ("GET", f"{w.API}/prompt-styles"): lambda call: reply(200, PROMPT_STYLES),
        }
        if self.flavor == "forge":  # Forge removed /sd-vae; VAEs and text encoders come from /sd-modules
            modules = [{"model_name": n, "filename": f"{install}/models/{'VAE' if 'vae' in n or n == 'ae.safetensors' else 'text_encoder'}/{n}"}
                       for n in FORGE_MODULE_FILES]
            routes[("GET", f"{w.API}/sd-modules")] = lambda call: reply(200, modules)
        else:
            vaes = [{"model_name": n, "filename": f"{install}/models/VAE/{n}"} for n in VAE_FILES]
            routes[("GET", f"{w.API}/sd-vae")] = lambda call: reply(200, vaes)
        if self.controlnet_installed and self.flavor in ("a1111", "forge"):
            routes.update(self._controlnet_routes(reply))
        if self.adetailer_installed and self.flavor in ("a1111", "forge"):
            routes.update({
                ("GET", "/adetailer/v1/version"): lambda call: reply(200, {"version": ADETAILER_VERSION}),
                ("GET", "/adetailer/v1/schema"): lambda call: reply(200, {"title": "ADetailerArgs", "type": "object"}),
                ("GET", "/adetailer/v1/ad_model"): lambda call: reply(200, {"ad_model": ADETAILER_MODELS}),
            })
        return routes

    def _controlnet_routes(self, reply: Any) -> dict[tuple[str, str], Any]:
        if self.flavor == "forge":  # lib_controlnet/api.py: two list routes (and /detect)
            return {("GET", "/controlnet/model_list"): lambda call: reply(200, {"model_list": CONTROLNET_MODELS}),
                    ("GET", "/controlnet/module_list"): lambda call: reply(200, {"module_list": FORGE_MODULES})}
        detail = {m: {"model_free": m in ("none", "invert"), "sliders": []} for m in MIKUBILL_MODULES}
        return {
            ("GET", "/controlnet/version"): lambda call: reply(200, {"version": 2}),
            ("GET", "/controlnet/model_list"): lambda call: reply(200, {"model_list": CONTROLNET_MODELS}),
            ("GET", "/controlnet/module_list"): lambda call: reply(200, {"module_list": MIKUBILL_MODULES,
                                                                          "module_detail": detail}),
            ("GET", "/controlnet/control_types"): lambda call: reply(200, {"control_types": CONTROL_TYPES}),
            ("GET", "/controlnet/settings"): lambda call: reply(200, {"control_net_max_models_num": 3}),
        }

    # ---- txt2img / img2img ---------------------------------------------------------------------------------

    def _run_alwayson_scripts(self, params: dict[str, Any], mode: str, init: Image.Image | None) -> ScriptsOutcome:
        """Check ``alwayson_scripts`` like A1111's API, then run ControlNet's and ADetailer's parts."""
        w = _webui()
        outcome = ScriptsOutcome()
        self._check_refiner(params)
        scripts = params.get("alwayson_scripts") or {}
        if not isinstance(scripts, dict):
            raise w._Respond(w._json_reply(422, {"detail": "alwayson_scripts must be an object"}))
        available = self._alwayson_titles(mode)
        for title, entry in scripts.items():
            key = str(title).lower()
            if key in SELECTABLE_SCRIPTS:
                raise w._Respond(w._json_reply(422, {"detail": "Cannot have a selectable script in the always on scripts params"}))
            if key not in available:
                raise w._Respond(w._json_reply(422, {"detail": f"always on script {title} not found"}))
            args = entry.get("args", []) if isinstance(entry, dict) else []
            if key == "controlnet":
                self._controlnet(args, params, mode, init, outcome)
            elif key == "adetailer":
                self._adetailer(args, outcome)
        return outcome

    def _alwayson_titles(self, mode: str) -> set[str]:
        titles = set(BUILTIN_ALWAYSON) | (BUILTIN_ALWAYSON_IMG2IMG if mode == "img2img" else set())
        if self.controlnet_installed and self.flavor in ("a1111", "forge"):
            titles.add("controlnet")
        if self.adetailer_installed and self.flavor in ("a1111", "forge"):
            titles.add("adetailer")
        return titles

    def _check_refiner(self, params: dict[str, Any]) -> None:
        name = params.get("refiner_checkpoint")
        if name and self._resolve_checkpoint(name) is None:  # type: ignore[attr-defined]
            w = _webui()
            raise w._Respond(self._exception_reply("Exception", f"Could not find checkpoint with name {name}"))  # type: ignore[attr-defined]

    def _fail(self, error: str, message: str) -> Exception:
        """The script raised inside process(): the API answers 500 with the exception."""
        return _webui()._Respond(self._exception_reply(error, message))  # type: ignore[attr-defined]

    def _controlnet(self, args: list[Any], params: dict[str, Any], mode: str, init: Image.Image | None,
                    outcome: ScriptsOutcome) -> None:
        modules = FORGE_MODULES if self.flavor == "forge" else MIKUBILL_MODULES
        size = (params["width"], params["height"])
        for index, unit in enumerate(args):
            if not isinstance(unit, dict):
                raise self._fail("TypeError", f"ControlNet unit {index} must be an object, not {type(unit).__name__}")
            if not unit.get("enabled", self.flavor == "forge"):  # Mikubill's default is False, Forge's True
                continue
            module, model = unit.get("module", "none"), unit.get("model", "None")
            if module not in modules:
                raise self._fail("ValueError", f"module({module}) not found in supported modules.")
            if model not in CONTROLNET_MODELS:
                raise self._fail("ValueError", f"model({model}) not found in supported models.")
            weight = float(unit.get("weight", 1.0))
            start, end = float(unit.get("guidance_start", 0.0)), float(unit.get("guidance_end", 1.0))
            if not 0.0 <= weight <= 2.0 or not 0.0 <= start <= end <= 1.0:
                raise self._fail("ValueError", f"weight({weight}) or guidance_start({start})/guidance_end({end}) out of range")
            control_mode = unit.get("control_mode", "Balanced")
            if control_mode not in CONTROL_MODES and control_mode not in range(3):
                raise self._fail("ValueError", f"'{control_mode}' is not a valid ControlMode")
            resize_mode = CN_RESIZE_ALIASES.get(unit.get("resize_mode"), unit.get("resize_mode", "Crop and Resize"))
            if resize_mode not in CN_RESIZE_MODES and resize_mode not in range(4):
                raise self._fail("ValueError", f"'{resize_mode}' is not a valid ResizeMode")
            if unit.get("image") is not None:
                _, image = self._decode_image(unit["image"])  # type: ignore[attr-defined]
            elif mode == "img2img" and init is not None:
                image = init
            else:
                raise self._fail("ValueError", "controlnet is enabled but no input image is given")
            if model == "None":
                continue  # enabled without a model: skipped, as the extension does
            outcome.extra[f"ControlNet {index}"] = (f"Module: {module}, Model: {model}, Weight: {weight:g}, "
                                                   f"Guidance Start: {start:g}, Guidance End: {end:g}")
            if unit.get("save_detected_map", True):
                outcome.maps.append(_detected_map(image, module, size))

    def _adetailer(self, args: list[Any], outcome: ScriptsOutcome) -> None:
        dicts = [a for a in args if isinstance(a, dict)]
        enabled = args[0] if args and isinstance(args[0], bool) else True
        if not dicts or not enabled:
            return
        valid = []
        for arg in dicts:
            unknown = sorted(set(arg) - ADETAILER_FIELDS)
            if unknown:  # pydantic extra=forbid: the dict is skipped with a log line, the job goes on
                self.extension_log.append(f"[-] ADetailer: invalid arguments, extra fields not permitted: {unknown}")
                continue
            valid.append(arg)
        for arg in valid:
            model = arg.get("ad_model", "None")
            if model == "None":
                continue
            if model not in ADETAILER_MODELS:
                raise self._fail("ValueError", f"[-] ADetailer: Model {model!r} not found. Available models: {ADETAILER_MODELS}")
            outcome.extra["ADetailer model"] = model
            if arg.get("ad_prompt"):
                outcome.extra["ADetailer prompt"] = arg["ad_prompt"]
            if arg.get("ad_negative_prompt"):
                outcome.extra["ADetailer negative prompt"] = arg["ad_negative_prompt"]
            outcome.extra["ADetailer denoising strength"] = arg.get("ad_denoising_strength", 0.4)
            outcome.extra["ADetailer version"] = ADETAILER_VERSION

    def _encoded_maps(self, outcome: ScriptsOutcome, image_format: str) -> list[str]:
        """The detected maps, base64, to append after the generated images (PNG like encode_pil_to_base64)."""
        return [base64.b64encode(self._encode(m, "", image_format)).decode("ascii")  # type: ignore[attr-defined]
                for m in outcome.maps]


def _detected_map(image: Image.Image, module: str, size: tuple[int, int]) -> Image.Image:
    """'none' passes the control image through; the other preprocessors get a recognisable stand-in effect."""
    picture = image.convert("RGB").resize(size)
    if module.lower() == "none":
        return picture
    if module == "invert":
        return ImageOps.invert(picture)
    return ImageOps.grayscale(picture).filter(ImageFilter.FIND_EDGES).convert("RGB")
