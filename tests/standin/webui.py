"""A stand-in Stable Diffusion WebUI: a small HTTP server that imitates the ``/sdapi/v1`` API.

It lets the plugin's end-to-end tests, concurrency test, benchmark and demo run without a GPU.
It is shaped on real recorded exchanges, not on guesses:

* ``tests/fixtures/forge/*.json`` (copied from real Forge recordings) give the Forge shapes:
  ``get_sd_models.json`` (model list; ``rand-b`` unhashed until loaded, ``get_sd_models_final.json``),
  ``get_options*.json`` (the options dict, ``sd_model_checkpoint`` kept in the form it was last set),
  ``get_samplers.json``, ``get_schedulers.json``, ``get_upscalers.json``, ``get_latent_upscale_modes.json``,
  ``get_loras.json``, ``get_sd_modules.json``, ``get_progress_*.json``, ``post_txt2img_short.json`` and
  ``post_img2img_short.json`` (the ``parameters`` echo and the ``info`` keys and infotext),
  ``post_txt2img_with_lora_short.json`` (``Lora hashes``), ``bad_txt2img_unknown_sampler_short.json``
  (silent fallback to DPM++ 2M / Karras), ``bad_txt2img_*`` (422 bodies), ``bad_options_*`` (500 bodies),
  ``auth_*`` (401 bodies), ``bad_img2img_*``, ``*extra_single_image*``, ``post_interrupt_idle.json``.
  Also ``post_txt2img_hires_*`` and ``bad_txt2img_hires_without_hr_additional_modules.json`` (hires fix needs
  ``hr_additional_modules``; info keeps the first-pass size, the image is upscaled), ``post_txt2img_size_not_
  multiple_of_8.json`` (image rounded down to 8, info keeps the request), ``get_sd_models_same_file_in_two_
  folders.json``, ``*subfolder*`` (``sub/rand-b.safetensors [hash]``, ``sub_rand-b``): see ``hires.py``.
* ``tests/fixtures/sdcpp/*.json`` (stable-diffusion.cpp's ``sd-server``, ``sdcpp``): every recording is answered
  alike, generations byte for byte (info, infotexts, parameters echo, image sizes); see ``sdcpp.py``, whose
  docstring lists each reproduced behaviour.
* ``tests/fixtures/sdnext/*.json`` (SD.Next, ``sdnext``): lists, options (482 keys), model switching
  (``post_options_switch_to_b`` -> ``post_txt2img_right_after_switch`` -> ``get_options_after_switch`` ->
  ``post_txt2img_next_call``), sizes, hires, errors, JPEG images; see ``sdnext.py``.
* ``tests/fixtures/sdnext/058a7f0/*.json`` (current SD.Next, stand-in name ``sdnext-058a7f0``, in STANDIN_FLAVORS but
  not FLAVORS: flavor ``sdnext`` with ``sdnext_version`` ``058a7f0``): what differs is data in
  ``sdnext.SDNEXT_VERSIONS``.
* ``tests/fixtures/a1111/**/*.json`` (AUTOMATIC1111 1.10.1, ``a1111``): lists, options, cmd-flags, ``/internal/*``,
  error bodies, offline failures, override_settings, ControlNet and ADetailer; see ``a1111.py``. Parameters are
  Forge's without Forge's additions (``hr_additional_modules`` ...), as in the recorded ``parameters`` echo.
* ``tests/fixtures/{a1111,forge}/sdxl/get_metadata_*.json``: ``/sd_extra_networks/metadata`` (``{}`` until the UI
  rendered, then the file's metadata by bare stem), Forge's ``/sd-modules`` and a Flux checkpoint without its
  modules (shaped from Forge's source): see ``families.py``.

Usage in a test::

    with StandInWebUI("forge", auth=("user", "secret"), generation_delay=0.2) as webui:
        requests.get(webui.base_url + "/sdapi/v1/sd-models", auth=("user", "secret"))
        webui.inject("oom")                       # the next txt2img answers 500 OutOfMemoryError
        webui.requests_to("POST", "/sdapi/v1/txt2img")
        webui.requests[-1].elapsed_s              # seconds the stand-in spent on that request

For realistic payload sizes (benchmarks), ``image_content="noise"`` makes random-pixel images that
compress like photos (a 512x512 PNG is about 0.8 MB) instead of flat test patterns.

From a shell (for a demo)::

    python -m tests.standin.webui --port 7860 --flavor forge --delay 0.5 --auth user:pass
    python -m tests.standin.webui --flavor sdnext --models rand-a,sub/rand-b   # the recorded SD.Next models
    python -m tests.standin.webui --flavor forge --same-file-in-two-folders    # one hash, two checkpoints

Layout: ``StandInWebUI`` holds all state (models, options, progress, faults, records) and has one small
method per route, picked from a dispatch table keyed by ``(method, path)``; ``_Handler`` only moves bytes.
Per-server quirks live in mixins (``sdcpp.SdCppFlavor``, ``sdnext.SdNextFlavor``) and in ``hires.py``; task ids
and the queue (``force_task_id``, ``/internal/progress``) in ``tasks.py``.
Standard library and Pillow only.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import io
import json
import random
import re
import signal
import socket
import struct
import sys
import threading
import time
import traceback
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import urlsplit

from PIL import Image, ImageDraw, ImageOps, PngImagePlugin

from tests.fixtures.load import load_fixture
from tests.standin.hires import FORGE_HIRES_TYPE_ERROR, forge_hires_modules_missing, hires_extra_params, round_down_8
from tests.standin.a1111 import A1111_SHA256, NANS_MESSAGE, A1111Flavor
from tests.standin.extensions import ExtensionsMixin
from tests.standin.families import FamiliesMixin
from tests.standin.sdcpp import SDCPP_BUILDS, SdCppFlavor
from tests.standin.sdnext import SDNEXT_DEFAULT_VERSION, SDNEXT_SHA256, SdNextFlavor
from tests.standin.info_routes import InfoRoutesMixin
from tests.standin.tasks import TaskQueue

FLAVORS = ("forge", "a1111", "sdnext", "sdcpp")
# Stand-in names beyond FLAVORS: a flavour at another recorded version (tests parametrised over FLAVORS keep theirs).
# "sdnext-058a7f0" is flavor "sdnext" with sdnext_version "058a7f0" (tests/standin/sdnext.py SDNEXT_VERSIONS).
STANDIN_FLAVORS = FLAVORS + ("sdnext-058a7f0",)

API = "/sdapi/v1"

VERSIONS = {
    "forge": "f2.0.1v1.10.1-previous-669-gdfdcbab6",  # post_txt2img_short.json
    "a1111": "1.10.1",  # a1111/post_txt2img_short.json
    "sdnext": "431bcc36",
    "sdcpp": "stable-diffusion.cpp",
}

# sha256 of the real recorded checkpoints and LoRA, so that default runs reproduce the fixtures' hashes.
KNOWN_SHA256 = {
    "rand-a": "17b6bb621c7c0e48e229903f68b6a9f1af65b36aa7ac6e2a0b25a16f2b7fc4d2",
    "rand-b": "2a30d74d7c496e5ce6e4b7317d4747f1475629cd3406dcafc28a7a9ba64b5f97",
}
KNOWN_SHA256_BY_FLAVOR = {"sdnext": SDNEXT_SHA256, "a1111": A1111_SHA256}  # recorded with other random files
KNOWN_LORA_SHORTHASH = {"rand-lora": "aa8719060cd6"}  # post_txt2img_with_lora_short.json

INSTALL_DIR = {"forge": "/srv/stable-diffusion-webui", "a1111": "/srv/stable-diffusion-webui",
               "sdnext": "/srv/sdnext", "sdcpp": "/srv/sd-cpp"}

# Forge's additional parameters (API.md §6): not in A1111's parameters echo (a1111/post_txt2img_short.json).
FORGE_ONLY_PARAMETERS = {"distilled_cfg_scale", "hr_cfg", "hr_distilled_cfg", "hr_additional_modules"}

# Defaults of the API models for the fields the recorded requests had set (API.md §3.2, §3.3).
API_DEFAULTS = {"prompt": "", "negative_prompt": "", "seed": -1, "width": 512, "height": 512, "steps": 50,
                "sampler_name": None, "cfg_scale": 7.0, "batch_size": 1, "n_iter": 1}
IMG2IMG_DEFAULTS = {"denoising_strength": 0.75, "init_images": None}

INT_FIELDS = {"seed", "subseed", "seed_resize_from_h", "seed_resize_from_w", "batch_size", "n_iter", "steps",
              "width", "height", "firstphase_width", "firstphase_height", "hr_second_pass_steps", "hr_resize_x",
              "hr_resize_y", "resize_mode", "mask_blur", "mask_blur_x", "mask_blur_y", "inpainting_fill",
              "inpaint_full_res_padding", "inpainting_mask_invert"}
FLOAT_FIELDS = {"subseed_strength", "cfg_scale", "distilled_cfg_scale", "denoising_strength", "eta",
                "s_min_uncond", "s_churn", "s_tmax", "s_tmin", "s_noise", "refiner_switch_at", "hr_scale",
                "hr_cfg", "hr_distilled_cfg", "image_cfg_scale", "initial_noise_multiplier"}
BOOL_FIELDS = {"restore_faces", "tiling", "do_not_save_samples", "do_not_save_grid",
               "override_settings_restore_afterwards", "disable_extra_networks", "enable_hr", "send_images",
               "save_images", "include_init_images", "mask_round", "inpaint_full_res"}
TRUE_WORDS = {"1", "true", "t", "yes", "y", "on"}
FALSE_WORDS = {"0", "false", "f", "no", "n", "off"}

LORA_TAG = re.compile(r"<lora:([^:>]+)(?::[^>]*)?>")

LOGIN_PAGE = (b"<!DOCTYPE html><html><head><title>Sign in</title></head><body><form method=\"post\" "
              b"action=\"/login\"><input name=\"username\"><input name=\"password\" type=\"password\">"
              b"<button>Log in</button></form></body></html>")
NGINX_502 = (b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1>"
             b"</center><hr><center>nginx</center></body></html>")

IMAGE_CONTENTS = ("pattern", "noise")
NOISE_VARIANTS = 4  # distinct cached noise images per (size, format): batch index modulo this

FAULTS = ("oom", "html_502", "html_200", "truncated_json", "invalid_base64", "non_image", "empty_images",
          "drop_connection", "cut_midbody", "hang", "unauthorized", "model_switch_ignored", "slow_headers", "nans")


# --------------------------------------------------------------------------------------------------------------
# Small value types
# --------------------------------------------------------------------------------------------------------------

@dataclass
class RecordedRequest:
    """One request as the stand-in received it."""

    method: str
    path: str                      # including the query string
    headers: dict[str, str]
    json: Any                      # parsed body, or None when empty or not JSON
    raw_len: int
    init_images: list[bytes] = field(default_factory=list)  # img2img: base64-decoded init images
    mask: bytes | None = None                                # img2img: base64-decoded mask
    # Seconds the stand-in spent on it: from having read the whole body to just before writing the answer
    # (the time spent sending the answer is the client's reading time, not counted). None until answered.
    elapsed_s: float | None = None


@dataclass
class _Reply:
    """What the handler writes back. ``action``: "send", "drop" (close, no answer) or "cut" (half a body)."""

    status: int
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    action: str = "send"


class _Respond(Exception):
    """Raised inside a route to answer early (errors, validation)."""

    def __init__(self, reply: _Reply):
        super().__init__(reply.status)
        self.reply = reply


@dataclass
class _Call:
    """One incoming request, as the route functions see it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    raw: bytes
    record: RecordedRequest
    fault: str | None


@dataclass
class _Model:
    path: str     # relative to the models folder, without extension: "rand-a", "sub/rand-b"
    sha256: str
    hashed: bool  # a title gains its "[hash]" only once the file has been hashed (on first load)

    @property
    def stem(self) -> str:
        """The file name without folder and extension (A1111's name_for_extra): what infotexts call the model."""
        return self.path.rsplit("/", 1)[-1]

    @property
    def shorthash(self) -> str:
        return self.sha256[:10]


def _json_reply(status: int, obj: Any, headers: dict[str, str] | None = None) -> _Reply:
    body = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return _Reply(status, body, headers=dict(headers or {}))


def _fixture_json(name: str) -> Any:
    return load_fixture("forge/" + name)["response"]["json"]


class _FIFOLock:
    """A lock granted strictly in arrival order, like A1111/Forge's ``queue_lock`` (API.md §5)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._next_ticket = 0
        self._now_serving = 0

    def __enter__(self) -> None:
        with self._cond:
            ticket = self._next_ticket
            self._next_ticket += 1
            while ticket != self._now_serving:
                self._cond.wait()

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self._now_serving += 1
            self._cond.notify_all()


# --------------------------------------------------------------------------------------------------------------
# The stand-in
# --------------------------------------------------------------------------------------------------------------

class StandInWebUI(InfoRoutesMixin, SdCppFlavor, SdNextFlavor, A1111Flavor, ExtensionsMixin, FamiliesMixin):
    """An in-process imitation of a WebUI's ``/sdapi/v1`` API on 127.0.0.1.

    flavor: "forge" | "a1111" | "sdnext" | "sdcpp".
    models: checkpoint paths without extension, default ["rand-a", "rand-b"] (sdcpp: only the first is served);
        a subfolder is written "sub/rand-b" and named as each server names it (Forge: title
        "sub/rand-b.safetensors [hash]", model_name "sub_rand-b"; SD.Next: "sub/rand-b [hash]", "sub/rand-b").
    hashes: sha256 per model path, to override the defaults (the recorded hashes, else one derived from the
        name). Give two models the same sha256 for byte-identical files in two folders
        (get_sd_models_same_file_in_two_folders.json): ``same_file_in_two_folders()`` builds that stand-in.
    loras: LoRA names, default ["rand-lora"].
    auth: None or (user, password): HTTP Basic like ``--api-auth`` (ignored by sdcpp).
    generation_delay: seconds each generation holds the FIFO generation lock (simulated GPU time).
    image_format: "png" or "jpeg" to override the flavour's default (png; sdnext jpeg).
    unhashed: model paths whose sha256 is not known yet (title without "[hash]", hash null) until first loaded;
        default: every model but the first, as in get_sd_models.json (SD.Next: none, it hashes at start-up).
    load_delay: extra seconds a model load takes inside the generation lock (default 0).
    image_content: "pattern" (default): flat synthetic images, a colour and four rectangles, small PNGs;
        "noise": random pixels, so a PNG is about 3 bytes per pixel like a real photo (512x512 about 0.8 MB),
        for benchmarks. Noise ignores seed, model and img2img inputs; its encoded bytes are made once per
        (width, height, format, batch index mod 4) and reused, so the stand-in's own encoding time stays out
        of measurements. The PNG infotext chunk, seeds and ``info`` are still those of each request.
    controlnet, adetailer: install those extensions (a1111, forge only; see tests/standin/extensions.py).
    sdcpp_native_api: sdcpp only: serve the native async job API /sdcpp/v1 (default); False is an older
        sd-server without it (every /sdcpp/v1/* is a bare 404). See sdcpp.SdCppJobs.
    sdcpp_build: sdcpp only: "git" (tests/fixtures/sdcpp/*.json: the infotext's generator is 97d2990 /
        master-827-97d2990) or "no-git" (97d29908/ and async_jobs/: built without .git, "unknown").
    """

    def __init__(self, flavor: str = "forge", *, models: list[str] | None = None, loras: list[str] | None = None,
                 auth: tuple[str, str] | None = None, generation_delay: float = 0.0, image_format: str | None = None,
                 host: str = "127.0.0.1", port: int = 0, unhashed: list[str] | None = None,
                 load_delay: float = 0.0, image_content: str = "pattern",
                 hashes: dict[str, str] | None = None, controlnet: bool = False, adetailer: bool = False,
                 sdcpp_native_api: bool = True, sdcpp_build: str = "git") -> None:
        if flavor not in STANDIN_FLAVORS:
            raise ValueError(f"flavor must be one of {STANDIN_FLAVORS}, not {flavor!r}")
        flavor, _, version = flavor.partition("-")
        self.sdnext_version = (version or SDNEXT_DEFAULT_VERSION) if flavor == "sdnext" else None
        if image_content not in IMAGE_CONTENTS:
            raise ValueError(f"image_content must be one of {IMAGE_CONTENTS}, not {image_content!r}")
        if image_format not in (None, "png", "jpeg", "jpg"):
            raise ValueError("image_format must be None, 'png' or 'jpeg'")
        if sdcpp_build not in SDCPP_BUILDS:
            raise ValueError(f"sdcpp_build must be one of {tuple(SDCPP_BUILDS)}, not {sdcpp_build!r}")
        self.flavor = flavor
        self._sdcpp_native_api, self._sdcpp_build = flavor == "sdcpp" and sdcpp_native_api, sdcpp_build
        self.auth = tuple(auth) if auth else None
        self.generation_delay = float(generation_delay)
        self.load_delay = float(load_delay)
        self.host = host
        self.port = port
        self.base_url = ""
        self._model_stems = list(models or ["rand-a", "rand-b"])
        if flavor == "sdcpp":
            self._model_stems = self._model_stems[:1]
        if unhashed is None:
            unhashed = [] if flavor == "sdnext" else self._model_stems[1:]
        self._unhashed = set(unhashed)
        self._hashes = {**KNOWN_SHA256, **KNOWN_SHA256_BY_FLAVOR.get(flavor, {}),
                        **(self._sdnext_sha256() if flavor == "sdnext" else {}), **(hashes or {})}
        self._lora_names = list(["rand-lora"] if loras is None else loras)
        self._image_format = {"jpeg": "jpg"}.get(image_format or "", image_format)
        self.image_content = image_content
        self._noise_cache: dict[tuple[int, int, str, int], bytes] = {}  # kept across reset(): pure of its key
        self._noise_lock = threading.Lock()

        self._lock = threading.RLock()          # guards every mutable attribute below
        self._generation_lock = self.tasks = TaskQueue(flavor, _FIFOLock())  # task ids: tests/standin/tasks.py
        self.tasks.job_state = self._job_state
        self._stopping = threading.Event()
        self._interrupted = threading.Event()   # the running job should stop early
        self._interrupt_count = 0               # every POST /interrupt, for the "hang" fault
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

        self.controlnet_installed, self.adetailer_installed, self.extension_log = controlnet, adetailer, []
        self._load_static_shapes()
        self._routes = self._build_routes()
        self.reset()

    # ---- public API ------------------------------------------------------------------------------------------

    @classmethod
    def same_file_in_two_folders(cls, flavor: str = "forge", **kwargs: Any) -> StandInWebUI:
        """Two byte-identical checkpoints, ``rand-a`` and ``sub/rand-b``, sharing one hash, both hashed, as in
        get_sd_models_same_file_in_two_folders.json (so a hash alone names two checkpoints)."""
        same = SDNEXT_SHA256["rand-a"]  # the file of that recording (SD.Next's rand-a is the same random file)
        return cls(flavor, models=["rand-a", "sub/rand-b"], hashes={"rand-a": same, "sub/rand-b": same},
                   unhashed=[], **kwargs)

    def start(self) -> str:
        """Start serving in a daemon thread; return the base URL ("http://127.0.0.1:PORT")."""
        if self._server is not None:
            return self.base_url
        self._stopping.clear()
        self._server = _Server((self.host, self.port), _Handler, self)
        self.port = self._server.server_address[1]
        self.base_url = f"http://{self.host}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name=f"standin-webui-{self.port}", daemon=True)
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        """Stop serving, end hanging requests and close open keep-alive connections."""
        self._stopping.set()
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_all_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> StandInWebUI:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received since the last reset, oldest first (a snapshot)."""
        with self._lock:
            return list(self._records)

    def requests_to(self, method: str, path_prefix: str) -> list[RecordedRequest]:
        """The recorded requests with this method whose path starts with ``path_prefix``."""
        return [r for r in self.requests if r.method == method.upper() and r.path.startswith(path_prefix)]

    @property
    def model_loads(self) -> int:
        """How many times the loaded model changed, the first load included."""
        with self._lock:
            return self._model_loads

    @property
    def active_checkpoint(self) -> str:
        """What GET /options reports as ``sd_model_checkpoint``: the form it was last set in."""
        with self._lock:
            return self._options["sd_model_checkpoint"]

    @property
    def loaded_model(self) -> str | None:
        """Stem of the model currently "in VRAM" (None before the first generation, or after an SD.Next unload)."""
        with self._lock:
            return self._loaded.stem if self._loaded else None

    @property
    def last_images(self) -> list[bytes]:
        """Encoded bytes of the images made by the last generation or extras call (before any injected fault)."""
        with self._lock:
            return list(self._last_images)

    @property
    def errors(self) -> list[str]:
        """Tracebacks of exceptions raised while handling requests (answered as 500); for debugging tests."""
        with self._lock:
            return list(self._errors)

    def inject(self, fault: str, path: str = "/sdapi/v1/txt2img", times: int = 1) -> None:
        """Make the next ``times`` requests to ``path`` fail with ``fault`` (one of FAULTS).

        ``path`` is matched exactly, without the query; "txt2img" is short for "/sdapi/v1/txt2img".
        A method may lead it ("POST /sdapi/v1/options") to leave the other methods alone.
        """
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}")
        method, _, bare = path.rpartition(" ")
        if not bare.startswith("/"):
            bare = f"{API}/{bare}"
        path = f"{method} {bare}" if method else bare
        with self._lock:
            self._faults.setdefault(path, []).extend([fault] * times)

    def reset(self) -> None:
        """Back to the state right after construction: records, faults, counters, models and options."""
        with self._lock:
            self._records: list[RecordedRequest] = []
            self._faults: dict[str, list[str]] = {}
            self._errors: list[str] = []
            self._last_images: list[bytes] = []
            self._model_loads = 0
            self._models = [_Model(path, self._hashes.get(path) or hashlib.sha256(path.encode()).hexdigest(),
                                   hashed=path not in self._unhashed) for path in self._model_stems]
            self._loaded: _Model | None = None
            self._wanted: _Model | None = self._models[0]  # the model the options' checkpoint resolves to
            self._options = self._initial_options()
            self._progress = dict(_fixture_json("get_progress_idle.json")["state"])
            self._job_started = 0.0
            self._interrupted.clear()
            if self.flavor == "sdnext":
                self._sdnext_startup()
        if self.flavor == "sdcpp":
            self._sdcpp_jobs_reset()

    # ---- static shapes, per flavour --------------------------------------------------------------------------

    def _load_static_shapes(self) -> None:
        """Read the list shapes once from the recorded fixtures and adapt them to the flavour."""
        samplers = _fixture_json("get_samplers.json")
        schedulers = _fixture_json("get_schedulers.json")
        self._samplers = samplers
        self._schedulers = schedulers

        upscalers = _fixture_json("get_upscalers.json")
        latent_modes = _fixture_json("get_latent_upscale_modes.json")
        self._upscalers = upscalers
        self._latent_modes = latent_modes

        recorded_lora = _fixture_json("get_loras.json")[0]
        self._loras = []
        for name in self._lora_names:
            shorthash = KNOWN_LORA_SHORTHASH.get(name) or hashlib.sha256(f"lora:{name}".encode()).hexdigest()[:12]
            entry = {"name": name, "alias": name, "path": f"{INSTALL_DIR[self.flavor]}/models/Lora/{name}.safetensors",
                     "metadata": recorded_lora["metadata"] if name == recorded_lora["name"] else {},
                     "shorthash": shorthash}
            self._loras.append(entry)

        txt2img = _fixture_json("post_txt2img_short.json")["parameters"]
        img2img = _fixture_json("post_img2img_short.json")["parameters"]
        self._parameter_defaults = {"txt2img": {**txt2img, **API_DEFAULTS},
                                    "img2img": {**img2img, **API_DEFAULTS, **IMG2IMG_DEFAULTS}}
        for defaults in self._parameter_defaults.values():
            if self.flavor != "forge":
                for key in FORGE_ONLY_PARAMETERS:
                    defaults.pop(key, None)
        if self.flavor == "sdcpp":
            self._sdcpp_static_shapes()
        elif self.flavor == "sdnext":
            self._sdnext_static_shapes()
        elif self.flavor == "a1111":
            self._a1111_static_shapes()

    def _initial_options(self) -> dict[str, Any]:
        first = self._models[0]
        if self.flavor == "sdcpp":
            return {"samples_format": self._image_format or "png", "sd_model_checkpoint": first.stem}
        if self.flavor == "sdnext":
            return self._sdnext_initial_options()
        if self.flavor == "a1111":
            return self._a1111_initial_options()
        options = _fixture_json("get_options.json")  # 331 real Forge keys
        if self.flavor != "forge":
            options = {k: v for k, v in options.items() if not k.startswith("forge_")}
        options["samples_format"] = self._image_format or ("jpg" if self.flavor == "sdnext" else "png")
        # Forge reports the title without the hash; A1111 and SD.Next store the title of the loaded file.
        options["sd_model_checkpoint"] = (f"{first.path}.safetensors" if self.flavor == "forge"
                                          else self._title(first))
        options["sd_checkpoint_hash"] = ""
        return options

    def _build_routes(self) -> dict[tuple[str, str], Callable[[_Call], _Reply]]:
        """The dispatch table: (method, path) -> route function, for this flavour."""
        routes = {
            ("GET", f"{API}/sd-models"): self._get_sd_models,
            ("GET", f"{API}/options"): self._get_options,
            ("GET", f"{API}/samplers"): lambda call: _json_reply(200, self._samplers),
            ("GET", f"{API}/upscalers"): lambda call: _json_reply(200, self._upscalers),
            ("GET", f"{API}/loras"): self._get_loras,
            ("POST", f"{API}/txt2img"): lambda call: self._generate(call, "txt2img"),
            ("POST", f"{API}/img2img"): lambda call: self._generate(call, "img2img"),
        }
        routes.update(self.tasks.routes())
        if self.flavor != "sdnext":
            routes[("GET", f"{API}/schedulers")] = lambda call: _json_reply(200, self._schedulers)
            routes[("GET", f"{API}/latent-upscale-modes")] = lambda call: _json_reply(200, self._latent_modes)
        if self.flavor == "sdcpp":
            if self._sdcpp_native_api:
                routes.update(self._sdcpp_native_routes())
            return routes
        routes.update({
            ("POST", f"{API}/options"): self._post_options,
            ("POST", f"{API}/extra-single-image"): self._extra_single_image,
            ("GET", f"{API}/progress"): self._get_progress,
            ("POST", f"{API}/interrupt"): self._post_interrupt,
            ("POST", f"{API}/skip"): self._post_skip,
            ("GET", f"{API}/cmd-flags"): self._get_cmd_flags,
            ("POST", f"{API}/refresh-checkpoints"): lambda call: _json_reply(200, None),
            ("POST", f"{API}/refresh-loras"): lambda call: _json_reply(200, None),
        })
        routes.update(self._info_routes())
        if self.flavor == "forge":
            routes[("GET", f"{API}/sd-modules")] = lambda call: _json_reply(200, _fixture_json("get_sd_modules.json"))
        else:
            routes[("GET", f"{API}/sd-vae")] = lambda call: _json_reply(200, [])
        if self.flavor == "sdnext":
            routes.update(self._sdnext_routes())  # a None route: not on this version (404)
        routes.update(self._extension_routes())
        if self.flavor == "a1111":
            routes.update(self._a1111_routes())
        routes.update(self._family_routes())  # /sd_extra_networks/metadata: tests/standin/families.py
        return {key: route for key, route in routes.items() if route is not None}

    # ---- error bodies, per flavour (API.md §8) ---------------------------------------------------------------

    def _exception_reply(self, error: str, message: str, status: int = 500) -> _Reply:
        """A Python exception turned into JSON by the server's middleware."""
        if self.flavor == "forge":  # this Forge names the text "message" (bad_options_unknown_checkpoint.json)
            body = {"error": error, "detail": "", "body": "", "message": message}
        elif self.flavor == "a1111":
            body = {"error": error, "detail": "", "body": "", "errors": message}
        elif self.flavor == "sdnext":
            body = {"error": error, "code": status, "detail": "", "body": "", "errors": message}
        else:
            body = {"error": "server_error", "message": message}
        return _json_reply(status, body)

    def _http_error(self, status: int, detail: str, headers: dict[str, str] | None = None) -> _Reply:
        """An HTTPException raised by a route (Init image not found, Not authenticated, ...)."""
        if self.flavor == "forge":  # recorded: plain FastAPI body
            body: dict[str, Any] = {"detail": detail}
        elif self.flavor == "a1111":  # api_middleware wraps it and drops the headers
            body, headers = {"error": "HTTPException", "detail": detail, "body": "", "errors": ""}, None
        elif self.flavor == "sdnext":
            body = {"error": "HTTPException", "code": status, "detail": detail, "body": "", "errors": f"{status}: {detail}"}
            headers = None
        else:
            body = {"error": detail}
        return _json_reply(status, body, headers)

    def _not_found(self) -> _Reply:
        if self.flavor == "sdcpp":  # cpp-httplib: 404, empty body, also for a wrong method
            return _Reply(404, b"", content_type=None)
        return _json_reply(404, {"detail": "Not Found"})

    # ---- dispatch --------------------------------------------------------------------------------------------

    def _handle(self, method: str, target: str, headers: dict[str, str], raw: bytes,
                received: float | None = None) -> _Reply:
        """Record the request, answer it, and stamp ``record.elapsed_s`` from ``received`` (monotonic) on."""
        received = time.monotonic() if received is None else received
        record = RecordedRequest(method, target, headers, _parse_json_or_none(raw), len(raw))
        self.tasks.arrived(method, target, raw)
        with self._lock:
            self._records.append(record)
        try:
            return self._answer(method, target, headers, raw, record)
        finally:
            record.elapsed_s = time.monotonic() - received

    def _answer(self, method: str, target: str, headers: dict[str, str], raw: bytes,
                record: RecordedRequest) -> _Reply:
        """Apply injected faults, check auth and run the route."""
        split = urlsplit(target)
        path = split.path
        with self._lock:
            queue = self._faults.get(f"{method} {path}") or self._faults.get(path)
            fault = queue.pop(0) if queue else None
        call = _Call(method, path, split.query, headers, raw, record, fault)

        early = self._fault_before_handling(call)
        if early is not None:
            return early

        route = self._routes.get((method, path))
        if route is None and self.flavor == "sdcpp":
            route = self._sdcpp_job_route(method, path)  # /sdcpp/v1/jobs/{id}[/cancel]
        if route is None:
            if self.flavor != "sdcpp" and any(p == path for _, p in self._routes):
                return _json_reply(405, {"detail": "Method Not Allowed"})
            return self._not_found()

        denied = self._check_auth(call)
        if denied is not None:
            return denied

        try:
            reply = route(call)
        except _Respond as respond:
            reply = respond.reply
        except Exception as exc:  # a bug or an unexpected input: answer 500 like the middleware, keep serving
            with self._lock:
                self._errors.append(traceback.format_exc())
            reply = self._exception_reply(type(exc).__name__, str(exc))
        return self._fault_after_handling(call, reply)

    def _check_auth(self, call: _Call) -> _Reply | None:
        if self.auth is None or self.flavor == "sdcpp":
            return None
        if self.flavor in ("forge", "a1111") and call.path in (f"{API}/loras", f"{API}/refresh-loras"):
            return None  # registered by the Lora extension with plain @app.get: not covered by --api-auth
        if self.flavor in ("forge", "a1111") and call.path.startswith("/sd_extra_networks/"):
            return None  # ui_extra_networks.add_pages_to_demo: plain app.add_api_route, no --api-auth
        header = call.headers.get("authorization", "")
        challenge = {"www-authenticate": "Basic"}
        if not header.lower().startswith("basic "):
            return self._http_error(401, "Not authenticated", challenge)
        try:
            user, _, password = base64.b64decode(header[6:].strip()).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return self._http_error(401, "Not authenticated", challenge)
        if (user, password) != self.auth:
            return self._http_error(401, "Incorrect username or password", challenge)
        return None

    # ---- faults ----------------------------------------------------------------------------------------------

    def _fault_before_handling(self, call: _Call) -> _Reply | None:
        fault = call.fault
        if fault == "oom":
            if self.flavor == "sdcpp":
                return _json_reply(500, {"error": "generate_image returned no results"})
            body = {"error": "OutOfMemoryError", "detail": "", "body": "",
                    self._message_key(): "CUDA out of memory. Tried to allocate 2.00 GiB"}
            return _json_reply(500, body)
        if fault == "nans":  # a1111/bad_txt2img_lora_nans_in_unet.json (A1111 checks; Forge did not)
            return self._exception_reply("NansException", NANS_MESSAGE)
        if fault == "html_502":
            return _Reply(502, NGINX_502, content_type="text/html")
        if fault == "html_200":
            return _Reply(200, LOGIN_PAGE, content_type="text/html; charset=utf-8")
        if fault == "unauthorized":
            return _json_reply(401, {"detail": "Not authenticated"}, {"www-authenticate": "Basic"})
        if fault == "drop_connection":
            return _Reply(0, action="drop")
        if fault == "hang":
            seen = self._interrupt_count
            while not self._stopping.is_set() and self._interrupt_count == seen:
                time.sleep(0.01)
            return _Reply(0, action="drop")
        if fault == "slow_headers":
            self._stopping.wait(2.0)
        return None

    def _fault_after_handling(self, call: _Call, reply: _Reply) -> _Reply:
        fault = call.fault
        if fault == "truncated_json":
            return _Reply(reply.status, reply.body[: len(reply.body) // 2], reply.content_type, reply.headers)
        if fault == "cut_midbody":
            return _Reply(reply.status, reply.body, reply.content_type, reply.headers, action="cut")
        if fault in ("invalid_base64", "non_image", "empty_images") and reply.status == 200:
            payload = json.loads(reply.body)
            if not isinstance(payload, dict):
                return reply
            replacement = {"invalid_base64": ["not base64!!"],
                           "non_image": [base64.b64encode(b"hello world, not an image").decode()],
                           "empty_images": []}[fault]
            if "images" in payload:
                payload["images"] = replacement
            elif "image" in payload:  # extra-single-image
                payload["image"] = replacement[0] if replacement else ""
            return _json_reply(200, payload, reply.headers)
        return reply

    def _message_key(self) -> str:
        return "message" if self.flavor in ("forge", "sdcpp") else "errors"

    # ---- models and aliases (API.md §4.2) --------------------------------------------------------------------

    def _title(self, model: _Model) -> str:
        """sd-models' title: Forge/A1111 "sub/x.safetensors [hash]", SD.Next "sub/x [hash]", sd.cpp the stem."""
        if self.flavor == "sdcpp":
            return model.stem
        if self.flavor == "sdnext":
            return f"{model.path} [{model.shorthash}]" if model.hashed else model.path
        return f"{model.path}.safetensors [{model.shorthash}]" if model.hashed else f"{model.path}.safetensors"

    def _model_name(self, model: _Model) -> str:
        """sd-models' model_name: Forge/A1111 turn the folder's "/" into "_" (sub_rand-b), SD.Next keeps it."""
        return model.path if self.flavor == "sdnext" else model.path.replace("/", "_")

    def _filename(self, model: _Model) -> str:
        return f"{INSTALL_DIR[self.flavor]}/models/Stable-diffusion/{model.path}.safetensors"

    def _aliases(self, model: _Model) -> set[str]:
        if self.flavor == "sdnext":
            return self._sdnext_aliases(model)
        # A1111/Forge CheckpointInfo.ids: model_name, name (with extension), name_for_extra (the stem), title.
        # The path without extension ("sub/rand-b") is not one of them (bad_options_subfolder_name_...json).
        names = {self._model_name(model), f"{model.path}.safetensors", model.stem, self._title(model)}
        if model.hashed:
            names |= {model.shorthash, model.sha256, f"{model.path}.safetensors [{model.shorthash}]",
                      f"{model.stem} [{model.shorthash}]"}
        return names

    def _resolve_checkpoint(self, name: Any) -> _Model | None:
        if not isinstance(name, str) or not name:
            return None
        with self._lock:
            # A1111/Forge register each model's ids in one dict in list order: when two files share a hash, the
            # later one owns it. SD.Next's reload picks the first match.
            for model in (self._models if self.flavor == "sdnext" else reversed(self._models)):
                if name in self._aliases(model):
                    return model
            if self.flavor == "sdnext":  # a unique case-insensitive prefix of the title's basename
                matches = [m for m in self._models if m.stem.lower().startswith(name.lower())]
                if len(matches) == 1:
                    return matches[0]
        return None

    def _load(self, model: _Model | None) -> None:
        """Make ``model`` the one in memory (call with the generation lock held)."""
        if model is None or model is self._loaded:
            return
        if self.load_delay:
            self._stopping.wait(self.load_delay)
        with self._lock:
            model.hashed = True  # loading a file computes its sha256
            self._loaded = model
            self._model_loads += 1
            if self.flavor != "sdcpp":
                self._options["sd_checkpoint_hash"] = model.sha256

    # ---- simple routes ---------------------------------------------------------------------------------------

    def _get_sd_models(self, call: _Call) -> _Reply:
        with self._lock:
            models = list(self._models)
        if self.flavor == "sdcpp":  # one fake entry, sorted keys (routes_sdapi.cpp, get_sd_models.json)
            m = models[0]
            return _json_reply(200, [{"config": None, "filename": f"{m.stem}.safetensors", "hash": "8888888888",
                                      "model_name": m.stem, "sha256": "8" * 64, "title": m.stem}])
        items = []
        for m in models:
            shorthash, sha256 = (m.shorthash, m.sha256) if m.hashed else (None, None)
            if self.flavor == "sdnext":  # its own key order (sdnext/get_sd_models.json)
                item = {"title": self._title(m), "model_name": self._model_name(m), "filename": self._filename(m),
                        "type": "safetensors", "sha256": sha256, "hash": shorthash, "config": None}
            else:
                item = {"title": self._title(m), "model_name": self._model_name(m), "hash": shorthash,
                        "sha256": sha256, "filename": self._filename(m), "config": None}
            items.append(item)
        return _json_reply(200, items)

    def _get_options(self, call: _Call) -> _Reply:
        with self._lock:
            return _json_reply(200, dict(self._options))

    def _get_loras(self, call: _Call) -> _Reply:
        if self.flavor == "sdcpp":
            return _json_reply(200, self._sdcpp_loras_listed())
        return _json_reply(200, [{k: v for k, v in l.items() if k != "shorthash"} for l in self._loras])

    def _get_cmd_flags(self, call: _Call) -> _Reply:
        """Exists only so tests can assert the plugin never calls it: the real one leaks secrets."""
        if self.flavor == "sdnext":
            return _json_reply(200, {"port": 7860, "listen": False, "api_only": True})
        message = ("1 validation errors:\n  {'type': 'string_type', 'loc': ('response', 'port'), "
                   "'msg': 'Input should be a valid string', 'input': 7860}\n")
        return self._exception_reply("ResponseValidationError", message)

    def _job_state(self) -> tuple[dict[str, Any], float]:
        """The running job's ``/progress`` state and start time (for ``/internal/progress``, tasks.py)."""
        with self._lock:
            return dict(self._progress), self._job_started

    def _get_progress(self, call: _Call) -> _Reply:
        with self._lock:
            state = dict(self._progress)
            started = self._job_started
        progress, eta = 0.0, 0.0
        if state["job_count"] > 0:
            done = state["sampling_step"] / state["sampling_steps"] if state["sampling_steps"] else 0.0
            progress = min(1.0, 0.01 + done)
            elapsed = time.monotonic() - started
            eta = elapsed / progress - elapsed
        return _json_reply(200, {"progress": progress, "eta_relative": eta, "state": state,
                                 "current_image": None, "textinfo": None})

    def _post_interrupt(self, call: _Call) -> _Reply:
        with self._lock:
            self._interrupt_count += 1
            self._progress["interrupted"] = True
        self._interrupted.set()
        return _json_reply(200, {})

    def _post_skip(self, call: _Call) -> _Reply:
        with self._lock:
            self._progress["skipped"] = True
        return _json_reply(200, None)

    def _post_options(self, call: _Call) -> _Reply:
        body = self._json_object(call)
        ignore_checkpoint = call.fault == "model_switch_ignored"
        updated = []
        for key, value in body.items():
            with self._lock:
                known = key in self._options or (self.flavor == "sdnext" and key in self._sdnext_known_options())
            if not known:
                if self.flavor == "sdnext":
                    updated.append({key: False})
                    continue
                raise _Respond(self._exception_reply("KeyError", repr(key)))  # bad_options_unknown_key.json
            if self.flavor == "sdnext" and self._sdnext_data("options_switch_model") and key == "sd_model_checkpoint":
                updated.append({key: self._sdnext_switch_option(value)})  # 058a7f0: the load is in the call
                continue
            if self.flavor == "sdnext":  # only stored, even an unknown model; the loaded one stays
                ignored = ignore_checkpoint and key == "sd_model_checkpoint"
                updated.append({key: True if ignored else self._sdnext_set_option(key, value)})
                continue
            if key == "sd_model_checkpoint":
                self._set_checkpoint(value, ignore=ignore_checkpoint)
            else:
                with self._lock:
                    old = self._options[key]
                    self._options[key] = float(value) if isinstance(old, float) and isinstance(value, int) else value
            updated.append({key: True})
        if self.flavor == "sdnext":
            return _json_reply(200, {"updated": updated})
        return _json_reply(200, None)

    def _set_checkpoint(self, name: Any, *, ignore: bool) -> None:
        """A1111/Forge: an unknown name is 500 ``model '...' not found`` (SD.Next: see _sdnext_set_option)."""
        model = self._resolve_checkpoint(name)
        if model is None:
            raise _Respond(self._exception_reply("RuntimeError", f"model {name!r} not found"))
        if ignore:  # A1111: the load failed, Options.set reverted, the API still answered 200
            return
        with self._lock:
            self._options["sd_model_checkpoint"] = name
            self._wanted = model
        if self.flavor == "forge":
            return  # Forge only records the choice; the model loads at the next generation
        with self._generation_lock:  # A1111 loads synchronously, after the running job
            before = self._loaded
            self._load(model)
            if self.flavor == "a1111" and self._loaded is not before:  # the load stores the file's title
                with self._lock:  # a1111/get_options_after_switch_to_b.json; unchanged: as sent (get_options_final)
                    self._options["sd_model_checkpoint"] = self._title(model)

    # ---- request parsing and validation ----------------------------------------------------------------------

    def _json_object(self, call: _Call) -> dict[str, Any]:
        """The body as a JSON object, or a 422 like FastAPI's (bad_txt2img_empty_body / malformed_json)."""
        v2 = self.flavor == "forge"
        missing = ({"type": "missing", "loc": ["body"], "msg": "Field required", "input": None,
                    "url": "https://errors.pydantic.dev/2.8/v/missing"} if v2
                   else {"loc": ["body"], "msg": "field required", "type": "value_error.missing"})
        text = call.raw.decode("utf-8", errors="replace")
        if not text.strip():
            raise _Respond(_json_reply(422, {"detail": [missing]}))
        try:
            body = json.loads(text)
        except json.JSONDecodeError as exc:
            detail = ({"type": "json_invalid", "loc": ["body", exc.pos], "msg": "JSON decode error", "input": {},
                       "ctx": {"error": exc.msg}} if v2
                      else {"loc": ["body", exc.pos], "msg": str(exc) if self.flavor == "a1111" else exc.msg,
                            "type": "value_error.jsondecode",
                            "ctx": {"msg": exc.msg, **({"doc": exc.doc} if self.flavor == "a1111" else {}),
                                    "pos": exc.pos, "lineno": exc.lineno, "colno": exc.colno}})
            raise _Respond(_json_reply(422, {"detail": [detail]}))
        if body is None:
            raise _Respond(_json_reply(422, {"detail": [missing]}))
        if not isinstance(body, dict):
            detail = ({"type": "model_attributes_type", "loc": ["body"],
                       "msg": "Input should be a valid dictionary or object to extract fields from", "input": body,
                       "url": "https://errors.pydantic.dev/2.8/v/model_attributes_type"} if v2
                      else {"loc": ["body"], "msg": "value is not a valid dict", "type": "type_error.dict"})
            raise _Respond(_json_reply(422, {"detail": [detail]}))
        return body

    def _validated_parameters(self, body: dict[str, Any], mode: str) -> dict[str, Any]:
        """The request merged over the API defaults, coerced like pydantic; 422 listing every bad field.

        Unknown keys are dropped (pydantic's extra=ignore), so this is also the ``parameters`` echo.
        """
        v2 = self.flavor == "forge"
        defaults = self._parameter_defaults[mode]
        params, errors = {}, []
        for key, default in defaults.items():
            value = body.get(key, default)
            if value is None or key not in body:
                params[key] = value
                continue
            kind = "int" if key in INT_FIELDS else "float" if key in FLOAT_FIELDS else \
                "bool" if key in BOOL_FIELDS else None
            if kind is None:
                params[key] = value
                continue
            coerced, error = _coerce(kind, value, v2)
            if error:
                errors.append(_validation_error(key, value, error, v2))
            params[key] = coerced
        if errors:
            raise _Respond(_json_reply(422, {"detail": errors}))
        for key in ("width", "height", "steps", "batch_size", "n_iter", "seed"):  # explicit null: the default
            if params.get(key) is None:
                params[key] = defaults[key] if defaults.get(key) is not None else API_DEFAULTS[key]
        return params

    def _decode_image(self, data: Any) -> tuple[bytes, Image.Image]:
        """Decode a base64 image (optional data: prefix) like A1111's decode_base64_to_image."""
        if not isinstance(data, str):
            raise _Respond(self._http_error(500, "Invalid encoded image"))
        if data.startswith(("http://", "https://")):
            raise _Respond(self._http_error(500, "Invalid image url"))  # the stand-in never fetches
        if data.startswith("data:image/"):
            data = data.split(",", 1)[-1]
        try:
            raw = base64.b64decode(data)
        except (binascii.Error, ValueError):
            raise _Respond(self._http_error(500, "Invalid encoded image")) from None
        try:
            image = Image.open(io.BytesIO(raw))
            image.load()
        except Exception:
            raise _Respond(self._http_error(500, "Invalid encoded image")) from None
        return raw, image

    # ---- sampler, scheduler, LoRA, hires ---------------------------------------------------------------------

    def _resolve_sampler(self, params: dict[str, Any]) -> tuple[str, str]:
        """(sampler name, "Schedule type" label) as the server would really use them (API.md §3.6)."""
        name = params.get("sampler_name") or params.get("sampler_index") or "Euler"
        if self.flavor == "sdnext":  # sdnext/post_txt2img_legacy_combined_sampler.json
            if name not in {s["name"] for s in self._samplers} | set(self._sdnext_data("extra_sampler_names")):
                raise _Respond(self._http_error(404, "Sampler not found"))
            return name, ""
        scheduler = None
        wanted = params.get("scheduler")
        for s in self._schedulers:
            options = [s["label"], s["name"], *(s["aliases"] or [])]
            if wanted in options:
                scheduler = s
            for option in options:  # legacy combined names: "DPM++ 2M Karras"
                if name.endswith(" " + option):
                    scheduler, name = s, name[: -len(option) - 1]
                    break
        by_name = {s["name"]: s["name"] for s in self._samplers}
        by_name.update({a.lower(): s["name"] for s in self._samplers for a in s["aliases"]})
        by_name.update({s["name"].lower(): s["name"] for s in self._samplers})
        sampler = by_name.get(name) or by_name.get(name.lower())
        label = scheduler["label"] if scheduler else "Automatic"
        if sampler is None:  # bad_txt2img_unknown_sampler_short.json: silently DPM++ 2M, Karras
            return "DPM++ 2M", "Karras" if label == "Automatic" else label
        return sampler, label

    def _lora_hashes(self, prompt: str) -> str:
        """"name: shorthash, ..." for the known LoRAs tagged in the prompt; unknown ones are skipped."""
        known = {}
        for name in LORA_TAG.findall(prompt):
            for lora in self._loras:
                if name in (lora["name"], lora["alias"]):
                    known[name.replace(":", "").replace(",", "")] = lora["shorthash"]
        return ", ".join(f"{n}: {h}" for n, h in known.items())

    def _hires_size(self, params: dict[str, Any], width: int, height: int) -> tuple[int, int]:
        """Check the hires-fix fields like A1111/Forge and return the upscaled size (rounded down to 8)."""
        if self.flavor == "forge" and forge_hires_modules_missing(params):
            raise _Respond(self._exception_reply("TypeError", FORGE_HIRES_TYPE_ERROR))
        if self.flavor in ("forge", "a1111"):
            if params.get("denoising_strength") is None:
                raise _Respond(self._exception_reply(
                    "TypeError", "'>' not supported between instances of 'NoneType' and 'int'"))
            upscaler = params.get("hr_upscaler")
            names = {u["name"] for u in self._upscalers} | {m["name"] for m in self._latent_modes}
            if upscaler is not None and upscaler not in names:
                raise _Respond(self._exception_reply("AssertionError", f"could not find upscaler named {upscaler}"))
        rx, ry = int(params.get("hr_resize_x") or 0), int(params.get("hr_resize_y") or 0)
        if rx and ry:
            return round_down_8((rx, ry))
        if rx:
            return round_down_8((rx, max(1, round(height * rx / width))))
        if ry:
            return round_down_8((max(1, round(width * ry / height)), ry))
        scale = float(params.get("hr_scale") or 2.0)
        return round_down_8((int(width * scale), int(height * scale)))

    # ---- txt2img / img2img -----------------------------------------------------------------------------------

    def _generate(self, call: _Call, mode: str) -> _Reply:
        if self.flavor == "sdcpp":
            return self._generate_sdcpp(call, mode)
        body = self._json_object(call)
        params = self._validated_parameters(body, mode)

        init = mask = None
        if mode == "img2img":
            init, mask = self._img2img_inputs(call, body, params)
        scripts = self._run_alwayson_scripts(params, mode, init)
        sampler, schedule = self._resolve_sampler(params)
        if self.flavor == "sdnext":  # width 0 silently becomes 1024 (sdnext/README.md)
            params["width"], params["height"] = params["width"] or 1024, params["height"] or 1024
        first_pass = round_down_8((params["width"], params["height"]))  # the latent is width/8 x height/8
        out_size = first_pass
        extra: dict[str, Any] = {}
        if schedule and schedule != "Automatic":
            extra["Schedule type"] = schedule
        if mode == "img2img":
            extra["Denoising strength"] = params["denoising_strength"]
            if mask is not None and self.flavor == "a1111":  # a1111/post_img2img_inpaint_short.json
                extra["Mask blur"] = 4 if params.get("mask_blur") is None else params["mask_blur"]
        elif params.get("enable_hr"):
            if self.flavor == "sdnext":
                out_size = self._sdnext_hires_size(params, *first_pass)
            else:
                out_size = self._hires_size(params, params["width"], params["height"])
                extra.update(hires_extra_params(params, forge=self.flavor == "forge"))
        lora_hashes = "" if params.get("disable_extra_networks") else self._lora_hashes(params["prompt"] or "")
        if lora_hashes:
            extra["Lora hashes"] = lora_hashes
        extra.update(scripts.extra)
        if self.flavor == "sdnext":
            extra = {}  # recorded: SD.Next's info keeps extra_generation_params empty

        overrides = dict(params.get("override_settings") or {})
        if call.fault == "model_switch_ignored":
            overrides = {}
        restore = params.get("override_settings_restore_afterwards", True) is not False
        if self.flavor == "sdnext":
            model, job_options, image_format = self._run_sdnext_job(mode, params, overrides, restore)
        else:
            model, job_options, image_format = self._run_a1111_job(mode, params, overrides, restore)
        if model is None:
            return _json_reply(200, {"images": [], "parameters": params, "info": ""})

        count = params["batch_size"] * params["n_iter"]
        seed = params["seed"] if params["seed"] != -1 else random.randrange(2**32)
        subseed = params["subseed"] if params.get("subseed", -1) != -1 else random.randrange(2**32)
        seeds = [seed + i for i in range(count)]
        clip_skip = int(job_options.get("CLIP_stop_at_last_layers") or 1)
        if self.flavor == "sdnext":
            infotexts = [self._sdnext_infotext(params, sampler, s, model, first_pass, mode, job_options,
                                               upscaled=out_size != first_pass, inpaint=mask is not None)
                         for s in seeds]
        else:
            infotexts = [self._infotext(params, sampler, schedule, s, model, clip_skip, extra) for s in seeds]
        images = [self._image(i, s, model.stem, out_size, init, mask, params, text, image_format)
                  for i, (s, text) in enumerate(zip(seeds, infotexts))]
        with self._lock:
            self._last_images = images
        if self.flavor == "sdnext":
            info = self._sdnext_info(params, sampler, seed, seeds, subseed, model, first_pass, infotexts, count)
        else:
            info = self._info(params, sampler, seed, seeds, subseed, model, clip_skip, extra, infotexts, count)
        encoded = [base64.b64encode(b).decode("ascii") for b in images] if params.get("send_images", True) else []
        encoded += self._encoded_maps(scripts, image_format) if encoded else []
        if mode == "img2img" and self.flavor in ("forge", "a1111") and not params.get("include_init_images"):
            params = {**params, "init_images": None, "mask": None}  # the echo drops them (post_img2img_short.json)
        return _json_reply(200, {"images": encoded, "parameters": params, "info": json.dumps(info)})

    def _run_a1111_job(self, mode: str, params: dict[str, Any], overrides: dict[str, Any],
                       restore: bool) -> tuple[_Model | None, dict[str, Any], str]:
        """Pick the model (an override by any alias wins; unknown: silently ignored), load it and generate."""
        override_name = overrides.pop("sd_model_checkpoint", None)
        override_model = self._resolve_checkpoint(override_name)
        with self._generation_lock:
            with self._lock:
                wanted = self._wanted
                job_options = {**self._options, **{k: v for k, v in overrides.items() if k in self._options}}
            model = override_model or wanted
            if model is None:
                return None, job_options, "png"
            self._check_model_components(model, job_options)  # Forge: Flux without modules (families.py)
            self._load(model)
            self._run_job(f"scripts_{mode}", params["steps"])
            with self._lock:
                if not restore:
                    self._options.update({k: v for k, v in overrides.items() if k in self._options})
                    if override_model is not None:
                        self._options["sd_model_checkpoint"] = override_name
                        self._wanted = override_model
                image_format = self._options["samples_format"]
        return model, job_options, image_format

    def _run_sdnext_job(self, mode: str, params: dict[str, Any], overrides: dict[str, Any],
                        restore: bool) -> tuple[_Model | None, dict[str, Any], str]:
        """SD.Next's process_images: overrides applied (or skipped), the job, then the restore."""
        with self._generation_lock:
            stored = self._sdnext_apply_overrides(overrides)
            with self._lock:
                model = self._loaded
                job_options = dict(self._options)
            if model is not None:
                self._run_job(f"scripts_{mode}", params["steps"])
            if restore:
                self._sdnext_restore(stored)
            with self._lock:
                image_format = self._options.get("samples_format", "jpg")  # 058a7f0 lists only changed options
        return model, job_options, image_format

    def _img2img_inputs(self, call: _Call, body: dict[str, Any],
                        params: dict[str, Any]) -> tuple[Image.Image, Image.Image | None]:
        images = body.get("init_images")
        if not images:
            if self.flavor == "sdnext":
                raise _Respond(_json_reply(400, {"error": "Init image is none"}))
            raise _Respond(self._http_error(404, "Init image not found"))  # bad_img2img_no_init_images.json
        decoded = []
        for data in images:
            raw, image = self._decode_image(data)
            call.record.init_images.append(raw)
            decoded.append(image)
        mask = None
        if body.get("mask"):
            raw, mask = self._decode_image(body["mask"])
            call.record.mask = raw
            mask = _mask_channel(mask)
            if params.get("inpainting_mask_invert"):
                mask = ImageOps.invert(mask)
        return decoded[0], mask

    def _run_job(self, job: str, steps: int) -> None:
        """Hold the GPU for ``generation_delay`` seconds, updating progress; end early on interrupt or stop."""
        steps = max(1, int(steps))
        self._interrupted.clear()
        with self._lock:
            self._job_started = time.monotonic()
            self._progress.update({"skipped": False, "interrupted": False, "stopping_generation": False,
                                   "job": job, "job_count": 1, "job_timestamp": time.strftime("%Y%m%d%H%M%S"),
                                   "job_no": 0, "sampling_step": 0, "sampling_steps": steps})
        start = time.monotonic()
        while True:
            elapsed = time.monotonic() - start
            if elapsed >= self.generation_delay or self._interrupted.is_set() or self._stopping.is_set():
                break
            with self._lock:
                self._progress["sampling_step"] = min(steps - 1, int(steps * elapsed / self.generation_delay))
            time.sleep(min(0.01, self.generation_delay - elapsed))
        with self._lock:  # get_progress_after_interrupt.json: back to idle, flags and timestamp kept
            self._progress.update({"job": "", "job_count": 0, "job_no": 1, "sampling_step": 0})

    def _infotext(self, params: dict[str, Any], sampler: str, schedule: str, seed: int, model: _Model,
                  clip_skip: int, extra: dict[str, Any]) -> str:
        """The A1111 infotext: prompt line, negative prompt line, then "Key: value, ..." (post_txt2img_short)."""
        fields: dict[str, Any] = {"Steps": params["steps"], "Sampler": sampler}
        if schedule:
            fields["Schedule type"] = schedule
        fields.update({"CFG scale": params["cfg_scale"], "Seed": seed,
                       "Size": f"{params['width']}x{params['height']}",
                       "Model hash": model.shorthash, "Model": model.stem})
        if clip_skip > 1:
            fields["Clip skip"] = clip_skip
        fields.update({k: v for k, v in extra.items() if k != "Schedule type"})
        fields["Version"] = VERSIONS[self.flavor]
        lines = [params["prompt"]] if params["prompt"] else []
        if params["negative_prompt"]:
            lines.append(f"Negative prompt: {params['negative_prompt']}")
        lines.append(", ".join(f"{k}: {_quote(v)}" for k, v in fields.items() if v is not None))
        return "\n".join(lines)

    def _info(self, params: dict[str, Any], sampler: str, seed: int, seeds: list[int], subseed: int, model: _Model,
              clip_skip: int, extra: dict[str, Any], infotexts: list[str], count: int) -> dict[str, Any]:
        """The ``info`` object; keys exactly as post_txt2img_short.json (SD.Next: SdNextFlavor._sdnext_info)."""
        restore_faces = bool(params.get("restore_faces"))
        common = {
            "prompt": params["prompt"], "all_prompts": [params["prompt"]] * count,
            "negative_prompt": params["negative_prompt"], "all_negative_prompts": [params["negative_prompt"]] * count,
            "seed": seed, "all_seeds": seeds, "subseed": subseed, "all_subseeds": [subseed + i for i in range(count)],
            "subseed_strength": params.get("subseed_strength", 0), "width": params["width"],
            "height": params["height"], "sampler_name": sampler, "cfg_scale": params["cfg_scale"],
        }
        return {**common, "steps": params["steps"], "batch_size": params["batch_size"],
                "restore_faces": restore_faces, "face_restoration_model": "CodeFormer" if restore_faces else None,
                "sd_model_name": model.stem, "sd_model_hash": model.shorthash, "sd_vae_name": None,
                "sd_vae_hash": None, "seed_resize_from_w": params.get("seed_resize_from_w", -1),
                "seed_resize_from_h": params.get("seed_resize_from_h", -1),
                "denoising_strength": params.get("denoising_strength"), "extra_generation_params": extra,
                "index_of_first_image": 0, "infotexts": infotexts, "styles": params.get("styles") or [],
                "job_timestamp": time.strftime("%Y%m%d%H%M%S"), "clip_skip": clip_skip,
                "is_using_inpainting_conditioning": False, "version": VERSIONS[self.flavor]}

    # ---- extras ----------------------------------------------------------------------------------------------

    def _extra_single_image(self, call: _Call) -> _Reply:
        """Upscale one image (post_extra_single_image_short.json)."""
        body = self._json_object(call)
        raw, image = self._decode_image(body.get("image", ""))  # decoded before the queue, as in api.py
        call.record.init_images.append(raw)
        upscaler = body.get("upscaler_1", "None")
        if self.flavor == "sdnext" and upscaler not in {u["name"] for u in self._upscalers}:
            upscaler = "None"  # SD.Next: 200, the image comes back not upscaled (sdnext/README.md)
        if upscaler not in {u["name"] for u in self._upscalers}:  # bad_extra_single_image_unknown_upscaler
            raise _Respond(self._exception_reply("AssertionError", f"could not find upscaler named {upscaler}"))
        infotext = image.info.get("parameters", "")
        image = image.convert("RGB")
        resample = Image.Resampling.NEAREST if upscaler == "Nearest" else Image.Resampling.LANCZOS
        with self._generation_lock:
            if upscaler == "None":
                html = "<p></p>"
            elif int(body.get("resize_mode", 0)) == 1:
                size = (int(body.get("upscaling_resize_w", 512)), int(body.get("upscaling_resize_h", 512)))
                if body.get("upscaling_crop", True):
                    image = ImageOps.fit(image, size, resample)
                else:
                    image = image.resize(size, resample)
                html = f"<p>Postprocess upscale to: {size[0]}x{size[1]}, Postprocess upscaler: {upscaler}</p>"
            else:
                factor = float(body.get("upscaling_resize", 2))
                image = image.resize((round(image.width * factor), round(image.height * factor)), resample)
                html = f"<p>Postprocess upscale by: {factor}, Postprocess upscaler: {upscaler}</p>"
            with self._lock:
                image_format = self._options["samples_format"]
            encoded = self._encode(image, infotext, image_format)
        with self._lock:
            self._last_images = [encoded]
        return _json_reply(200, {"html_info": html, "image": base64.b64encode(encoded).decode("ascii")})

    # ---- images ----------------------------------------------------------------------------------------------

    def _image(self, index: int, seed: int, salt: str, size: tuple[int, int], init: Image.Image | None,
               mask: Image.Image | None, params: dict[str, Any], infotext: str, image_format: str) -> bytes:
        """The encoded bytes of the ``index``-th image of a batch, as ``image_content`` asks."""
        if self.image_content != "noise":
            return self._encode(self._render(seed, salt, size, init, mask, params), infotext, image_format)
        fmt = str(image_format).lower()
        key = (size[0], size[1], fmt, index % NOISE_VARIANTS)
        with self._noise_lock:  # one encoding per key, even when requests arrive together
            encoded = self._noise_cache.get(key)
            if encoded is None:
                pixels = random.Random(repr(key)).randbytes(size[0] * size[1] * 3)
                encoded = self._encode(Image.frombytes("RGB", size, pixels), "", fmt)
                self._noise_cache[key] = encoded
        return _with_png_text(encoded, "parameters", infotext) if fmt == "png" else encoded

    @staticmethod
    def _render(seed: int, salt: str, size: tuple[int, int], init: Image.Image | None, mask: Image.Image | None,
                params: dict[str, Any]) -> Image.Image:
        """A real image whose pixels follow from (seed, model): a background colour and four rectangles.

        img2img blends the init image in (by denoising strength) and keeps it where the mask is black.
        """
        digest = hashlib.sha256(f"{salt}:{seed}".encode()).digest()
        width, height = size
        image = Image.new("RGB", size, tuple(digest[0:3]))
        draw = ImageDraw.Draw(image)
        for i in range(4):
            b = digest[3 + i * 7: 10 + i * 7]
            x0, y0 = b[0] * width // 256, b[1] * height // 256
            x1, y1 = x0 + max(1, b[2] * width // 512), y0 + max(1, b[3] * height // 512)
            draw.rectangle((x0, y0, x1, y1), fill=(b[4], b[5], b[6]))
        if init is None:
            return image
        base = init.convert("RGB").resize(size)
        strength = float(params.get("denoising_strength") or 0.75)
        image = Image.blend(base, image, max(0.0, min(1.0, strength)))
        if mask is not None:  # white = repaint
            image = Image.composite(image, base, mask.resize(size))
        return image

    def _encode(self, image: Image.Image, infotext: str, image_format: str) -> bytes:
        """Encode like encode_pil_to_base64 (before base64): PNG keeps the infotext in a tEXt chunk."""
        buffer = io.BytesIO()
        fmt = str(image_format).lower()
        if fmt == "png":
            png_info = PngImagePlugin.PngInfo()
            if infotext:
                png_info.add_text("parameters", infotext)
            image.save(buffer, "PNG", pnginfo=png_info, compress_level=1)
        elif fmt in ("jpg", "jpeg"):
            image.convert("RGB").save(buffer, "JPEG", quality=80, exif=_exif_user_comment(infotext))
        elif fmt == "webp":
            image.save(buffer, "WEBP", quality=80)
        else:
            raise _Respond(self._http_error(500, "Invalid image format"))
        return buffer.getvalue()


# --------------------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------------------

def _with_png_text(png: bytes, key: str, text: str) -> bytes:
    """``png`` with a text chunk inserted right after IHDR, as Pillow's ``PngInfo.add_text`` writes it."""
    if not text:
        return png
    info = PngImagePlugin.PngInfo()
    info.add_text(key, text)  # tEXt, or iTXt when the text is not latin-1
    chunk_type, data = info.chunks[0][:2]
    chunk = struct.pack(">I", len(data)) + chunk_type + data + struct.pack(">I", zlib.crc32(chunk_type + data))
    ihdr_end = 8 + 8 + 13 + 4  # signature, then IHDR: length, type, 13 bytes of data, CRC
    return png[:ihdr_end] + chunk + png[ihdr_end:]


def _exif_user_comment(text: str) -> bytes:
    """EXIF holding ``text`` as UserComment, the way A1111 and SD.Next store a JPEG's infotext (piexif's
    "UNICODE" form: UTF-16-BE; sdnext/post_txt2img_next_call.json). Empty text: no EXIF."""
    if not text:
        return b""
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\x00" + text.encode("utf-16-be")  # Exif IFD, UserComment
    return exif.tobytes()


def _parse_json_or_none(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None


def _coerce(kind: str, value: Any, v2: bool) -> tuple[Any, str | None]:
    """Coerce like pydantic (v2 for Forge, v1 for A1111/SD.Next); return (value, error type or None)."""
    if kind == "bool":
        if isinstance(value, bool):
            return value, None
        if isinstance(value, (int, float)) and value in (0, 1):
            return bool(value), None
        if isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
            return value.strip().lower() in TRUE_WORDS, None
        return value, "bool_parsing"
    if kind == "int":
        if isinstance(value, (bool, int)):
            return int(value), None
        if isinstance(value, float):
            if v2 and not value.is_integer():
                return value, "int_from_float"
            return int(value), None
        if isinstance(value, str):
            try:
                return int(value.strip()), None
            except ValueError:
                return value, "int_parsing"
        return value, "int_type"
    if isinstance(value, (bool, int, float)):
        return float(value), None
    if isinstance(value, str):
        try:
            return float(value.strip()), None
        except ValueError:
            return value, "float_parsing"
    return value, "float_type"


_V2_MESSAGES = {
    "int_parsing": "Input should be a valid integer, unable to parse string as an integer",
    "int_from_float": "Input should be a valid integer, got a number with a fractional part",
    "int_type": "Input should be a valid integer",
    "float_parsing": "Input should be a valid number, unable to parse string as a number",
    "float_type": "Input should be a valid number",
    "bool_parsing": "Input should be a valid boolean, unable to interpret input",
}
_V1_MESSAGES = {
    "int": ("value is not a valid integer", "type_error.integer"),
    "float": ("value is not a valid float", "type_error.float"),
    "bool": ("value could not be parsed to a boolean", "type_error.bool"),
}


def _validation_error(key: str, value: Any, error: str, v2: bool) -> dict[str, Any]:
    """One entry of a 422 ``detail`` list (bad_txt2img_width_string.json for pydantic v2)."""
    if v2:
        return {"type": error, "loc": ["body", key], "msg": _V2_MESSAGES[error], "input": value,
                "url": f"https://errors.pydantic.dev/2.8/v/{error}"}
    msg, kind = _V1_MESSAGES[error.split("_")[0]]
    return {"loc": ["body", key], "msg": msg, "type": kind}


def _quote(value: Any) -> str:
    """A1111's infotext quoting: values with ',', ':' or newlines become JSON strings."""
    text = str(value)
    if "," not in text and ":" not in text and "\n" not in text:
        return text
    return json.dumps(text, ensure_ascii=False)


def _mask_channel(mask: Image.Image) -> Image.Image:
    """An RGBA mask with transparency uses its alpha channel, others their luminance (white = repaint)."""
    if mask.mode in ("RGBA", "LA") and mask.getchannel("A").getextrema()[0] < 255:
        return mask.getchannel("A")
    return mask.convert("L")


# --------------------------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------------------------

class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], webui: StandInWebUI):
        self.webui = webui
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request, client_address):  # type: ignore[no-untyped-def]
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):  # type: ignore[no-untyped-def]
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_all_connections(self) -> None:
        """Shut open keep-alive sockets, so no handler thread keeps serving after stop()."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request, client_address):  # type: ignore[no-untyped-def]
        """Print nothing. A client that went away is expected; anything else is kept in ``webui.errors``."""
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        with self.webui._lock:
            self.webui._errors.append(traceback.format_exc())


class _Handler(BaseHTTPRequestHandler):
    """Reads one request, asks the StandInWebUI for a _Reply and writes it. Keep-alive, always Content-Length."""

    protocol_version = "HTTP/1.1"
    timeout = 60  # an idle keep-alive connection is closed after this long
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without TCP_NODELAY, Nagle holds a small body until the client's
        # delayed ACK (~40 ms), a stall real servers (uvicorn, asyncio) do not have and the benchmark would count.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def version_string(self) -> str:
        return "uvicorn"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence the default stderr log
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self, method: str) -> None:
        try:
            raw = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        received = time.monotonic()
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            reply = self.server.webui._handle(method, self.path, headers, raw, received)
        except Exception as exc:  # never let a bug kill the connection silently
            with self.server.webui._lock:
                self.server.webui._errors.append(traceback.format_exc())
            reply = _json_reply(500, {"error": type(exc).__name__, "detail": "", "body": "", "errors": str(exc)})
        self._write(reply)

    def _write(self, reply: _Reply) -> None:
        if reply.action == "drop":
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.send_response(reply.status)
        if reply.content_type:
            self.send_header("content-type", reply.content_type)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(reply.body)))
        self.end_headers()
        try:
            if reply.action == "cut":
                self.wfile.write(reply.body[: max(1, len(reply.body) // 2)])
                self.close_connection = True
            else:
                self.wfile.write(reply.body)
            self.wfile.flush()
        except (ConnectionError, TimeoutError):  # the client gave up (e.g. its deadline passed)
            self.close_connection = True


# --------------------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.standin.webui", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--flavor", choices=STANDIN_FLAVORS, default="forge")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds each generation takes")
    parser.add_argument("--auth", default=None, help="user:password for HTTP Basic, like --api-auth")
    parser.add_argument("--models", default=None, help="comma-separated checkpoint stems")
    parser.add_argument("--image-format", choices=("png", "jpeg"), default=None)
    parser.add_argument("--controlnet", action="store_true", help="install ControlNet (a1111, forge)")
    parser.add_argument("--adetailer", action="store_true", help="install ADetailer (a1111, forge)")
    parser.add_argument("--same-file-in-two-folders", action="store_true",
                        help="serve rand-a and sub/rand-b as two byte-identical files sharing one hash")
    args = parser.parse_args(argv)
    auth = tuple(args.auth.split(":", 1)) if args.auth else None
    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
    options = dict(auth=auth, generation_delay=args.delay, image_format=args.image_format, host=args.host,
                   port=args.port, controlnet=args.controlnet, adetailer=args.adetailer)
    if args.same_file_in_two_folders:
        webui = StandInWebUI.same_file_in_two_folders(args.flavor, **options)
    else:
        webui = StandInWebUI(args.flavor, models=models, **options)
    url = webui.start()
    sys.stderr.write(f"stand-in WebUI on {url}\n")
    sys.stderr.flush()
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started in the background
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        webui.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
