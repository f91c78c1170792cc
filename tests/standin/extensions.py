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

Recorded (these win over the source where they differ): ``tests/fixtures/a1111/controlnet/`` (Mikubill v1.1.455:
``/controlnet/version`` ``{"version": 3}``, ``model_list`` without "None", ``settings`` ``{"control_net_unit_count": 3}``,
``post_detect_canny`` / ``post_detect_openpose_offline``; the infotext ``ControlNet 0: "Module: none, Model: ..., Weight:
1.0, Resize Mode: ..., Processor Res: 512, Threshold A: 0.5, Threshold B: 0.5, Guidance Start: 0.0, ...``) and
``tests/fixtures/forge/webui_mode/`` (Forge's infotext ends ``Control Mode: Balanced, Hr Option: HiResFixOption.BOTH``;
model "None" runs and returns its map). Neither refuses a unit it cannot use: an unknown model (and, on Forge, a
model without its hash or an unlisted module) is skipped silently: 200, no map, the infotext still lists
``ControlNet N``. With ``webui.offline = True`` a preprocessor that must download weights (``openpose``) is skipped
the same way (``post_txt2img_controlnet_save_detected_map_ran`` vs ``..._skipped_preprocessor_needs_download``, both
servers) and ``POST /controlnet/detect`` with it is 500 ``URLError``.
ADetailer (``tests/fixtures/a1111/adetailer/``, 25.3.0): the infotext carries ``ADetailer model, confidence, dilate
erode, mask blur, denoising strength, inpaint only masked, inpaint padding, version`` whenever it was asked to run,
also when nothing was detected and for an unknown ``ad_model`` (200, error only in the log); with ``ad_confidence: 0``
it wrote nothing at all (``post_txt2img_low_confidence``), so the stand-in writes nothing then. No extra image.
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
ADETAILER_VERSION_A1111 = "25.3.0"  # a1111/adetailer/get_version.json
# Preprocessors that run without downloading weights (the rest fail offline: a1111/controlnet/*offline*).
NO_DOWNLOAD_MODULES = {"none", "None", "canny", "invert", "threshold", "color", "blur_gaussian", "tile_resample",
                       "tile_colorfix", "tile_colorfix+sharp", "reference_only", "reference_adain",
                       "reference_adain+attn", "recolor_luminance", "recolor_intensity", "shuffle", "lineart_standard",
                       "scribble_xdog"}
URL_ERROR = "<urlopen error [Errno -2] Name or service not known>"  # a1111/controlnet/post_detect_openpose_offline
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
    # The installed ControlNet models ("None" first, as Forge lists them; A1111 leaves it out). Set it on an instance
    # to serve other files, e.g. the recorded ["None", "control_v11p_sd15_openpose [d299a4f5]"].
    controlnet_models: list[str] = CONTROLNET_MODELS

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
            version = ADETAILER_VERSION_A1111 if self.flavor == "a1111" else ADETAILER_VERSION
            routes.update({
                ("GET", "/adetailer/v1/version"): lambda call: reply(200, {"version": version}),
                ("GET", "/adetailer/v1/schema"): lambda call: reply(200, {"title": "ADetailerArgs", "type": "object"}),
                ("GET", "/adetailer/v1/ad_model"): lambda call: reply(200, {"ad_model": ADETAILER_MODELS}),
            })
        return routes

    def _controlnet_routes(self, reply: Any) -> dict[tuple[str, str], Any]:
        if self.flavor == "forge":  # lib_controlnet/api.py: two list routes (and /detect)
            return {("GET", "/controlnet/model_list"): lambda call: reply(200, {"model_list": self.controlnet_models}),
                    ("GET", "/controlnet/module_list"): lambda call: reply(200, {"module_list": FORGE_MODULES})}
        detail = {m: {"model_free": m in ("none", "invert"), "sliders": []} for m in MIKUBILL_MODULES}
        return {
            ("GET", "/controlnet/version"): lambda call: reply(200, {"version": 3}),  # a1111/controlnet/get_version
            ("GET", "/controlnet/model_list"): lambda call: reply(200, {"model_list": self.controlnet_models[1:]}),
            ("POST", "/controlnet/detect"): self._controlnet_detect,
            ("GET", "/controlnet/module_list"): lambda call: reply(200, {"module_list": MIKUBILL_MODULES,
                                                                          "module_detail": detail}),
            ("GET", "/controlnet/control_types"): lambda call: reply(200, {"control_types": CONTROL_TYPES}),
            ("GET", "/controlnet/settings"): lambda call: reply(200, {"control_net_unit_count": 3}),
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
            if module not in modules and self.flavor == "a1111":
                raise self._fail("ValueError", f"module({module}) not found in supported modules.")
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
            picture = unit.get("image") if unit.get("image") is not None else unit.get("input_image")
            if picture is not None:  # a1111/controlnet/post_txt2img_unit_input_image_key: either key
                _, image = self._decode_image(picture)  # type: ignore[attr-defined]
            elif mode == "img2img" and init is not None:
                image = init
            else:
                raise self._fail("ValueError", "controlnet is enabled but no input image is given")
            if model == "None" and self.flavor == "a1111":
                continue  # enabled without a model: skipped, as the extension does (Forge runs it: webui_mode/..._ran)
            outcome.extra[f"ControlNet {index}"] = self._controlnet_infotext(unit, module, model, weight, start, end)
            reason = self._controlnet_skip_reason(module, model, modules)
            if reason:  # recorded: 200, no map, the infotext above kept; the error only in the server log
                self.extension_log.append(f"ControlNet unit {index} skipped: {reason}")
                continue
            if unit.get("save_detected_map", True):
                outcome.maps.append(_detected_map(image, module, size))

    def _controlnet_skip_reason(self, module: str, model: str, modules: list[str]) -> str:
        """Why the server would silently not apply the unit ("" when it applies it)."""
        if self.flavor == "forge":
            if module not in modules:  # webui_mode/bad_txt2img_controlnet_module_lowercase_none
                return f"AttributeError: module {module!r}"
            if model not in self.controlnet_models:  # ..._model_without_hash, ..._unknown_model
                return f"KeyError: {model!r}"
        elif model not in self.controlnet_models and model not in {m.split(" [")[0] for m in self.controlnet_models}:
            return f"model {model!r} not found"  # a1111/controlnet/bad_txt2img_unit_unknown_model
        if getattr(self, "offline", False) and module not in NO_DOWNLOAD_MODULES:
            return f"preprocessor {module!r} needs a download: URLError: {URL_ERROR}"
        return ""

    def _controlnet_infotext(self, unit: dict[str, Any], module: str, model: str, weight: float, start: float,
                             end: float) -> str:
        """``ControlNet N`` as each server writes it (a1111/controlnet/*, forge/webui_mode/*controlnet*)."""
        resize_mode = CN_RESIZE_ALIASES.get(unit.get("resize_mode"), unit.get("resize_mode", "Crop and Resize"))
        control_mode = unit.get("control_mode", "Balanced")
        head = f"Module: {module}, Model: {model}, Weight: {weight}, Resize Mode: {resize_mode}, "
        tail = (f"Guidance Start: {start}, Guidance End: {end}, Pixel Perfect: {bool(unit.get('pixel_perfect'))}, "
                f"Control Mode: {control_mode}")
        if self.flavor == "forge":
            return head + tail + ", Hr Option: HiResFixOption.BOTH"
        extra = (f"Processor Res: {int(unit.get('processor_res', 512))}, "
                 f"Threshold A: {float(unit.get('threshold_a', 0.5))}, Threshold B: {float(unit.get('threshold_b', 0.5))}, ")
        return head + extra + tail

    def _controlnet_detect(self, call: Any) -> Any:
        """``POST /controlnet/detect``: the maps of the input images (a1111/controlnet/post_detect_canny)."""
        w = _webui()
        body = self._json_object(call)  # type: ignore[attr-defined]
        module = body.get("controlnet_module", "none")
        if module not in MIKUBILL_MODULES:  # scripts/api.py
            return w._json_reply(422, {"detail": "Module not available"})
        if getattr(self, "offline", False) and module not in NO_DOWNLOAD_MODULES:
            return self._exception_reply("URLError", URL_ERROR)  # type: ignore[attr-defined]
        maps = []
        for data in body.get("controlnet_input_images") or []:
            _, image = self._decode_image(data)  # type: ignore[attr-defined]
            maps.append(_detected_map(image, module, image.size))
        encoded = [base64.b64encode(self._encode(m, "", "png")).decode("ascii") for m in maps]  # type: ignore[attr-defined]
        return w._json_reply(200, {"info": "Success", "images": encoded})

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
            if arg.get("ad_confidence") is not None and float(arg["ad_confidence"]) == 0.0:
                continue  # a1111/adetailer/post_txt2img_low_confidence: nothing written, nothing logged
            if model not in ADETAILER_MODELS:  # a1111/adetailer/bad_txt2img_unknown_model: 200, only logged
                self.extension_log.append(f"[-] ADetailer: ValueError: Model {model!r} not found")
            outcome.extra["ADetailer model"] = model
            if arg.get("ad_prompt"):
                outcome.extra["ADetailer prompt"] = arg["ad_prompt"]
            if arg.get("ad_negative_prompt"):
                outcome.extra["ADetailer negative prompt"] = arg["ad_negative_prompt"]
            outcome.extra.update({  # a1111/adetailer/post_txt2img_face_yolov8n_short.json, in this order
                "ADetailer confidence": arg.get("ad_confidence", 0.3),
                "ADetailer dilate erode": arg.get("ad_dilate_erode", 4),
                "ADetailer mask blur": arg.get("ad_mask_blur", 4),
                "ADetailer denoising strength": arg.get("ad_denoising_strength", 0.4),
                "ADetailer inpaint only masked": arg.get("ad_inpaint_only_masked", True),
                "ADetailer inpaint padding": arg.get("ad_inpaint_only_masked_padding", 32),
                "ADetailer version": ADETAILER_VERSION_A1111 if self.flavor == "a1111" else ADETAILER_VERSION,
            })

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
