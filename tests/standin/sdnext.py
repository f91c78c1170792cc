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
"""

from __future__ import annotations

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


def _fixture(name: str) -> Any:
    return load_fixture(f"sdnext/{name}")["response"]["json"]


class SdNextFlavor:
    """Mixin for ``StandInWebUI``: SD.Next's lists, model switching and generation quirks."""

    # ---- lists and state ------------------------------------------------------------------------------------

    def _sdnext_static_shapes(self) -> None:
        self._samplers = _fixture("get_samplers")
        self._schedulers = []
        self._upscalers = _fixture("get_upscalers")
        self._latent_modes = []
        recorded = _fixture("post_txt2img_next_call_short")["parameters"]
        defaults = {**recorded, "prompt": "", "seed": -1, "width": 1024, "height": 1024, "steps": 20}
        self._parameter_defaults = {"txt2img": dict(defaults), "img2img": {**defaults, "init_images": None}}

    def _sdnext_initial_options(self) -> dict[str, Any]:
        options = _fixture("get_options")
        options["sd_model_checkpoint"] = self._title(self._models[0])
        if self._image_format:
            options["samples_format"] = self._image_format
        return options

    def _sdnext_startup(self) -> None:
        """SD.Next loads the options' model when it starts (call from reset, lock held)."""
        self._load(self._models[0])

    def _sdnext_routes(self) -> dict[tuple[str, str], Any]:
        from tests.standin.webui import API, _json_reply

        return {("GET", f"{API}/version"): lambda call: _json_reply(200, _fixture("get_version")),
                ("POST", f"{API}/reload-checkpoint"): self._sdnext_reload_checkpoint}

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

    def _sdnext_reload_checkpoint(self, call: Any) -> Any:
        from tests.standin.webui import _json_reply

        with self._generation_lock:
            self._sdnext_load_from_options()
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
        if upscaler in NO_UPSCALE or upscaler not in {u["name"] for u in self._upscalers}:
            return width, height
        rx, ry = int(params.get("hr_resize_x") or 0), int(params.get("hr_resize_y") or 0)
        if rx and ry:
            return rx // 8 * 8, ry // 8 * 8
        scale = float(params.get("hr_scale") or 2.0)
        return int(width * scale) // 8 * 8, int(height * scale) // 8 * 8

    def _sdnext_infotext(self, params: dict[str, Any], sampler: str, seed: int, model: Any, size: tuple[int, int],
                         mode: str, job_options: dict[str, Any], upscaled: bool) -> str:
        """The recorded SD.Next infotext (post_txt2img_next_call.json, post_txt2img_hires_latent.json)."""
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
