"""SD.Next (vladmandic/automatic) for the stand-in WebUI (flavour ``sdnext``).

Shaped on the real recordings in ``tests/fixtures/sdnext/`` (SD.Next ``431bcc3``, 2025-03-02, ``--api-only``) and on
its source (modules/api/api.py, modules/processing.py ``process_images``), read when this was written:

- Lists as recorded: ``get_samplers.json`` (47 diffusers names, default UniPC), ``get_upscalers.json`` (``Latent
  Nearest``, ``Resize Lanczos``, ...; no ``Latent``), ``get_options.json`` (482 keys), ``get_version.json``.
  ``/schedulers`` and ``/latent-upscale-modes`` do not exist (404 ``{"detail":"Not Found"}``).
- Models: title ``rand-a [38b3a15ec8]`` (no extension), model_name keeps the subfolder (``sub/rand-b``), a ``type``
  key. One model is loaded at start-up; ``GET /options`` ``sd_checkpoint_hash`` is the sha256 of the LOADED model.
- ``POST /options`` only stores the setting (API-only mode has no reload hook): it answers
  ``{"updated":[{"sd_model_checkpoint": changed}]}`` (false when unchanged, true even for an unknown name) and
  the loaded model stays. ``POST /sdapi/v1/reload-checkpoint`` (``{}``) loads the model the options name.
- In a generation, ``override_settings.sd_model_checkpoint`` is skipped when it equals the options' value (or that
  value without extension); otherwise one of SD.Next's own names (title, model_name, filename, shorthash, sha256)
  is applied: the options take it and the model loads. An unknown name is dropped and ``reload_model_weights()``
  runs, which loads the model the options name (so a pending ``POST /options`` switch happens there).
  ``override_settings_restore_afterwards`` (default true) puts the options back and reloads: two loads.
- ``info`` carries ``sd_model_hash`` of the model that really ran and no ``sd_model_name``; the infotext says
  ``App: SD.Next``, ``Model: <stem>``, ``Version: unknown``.
- A size that is not a multiple of 8 is rounded down, and ``info`` says so (100x60 -> 96x56 image and info).
- A combined legacy sampler name is 404 ``Sampler not found`` (with ``errors: "404: Sampler not found"``);
  the ``scheduler`` field is silently dropped; ``override_settings.schedulers_sigma`` (default, karras,
  exponential, polyexponential) is applied and shows in the infotext.
- Hires fix with an upscaler it does not list (``Latent``) is accepted but the image keeps the first-pass size;
  with a listed one (``Latent Nearest``, ``Resize Lanczos``) it is upscaled; ``info`` keeps the first-pass size.
- Images are JPEG.

Flavour ``sdnext-058a7f0`` (``self.sdnext_version == "058a7f0"``; plain ``sdnext`` is ``"431bcc3"``) is SD.Next
master ``058a7f0`` (2026-07-23), recorded in ``tests/fixtures/sdnext/058a7f0/`` (see the README there, section
"Newer SD.Next"). Everything above applies, except what ``SDNEXT_VERSIONS["058a7f0"]`` names:

- Recorded as-is: ``get_version.json``, ``get_status.json`` (idle), ``get_samplers.json`` (114, no ``Default``;
  a run without sampler reports ``sampler_name: "Default"``, post_txt2img_short.json), ``get_upscalers.json``,
  ``get_schedulers.json`` (500 ResponseValidationError), ``get_options.json`` (only the 34 changed settings; the
  stand-in fills in ``sd_model_checkpoint``/``sd_checkpoint_hash`` of the loaded model).
- ``POST /options`` with a known ``sd_model_checkpoint`` loads it inside the call (post_options_switch_to_b.json,
  get_options_after_switch.json); ``/reload-checkpoint`` is 204 with no body (post_reload_checkpoint.json). An
  unknown name is stored, answered ``true`` and the model is UNLOADED (post_options_unknown_model.json,
  get_options_after_unknown_model.json); every generation then answers 200 ``"images": []``, ``info: ""``
  (post_txt2img_after_unknown_model_no_model_loaded.json) until a known model is set.
- Hires fix: no resize unless ``hr_resize_mode > 0``; then a non-latent upscaler gives an ``hr_scale`` times bigger
  image (``info`` keeps the first-pass size), a ``Latent*`` one keeps the first-pass size
  (post_txt2img_hires_resize_lanczos[_resize_mode_1].json, post_txt2img_hires_latent_[bicubic|resize_mode_1].json).
- ``/extra-single-image`` is the recorded 500 ValidationError for any upscaler
  (post_extra_single_image_[resize_]lanczos_short.json); ``/interrupt`` is 204 empty (post_interrupt_idle.json).
- ``/interrogate`` is gone (404). ``POST /caption`` is SOURCE-SHAPED, not recorded: vladmandic/sdnext
  modules/api/caption.py ``post_caption_dispatch`` (``ResCaptionDispatch``: every field, unset ones null; empty
  image 404 ``Image not found``; openclip model not listed 404 ``Model not found``; another backend 422 from the
  discriminated union).
- ``GET /status`` while a job runs is not recorded: its keys and types are those of the idle recording and of
  vladmandic/sdnext modules/api/models.py ``ResStatus`` (timestamp str|None, id int|str|None, elapsed/eta/progress
  float|None); the values (``status: "running"``, ``task: "txt2img"``, ``job``/``jobs`` 1, ``step``/``steps`` from
  the job's progress) are the stand-in's guess, not read from SD.Next's shared state code.
"""

from __future__ import annotations

import hashlib
import os
import time
from typing import Any

from tests.fixtures.load import load_fixture

# The sha256 of the recorded SD.Next checkpoints (get_sd_models.json).
SDNEXT_SHA256 = {
    "rand-a": "38b3a15ec84beee220e69c6c66e530f573b4bc5d248de81e306c2b432561e9e7",
    "sub/rand-b": "7ba778b605c3331d1551d8cec553c8a7ae5e6b5bec936c59f6ff90385433a38c",
}
SIGMA_CHOICES = ("default", "karras", "exponential", "polyexponential")
# Not recorded: the infotext key under which SD.Next reports a non-default ``schedulers_sigma``. "Sampler sigma"
# is a plausible name (SD.Next names its sampler options "Sampler ..."); a parser should not depend on it.
SIGMA_INFOTEXT_KEY = "Sampler sigma"
NO_UPSCALE = ("None",)


SDNEXT_DEFAULT_VERSION = "431bcc3"
# What differs per recorded SD.Next commit, as data; a missing key means "as 431bcc3" (the False/empty default).
SDNEXT_VERSIONS: dict[str, dict[str, Any]] = {
    "431bcc3": {"fixtures": "sdnext/"},
    "058a7f0": {
        "fixtures": "sdnext/058a7f0/",
        "sha256": {  # get_sd_models.json / get_options*.json of the 058a7f0 recordings (other random files)
            "rand-a": "8cdf65fe63e57b6fe6906bb0792c9d7b8476569ebcbe5180b53e85a25f96f5d9",
            "sub/rand-b": "917136ce6c45d9cb912a6ce4e2a0e50d74b5e753dea9141069271c8b08bc33d9"},
        "lists": ("get_samplers", "get_upscalers"),    # recorded lists replacing 431bcc3's
        "defaults_from": "post_txt2img_after_unknown_model_no_model_loaded",  # its echo: the defaults (no cfg)
        "extra_sampler_names": ("Default",),             # accepted although /samplers does not list it
        "options_only_changed": True,                    # GET /options: get_options.json, 34 keys
        "options_switch_model": True,                    # POST /options loads the model in the call
        "unknown_model_unloads": True,                   # ... and an unknown name unloads the one it had
        "reload_checkpoint_status": 204,                 # post_reload_checkpoint.json: no body
        "interrupt_status": 204,                         # post_interrupt_idle.json: no body
        "hires_needs_resize_mode": True,                 # hr_resize_mode 0 (default): no upscale at all
        "schedulers_reply": "get_schedulers",            # recorded 500
        "extra_single_image_reply": "post_extra_single_image_resize_lanczos_short",  # recorded 500
        "status_route": True,                            # GET /status: get_status.json
        "caption_route": True,                           # POST /caption (source-shaped), no /interrogate
        "version_reply": "get_version",
        "infotext": "058a7f0"},                          # _sdnext_infotext_058a7f0
}
OPENCLIP_MODELS = ("ViT-L-14/openai", "ViT-H-14/laion2b_s32b_b79k", "ViT-bigG-14/laion2b_s39b_b160k")  # caption.py
CAPTION_DISPATCH_FIELDS = ("backend", "caption", "medium", "artist", "movement", "trending", "flavor", "tags",
                           "scores", "answer", "annotated_image")  # ResCaptionDispatch, in its order


def _fixture(name: str) -> Any:
    return load_fixture(f"sdnext/{name}")["response"]["json"]


def _recorded(folder: str, name: str) -> dict[str, Any]:
    """status and json (or text) of a recording in ``folder`` (e.g. ``sdnext/058a7f0/``)."""
    return load_fixture(f"{folder}{name}")["response"]


class SdNextFlavor:
    """Mixin for ``StandInWebUI``: SD.Next's lists, model switching and generation quirks."""

    # ---- lists and state ------------------------------------------------------------------------------------

    def _sdnext_data(self, key: str) -> Any:
        """This SD.Next version's entry ``key`` in SDNEXT_VERSIONS (False when it does not differ)."""
        return SDNEXT_VERSIONS[self.sdnext_version].get(key, () if key.endswith("names") else False)

    def _sdnext_json(self, name: str) -> Any:
        return _recorded(self._sdnext_data("fixtures"), name)["json"]

    def _sdnext_sha256(self) -> dict[str, str]:
        return self._sdnext_data("sha256") or {}

    def _sdnext_known_options(self) -> set[str]:
        """Settings POST /options accepts although GET /options may not list them (058a7f0 lists only changed
        ones): the 482 keys 431bcc3 listed (get_options.json)."""
        if not self._sdnext_data("options_only_changed"):
            return set()
        if not hasattr(self, "_sdnext_all_option_keys"):
            self._sdnext_all_option_keys = set(_fixture("get_options"))
        return self._sdnext_all_option_keys

    def _sdnext_static_shapes(self) -> None:
        self._samplers = _fixture("get_samplers")
        self._schedulers = []
        self._upscalers = _fixture("get_upscalers")
        self._latent_modes = []
        for name in self._sdnext_data("lists") or ():
            setattr(self, {"get_samplers": "_samplers", "get_upscalers": "_upscalers"}[name], self._sdnext_json(name))
        recorded = _fixture("post_txt2img_next_call_short")["parameters"]
        if self._sdnext_data("defaults_from"):
            recorded = self._sdnext_json(self._sdnext_data("defaults_from"))["parameters"]
        defaults = {**recorded, "prompt": "", "seed": -1, "width": 1024, "height": 1024, "steps": 20}
        self._parameter_defaults = {"txt2img": dict(defaults), "img2img": {**defaults, "init_images": None}}

    def _sdnext_initial_options(self) -> dict[str, Any]:
        options = self._sdnext_json("get_options")
        options["sd_model_checkpoint"] = self._title(self._models[0])
        if self._image_format:
            options["samples_format"] = self._image_format
        return options

    def _sdnext_startup(self) -> None:
        """SD.Next loads the options' model when it starts (call from reset, lock held)."""
        self._sdnext_started = time.monotonic()
        self._load(self._models[0])

    def _sdnext_routes(self) -> dict[tuple[str, str], Any]:
        from tests.standin.webui import API, _json_reply

        routes = {("GET", f"{API}/version"): lambda call: _json_reply(200, _fixture("get_version")),
                  ("POST", f"{API}/reload-checkpoint"): self._sdnext_reload_checkpoint}
        if self._sdnext_data("version_reply"):
            version = self._sdnext_json(self._sdnext_data("version_reply"))
            routes[("GET", f"{API}/version")] = lambda call: _json_reply(200, version)
        for key, path in (("schedulers_reply", "schedulers"), ("extra_single_image_reply", "extra-single-image")):
            if self._sdnext_data(key):
                recorded = _recorded(self._sdnext_data("fixtures"), self._sdnext_data(key))
                method = "GET" if path == "schedulers" else "POST"
                routes[(method, f"{API}/{path}")] = (
                    lambda call, r=recorded: _json_reply(r["status"], r["json"]))
        if self._sdnext_data("interrupt_status"):
            routes[("POST", f"{API}/interrupt")] = self._sdnext_interrupt
        if self._sdnext_data("status_route"):
            routes[("GET", f"{API}/status")] = self._sdnext_status
        if self._sdnext_data("caption_route"):
            routes.update({("POST", f"{API}/caption"): self._sdnext_caption,
                           ("POST", f"{API}/interrogate"): None, ("GET", f"{API}/interrogate"): None})
        return routes

    def _sdnext_interrupt(self, call: Any) -> Any:
        from tests.standin.webui import _Reply

        self._post_interrupt(call)
        return _Reply(self._sdnext_data("interrupt_status"), b"", content_type=None)

    def _sdnext_status(self, call: Any) -> Any:
        """GET /status: get_status.json when idle; while a job runs the same keys (models.py ResStatus) with
        guessed values: status "running", the task and step/steps/progress of the job (not recorded)."""
        from tests.standin.webui import _json_reply

        status = self._sdnext_json("get_status")
        with self._lock:
            state, started = dict(self._progress), self._job_started
        status["uptime"] = int(time.monotonic() - self._sdnext_started)
        if state.get("job_count", 0) > 0:
            step, steps = state.get("sampling_step", 0), state.get("sampling_steps", 0)
            elapsed = time.monotonic() - started
            progress = round(step / steps, 2) if steps else 0.0
            task = str(state.get("job") or "").removeprefix("scripts_") or "txt2img"
            status.update({"status": "running", "task": task, "job": 1, "jobs": 1,
                           "step": step, "steps": steps, "elapsed": round(elapsed, 2),
                           "eta": round(elapsed / progress - elapsed, 2) if progress else None,
                           "progress": progress, "timestamp": time.strftime("%Y%m%d%H%M%S")})
        return _json_reply(200, status)

    def _sdnext_caption(self, call: Any) -> Any:
        """POST /caption, SOURCE-SHAPED from vladmandic/sdnext modules/api/caption.py post_caption_dispatch."""
        from tests.standin.info_routes import _caption
        from tests.standin.webui import _json_reply

        body = self._json_object(call)
        backend = body.get("backend")
        if backend not in ("openclip", "tagger", "vlm", "analyze"):  # pydantic discriminated union
            return _json_reply(422, {"detail": [{"type": "union_tag_invalid", "loc": ["body"],
                                                 "msg": "Input tag does not match any of the expected tags: "
                                                        "'openclip', 'tagger', 'vlm', 'analyze'"}]})
        if not body.get("image"):
            return self._http_error(404, "Image not found")
        raw, image = self._decode_image(body["image"])
        call.record.init_images.append(raw)
        reply = dict.fromkeys(CAPTION_DISPATCH_FIELDS)
        reply["backend"] = backend
        if backend == "openclip":
            model = body.get("model", OPENCLIP_MODELS[0])
            if model not in OPENCLIP_MODELS:
                return self._http_error(404, "Model not found")
            reply["caption"] = _caption(image, "clip")
        elif backend == "tagger":
            reply["tags"] = _caption(image, "deepdanbooru")
        else:
            reply["answer"] = _caption(image, "clip")
        return _json_reply(200, reply)

    # ---- names ----------------------------------------------------------------------------------------------

    def _sdnext_aliases(self, model: Any) -> set[str]:
        """SD.Next's checkpoint_aliases for a model: exact names only."""
        names = {self._title(model), model.path, self._filename(model)}
        if model.hashed:
            names |= {model.shorthash, model.sha256}
        return names

    def _sdnext_exact(self, name: Any) -> Any:
        if not isinstance(name, str):
            return None
        with self._lock:
            return next((m for m in self._models if name in self._sdnext_aliases(m)), None)

    # ---- options and reload ---------------------------------------------------------------------------------

    def _sdnext_set_option(self, key: str, value: Any) -> bool:
        """shared.opts.set: store, answer whether it changed. No model load (API-only mode)."""
        with self._lock:
            changed = self._options.get(key) != value
            self._options[key] = value
        return changed

    def _sdnext_switch_option(self, value: Any) -> bool:
        """058a7f0 POST /options sd_model_checkpoint: a known name loads in the call; an unknown one is stored and
        unloads the model (post_options_unknown_model.json). Answers true either way, as recorded."""
        model = self._sdnext_exact(value) or self._resolve_checkpoint(value)
        with self._generation_lock:
            with self._lock:
                self._options["sd_model_checkpoint"] = value
            if model is not None:
                self._load(model)
                with self._lock:
                    self._options["sd_model_checkpoint"] = self._title(model)  # get_options_after_switch.json
            elif self._sdnext_data("unknown_model_unloads"):
                with self._lock:
                    self._loaded = None
        return True

    def _sdnext_reload_checkpoint(self, call: Any) -> Any:
        from tests.standin.webui import _json_reply, _Reply

        with self._generation_lock:
            self._sdnext_load_from_options()
        if self._sdnext_data("reload_checkpoint_status"):
            return _Reply(self._sdnext_data("reload_checkpoint_status"), b"", content_type=None)
        return _json_reply(200, {})

    def _sdnext_load_from_options(self) -> None:
        """reload_model_weights(): load what the options name, if it resolves (lock held by the caller)."""
        with self._lock:
            name = self._options["sd_model_checkpoint"]
        model = self._resolve_checkpoint(name)
        if model is not None:
            self._load(model)

    # ---- generation -----------------------------------------------------------------------------------------

    def _sdnext_apply_overrides(self, overrides: dict[str, Any]) -> dict[str, Any]:
        """process_images' override handling, before the job (generation lock held).

        Returns the stored options to restore afterwards; applies the rest to the options.
        """
        stored: dict[str, Any] = {}
        with self._lock:
            for key, value in list(overrides.items()):
                if key not in self._options:
                    overrides.pop(key)
                    continue
                current = self._options[key]
                if current == value or (isinstance(current, str) and os.path.splitext(current)[0] == value):
                    overrides.pop(key)
        name = overrides.get("sd_model_checkpoint")
        if name is not None and self._sdnext_exact(name) is None:
            overrides.pop("sd_model_checkpoint")  # "Override not found", then reload_model_weights()
            self._sdnext_load_from_options()
        if overrides.get("schedulers_sigma") not in (None, *SIGMA_CHOICES):
            overrides.pop("schedulers_sigma")
        with self._lock:
            stored = {key: self._options[key] for key in overrides}
            self._options.update(overrides)
        if "sd_model_checkpoint" in overrides:
            self._load(self._sdnext_exact(overrides["sd_model_checkpoint"]))
        return stored

    def _sdnext_restore(self, stored: dict[str, Any]) -> None:
        """override_settings_restore_afterwards: the old options back, and the model reloaded (a second load)."""
        with self._lock:
            self._options.update(stored)
        if "sd_model_checkpoint" in stored:
            self._sdnext_load_from_options()

    def _sdnext_hires_size(self, params: dict[str, Any], width: int, height: int) -> tuple[int, int]:
        """The upscaled size, or the first-pass size when the upscaler is not one SD.Next lists (``Latent``)."""
        upscaler = params.get("hr_upscaler")
        if self._sdnext_data("hires_needs_resize_mode"):  # 058a7f0: resize only with hr_resize_mode > 0 and a
            if int(params.get("hr_resize_mode") or 0) <= 0 or str(upscaler).startswith("Latent"):  # non-latent one
                return width, height
        if upscaler in NO_UPSCALE or upscaler not in {u["name"] for u in self._upscalers}:
            return width, height
        rx, ry = int(params.get("hr_resize_x") or 0), int(params.get("hr_resize_y") or 0)
        if rx and ry:
            return rx // 8 * 8, ry // 8 * 8
        scale = float(params.get("hr_scale") or 2.0)
        return int(width * scale) // 8 * 8, int(height * scale) // 8 * 8

    def _sdnext_infotext(self, params: dict[str, Any], sampler: str, seed: int, model: Any, size: tuple[int, int],
                         mode: str, job_options: dict[str, Any], upscaled: bool, inpaint: bool = False) -> str:
        """The recorded SD.Next infotext (post_txt2img_next_call.json, post_txt2img_hires_latent.json)."""
        if self._sdnext_data("infotext") == "058a7f0":
            return self._sdnext_infotext_058a7f0(params, sampler, seed, model, size, mode, inpaint)
        fields: dict[str, Any] = {"Steps": params["steps"], "Size": f"{size[0]}x{size[1]}", "Sampler": sampler}
        sigma = job_options.get("schedulers_sigma", "default")
        if sigma != "default":
            fields[SIGMA_INFOTEXT_KEY] = sigma
        fields.update({"Seed": seed, "Seed resize from": "-1x-1", "CFG scale": params["cfg_scale"],
                       "CFG rescale": params.get("diffusers_guidance_rescale", 0.7)})
        if params.get("clip_skip", 1) not in (None, 1):
            fields["Clip skip"] = params["clip_skip"]
        fields.update({"Model": model.stem, "Model hash": model.shorthash, "App": "SD.Next", "Version": "unknown",
                       "Pipeline": "StableDiffusionPipeline"})
        operations = [mode]
        if mode == "img2img":
            fields["Denoising strength"] = params.get("denoising_strength")
        if mode == "txt2img" and params.get("enable_hr"):
            operations.append("hires")
        fields["Operations"] = "; ".join(operations)
        if "hires" in operations:
            fields.update({"Refine": True, "Hires force": True,
                           "Hires steps": params.get("hr_second_pass_steps") or params["steps"],
                           "Hires strength": params.get("denoising_strength")})
            if upscaled:
                fields.update({"Hires upscaler": params.get("hr_upscaler"), "Hires scale": params.get("hr_scale")})
        lines = [params["prompt"], f"Negative prompt: {params['negative_prompt']}"]
        lines.append(", ".join(f"{k}: {v}" for k, v in fields.items()))
        return "\n".join(lines)

    def _sdnext_infotext_058a7f0(self, params: dict[str, Any], sampler: str, seed: int, model: Any,
                                 size: tuple[int, int], mode: str, inpaint: bool) -> str:
        """058a7f0's infotext, field order as in its recordings (post_txt2img_short.json, post_img2img[_inpaint]_short,
        post_txt2img_hires_*_short, post_txt2img_lora_prompt_tag_short). Not recorded: a named sampler (written
        here as ``Sampler: <name>``) and what ``Init image hash`` hashes (here: the first 8 hex of a sha256)."""
        from tests.standin.webui import LORA_TAG

        fields: dict[str, Any] = {"Steps": params["steps"], "Size": f"{size[0]}x{size[1]}"}
        if sampler == "Default":
            fields["Scheduler"] = "EulerAncestralDiscreteScheduler"  # the SD 1.5 config's scheduler
        else:
            fields["Sampler"] = sampler
        pipeline = {"txt2img": "StableDiffusionPipeline", "img2img": "StableDiffusionImg2ImgPipeline"}[mode]
        fields.update({"Seed": seed, "CFG scale": float(params["cfg_scale"]),
                       "CFG rescale": float(params.get("cfg_rescale") or 0.0), "App": "SD.Next", "Version": "unknown",
                       "Pipeline": "StableDiffusionInpaintPipeline" if inpaint else pipeline})
        operations, hires = ["inpaint" if inpaint else mode], {}
        if mode == "txt2img" and params.get("enable_hr"):
            upscaler = str(params.get("hr_upscaler"))
            latent = upscaler.startswith("Latent")
            resize_mode = int(params.get("hr_resize_mode") or 0)
            if resize_mode > 0:
                operations.append("upscale")
                scale = float(params.get("hr_scale") or 2.0)
                rx, ry = int(params.get("hr_resize_x") or 0), int(params.get("hr_resize_y") or 0)
                target = (rx, ry) if rx and ry else (int(size[0] * scale), int(size[1] * scale))
                hires.update({"Refine": True, "HiRes mode": resize_mode, "Hires upscaler": upscaler,
                              "Hires scale": scale, "Hires size": f"{target[0]}x{target[1]}"})
            if latent or params.get("hr_force"):  # the second pass
                operations.append("hires")
                # recorded: "Hires strength: 0.0" although denoising_strength was 0.5
                hires.update({"Refine": True, "Hires force": True,
                              "Hires steps": params.get("hr_second_pass_steps") or params["steps"],
                              "Hires strength": float(params.get("hr_denoising_strength") or 0.0)})
        fields.update({"Operations": "; ".join(operations), "Model": model.stem, "Model hash": model.shorthash})
        if mode == "img2img":
            fields.update({"Init image size": f"{size[0]}x{size[1]}",
                           "Init image hash": hashlib.sha256(f"{seed}".encode()).hexdigest()[:8],
                           "Denoising strength": params.get("denoising_strength")})
        fields.update(hires)
        loras = [n for n in LORA_TAG.findall(params["prompt"] or "") if n in {l["name"] for l in self._loras}]
        if loras:
            fields["LoRA networks"] = ", ".join(dict.fromkeys(loras))
        lines = [params["prompt"], f"Negative prompt: {params['negative_prompt']}", f"Template: {params['prompt']}"]
        lines.append(", ".join(f"{k}: {v}" for k, v in fields.items()))
        return "\n".join(lines)

    def _sdnext_info(self, params: dict[str, Any], sampler: str, seed: int, seeds: list[int], subseed: int,
                     model: Any, size: tuple[int, int], infotexts: list[str], count: int) -> dict[str, Any]:
        """The ``info`` keys in the recorded order: no sd_model_name, the rounded size, cfg_end null."""
        return {
            "prompt": params["prompt"], "all_prompts": [params["prompt"]] * count,
            "negative_prompt": params["negative_prompt"], "all_negative_prompts": [params["negative_prompt"]] * count,
            "seed": seed, "all_seeds": seeds, "subseed": subseed, "all_subseeds": [subseed + i for i in range(count)],
            "subseed_strength": params.get("subseed_strength", 0), "width": size[0], "height": size[1],
            "sampler_name": sampler, "cfg_scale": params["cfg_scale"], "cfg_end": None, "steps": params["steps"],
            "batch_size": params["batch_size"], "detailer": False, "detailer_model": None,
            "sd_model_hash": model.shorthash, "seed_resize_from_w": -1, "seed_resize_from_h": -1,
            "denoising_strength": params.get("denoising_strength"), "extra_generation_params": {},
            "index_of_first_image": 0, "infotexts": infotexts, "styles": params.get("styles") or [],
            "job_timestamp": time.strftime("%Y%m%d%H%M%S"), "clip_skip": params.get("clip_skip", 1)}
