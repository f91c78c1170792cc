"""stable-diffusion.cpp's ``sd-server`` for the stand-in WebUI (flavour ``sdcpp``).

Shaped on the real recordings in ``tests/fixtures/sdcpp/`` (sd-server ``master-827-97d2990``) and on its source,
``examples/server/routes_sdapi.cpp`` of leejet/stable-diffusion.cpp (``build_sdapi_img_gen_request``,
``get_sdapi_sample_method``, ``prepare_info_field``). Read when this was written, never at run time.

What it reproduces, one line each (the list the project's closing note quotes):

- Only 9 routes exist: GET sd-models, options, samplers, schedulers, upscalers, latent-upscale-modes, loras;
  POST txt2img, img2img. Anything else, and a wrong method, is 404 with an EMPTY body (cpp-httplib).
- The list routes answer exactly the recorded ``get_*.json`` (one model with placeholder hashes ``8888888888``,
  22 samplers, 18 schedulers, 3 upscalers, 6 latent modes, loras as ``{name, path}`` with extension).
- ``GET /options`` has two keys, ``samples_format`` and ``sd_model_checkpoint``; there is no auth.
- Sampler: exact native name (``euler_a``), else the hard-coded lowercase aliases (``euler a``, ``k_euler_a``,
  ``dpm++ 2m``, ``ddim`` ...); anything else (``DPM++ 2M Karras``, ``default``) silently keeps the default and
  ``info.sampler_name`` is then ``NONE``.
- Scheduler only by its exact lowercase name; a label such as ``Karras`` is silently ignored; ``info`` has
  ``extra_generation_params: {"Schedule type": name}`` only when a scheduler was applied.
- Hires fix (txt2img only) reads ``hr_scale``, ``hr_resize_x/y``, ``hr_steps`` (NOT ``hr_second_pass_steps``),
  ``hr_upscaler`` and ``denoising_strength``; ``info`` keeps the first-pass size, the image is upscaled.
- Image size is rounded UP to a multiple of 64 (96x72 gives a 128x128 image) while ``info`` and the infotext keep
  the requested size; img2img of a 96x64 input gives 128x64.
- ``override_settings`` (the checkpoint too) and ``n_iter`` are silently ignored.
- ``<lora:...>`` prompt tags are not parsed (they stay in the prompt); LoRAs only through
  ``lora: [{path, multiplier}]`` with the path as /loras lists it; a bare name is 400 ``invalid lora path: X``.
- steps are clamped to 1..100, batch_size to 1..8; seeds are ``seed, seed+1, ...``; seed -1 is random.
- Errors: 400 ``{"error": "empty body" | "width and height must be positive" | "prompt required" |
  "invalid lora path: X" | "lora.path required" | "invalid params"}``; 500
  ``{"error": "server_error", "message": "[json.exception...]"}`` for malformed JSON or a wrong JSON type.
- img2img without ``init_images`` silently does txt2img (``info`` still has ``denoising_strength``).
- ``info`` is a JSON string with sorted keys (nlohmann), no ``sd_model_hash``; ``sd_model_name`` has the file
  extension; the whole answer and its ``parameters`` echo (the request as sent) have sorted keys.
- The infotext: ``Steps: 2, CFG scale: 7.000000, Guidance: 3.500000, Eta: inf, Seed: S, Size: WxH,
  Model: rand-a.safetensors, RNG: cuda, Sampler: NONE|euler_a[ karras], [Clip skip: N, ][Hires ..., ]
  Version: stable-diffusion.cpp, SDCPP: {json}``.
- Images are PNG with a ``parameters`` text chunk holding the infotext; requests are handled one at a time.
"""

from __future__ import annotations

import base64
import json
import random
import re
import struct
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from PIL import ImageOps

from tests.fixtures.load import load_fixture

SDCPP_VERSION = {"commit": "97d2990", "name": "stable-diffusion.cpp", "version": "master-827-97d2990"}
# The same commit built from a tree without .git (tests/fixtures/sdcpp/97d29908/, async_jobs/): git describe found
# nothing at configure time, so the infotext's generator block reads "unknown" (sdcpp_build="no-git").
SDCPP_BUILDS = {"git": SDCPP_VERSION,
                "no-git": {"commit": "unknown", "name": "stable-diffusion.cpp", "version": "unknown"}}

# get_sdapi_sample_method's hard-coded aliases, looked up after lower-casing (routes_sdapi.cpp).
SAMPLER_ALIASES = {
    "euler a": "euler_a", "k_euler_a": "euler_a", "euler": "euler", "k_euler": "euler", "heun": "heun",
    "k_heun": "heun", "dpm2": "dpm2", "k_dpm_2": "dpm2", "lcm": "lcm", "ddim": "ddim_trailing",
    "dpm++ 2m": "dpm++2m", "k_dpmpp_2m": "dpm++2m", "dpm++ 2m sde": "dpm++2m_sde", "k_dpmpp_2m_sde": "dpm++2m_sde",
    "dpm++ 2m sde gpu": "dpm++2m_sde_bt", "k_dpmpp_2m_sde_gpu": "dpm++2m_sde_bt", "res multistep": "res_multistep",
    "k_res_multistep": "res_multistep", "res 2s": "res_2s", "k_res_2s": "res_2s", "euler_cfg_pp": "euler_cfg_pp",
    "k_euler_cfg_pp": "euler_cfg_pp", "euler_a_cfg_pp": "euler_cfg_pp", "k_euler_a_cfg_pp": "euler_cfg_pp",
}
# The /schedulers list adds "normal" right after "discrete"; it is taken as discrete's other name (a guess: the
# list offers it, so it is assumed to work).
SCHEDULER_ALIASES = {"normal": "discrete"}

NUMBER_FIELDS = ("width", "height", "steps", "cfg_scale", "seed", "batch_size", "clip_skip")
STRING_FIELDS = ("prompt", "negative_prompt", "sampler_name", "scheduler")


def _fixture(name: str) -> Any:
    return load_fixture(f"sdcpp/{name}")["response"]["json"]


def _float32(value: float) -> float:
    """``value`` as a C float read back into a double, as nlohmann prints it (0.8 -> 0.800000011920929)."""
    return struct.unpack("f", struct.pack("f", float(value)))[0]


def _round_up_64(size: int) -> int:
    return max(64, -(-int(size) // 64) * 64)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}[type(value)]


class _Answer(Exception):
    """sd-server's answer: (status, JSON body). Raised to answer early (400, 500), returned for a 200."""

    def __init__(self, status: int, body: dict[str, Any]):
        super().__init__(status)
        self.status, self.body = status, body


# --------------------------------------------------------------------------------------------------------------
# The native async job API: /sdcpp/v1/capabilities, img_gen, jobs/{id}, jobs/{id}/cancel
# --------------------------------------------------------------------------------------------------------------

NATIVE = "/sdcpp/v1"
JOB_ID = re.compile(r"[A-Za-z0-9_\-]+")
# async_jobs.h: AsyncJobManager's defaults.
JOB_TTL_S = 600.0
MAX_PENDING_JOBS = 64
EXPIRED_KEPT_MIN_S = 60.0


@dataclass
class _Job:
    """AsyncGenerationJob: one native job and what make_async_job_json shows of it."""

    id: str
    request: dict[str, Any]
    body: dict[str, Any]
    img2img: bool
    output_format: str
    created: float
    status: str = "queued"
    started: float | None = None
    completed: float | None = None
    images: list[str] = field(default_factory=list)
    error: dict[str, str] | None = None


class SdCppJobs:
    """Mixin for ``StandInWebUI`` (sdcpp): the native async job API of sd-server.

    Shaped on ``tests/fixtures/sdcpp/async_jobs/*.json`` (same server 97d29908) and, where the recordings do not
    show it, on ``examples/server/routes_sdcpp.cpp`` and ``async_jobs.cpp`` / ``async_jobs.h`` of
    leejet/stable-diffusion.cpp (read when this was written, never at run time):

    - ``GET /sdcpp/v1/capabilities`` answers get_sdcpp_capabilities.json (its model and loras from this stand-in).
    - ``POST /sdcpp/v1/img_gen`` answers 202 ``{created, id, kind, poll_url, status: "queued"}`` (post_sdcpp_img_gen);
      ids are ``job_<unix time hex>_<counter, 8 hex digits>``. 400 ``empty body`` / ``invalid json`` /
      ``invalid generation parameters`` (source), 429 ``job queue is full`` once 64 jobs (``sdcpp_max_queue``) are
      queued or generating (source).
    - One worker runs the queue in order, one job at a time, behind the same generation lock as /sdapi/v1 (one
      sd_ctx_mutex); each job takes ``generation_delay``.
    - ``GET /sdcpp/v1/jobs/{id}``: the job with sorted keys ``completed, created, error, id, kind, queue_position,
      result, started, status`` (get_sdcpp_job_*); ``queue_position`` is 1-based among the queued jobs, else 0; a
      completed job has ``result: {images: [{b64_json, index}], output_format}``; unknown id 404
      ``{"error": "job not found"}`` (get_sdcpp_job_unknown); a finished job older than ``sdcpp_job_ttl_s`` (600 s)
      is forgotten and then answers 410 ``{"error": "job expired"}`` for at least 60 s more (source).
    - ``POST /sdcpp/v1/jobs/{id}/cancel``: queued → 200 and the job ``cancelled`` with ``error: {code: "cancelled",
      message: "job cancelled by client"}`` (post_sdcpp_job_cancel_queued); generating → 409 ``job is currently
      generating and cannot be interrupted yet`` and it runs on (post_sdcpp_job_cancel_generating,
      get_sdcpp_job_after_cancel_generating); finished → 200 with the job as it is (source).
    - A failed job (``sdcpp_fail_next_jobs``): ``status: "failed"``, ``error: {code: "generation_failed", message:
      "generate_image returned no results"}`` (source).
    - Images: PNG (or JPEG with ``output_format: "jpeg"``) whose ``parameters`` chunk holds the same infotext as
      /sdapi/v1 (get_sdcpp_job_completed: ``Sampler: euler_a discrete``, seeds ``seed + i``).
    - ``sdcpp_native_api=False`` (the constructor): an older sd-server without this API; /sdcpp/v1/* is a bare 404.
    """

    sdcpp_job_ttl_s: float = JOB_TTL_S
    sdcpp_max_queue: int = MAX_PENDING_JOBS

    def _sdcpp_jobs_reset(self) -> None:
        self._jobs_cond = getattr(self, "_jobs_cond", None) or threading.Condition()
        with self._jobs_cond:
            self._jobs: dict[str, _Job] = {}
            self._jobs_queue: list[str] = []
            self._jobs_expired: dict[str, float] = {}
            self._jobs_next = 0
            self._jobs_fail = 0
            self._jobs_worker: threading.Thread | None = getattr(self, "_jobs_worker", None)

    def sdcpp_fail_next_jobs(self, times: int = 1) -> None:
        """Make the next ``times`` native jobs fail in generate_image (as a real out-of-memory would)."""
        with self._jobs_cond:
            self._jobs_fail += times

    def sdcpp_jobs(self) -> dict[str, str]:
        """Every job id the stand-in still knows, with its status (for tests)."""
        with self._jobs_cond:
            return {job.id: job.status for job in self._jobs.values()}

    def _sdcpp_native_routes(self) -> dict[tuple[str, str], Any]:
        return {("GET", f"{NATIVE}/capabilities"): self._sdcpp_capabilities,
                ("POST", f"{NATIVE}/img_gen"): self._sdcpp_img_gen}

    def _sdcpp_job_route(self, method: str, path: str) -> Any:
        """The routes with an id in them (cpp-httplib regex routes); None when ``path`` is not one."""
        if not self._sdcpp_native_api or not path.startswith(f"{NATIVE}/jobs/"):
            return None
        rest = path[len(f"{NATIVE}/jobs/"):]
        if method == "GET" and JOB_ID.fullmatch(rest):
            return lambda call: self._sdcpp_get_job(rest)
        if method == "POST" and rest.endswith("/cancel") and JOB_ID.fullmatch(rest[:-len("/cancel")]):
            return lambda call: self._sdcpp_cancel_job(rest[:-len("/cancel")])
        return None

    # ---- routes -----------------------------------------------------------------------------------------------

    def _sdcpp_capabilities(self, call: Any) -> Any:
        caps = load_fixture("sdcpp/async_jobs/get_sdcpp_capabilities")["response"]["json"]
        model_file = f"{self._models[0].stem}.safetensors"
        caps["model"] = {"name": model_file, "path": f"/srv/sdcpp/models/{model_file}", "stem": self._models[0].stem}
        caps["loras"] = self._sdcpp_loras_listed()
        caps["limits"]["max_queue_size"] = self.sdcpp_max_queue
        return _reply(200, caps)

    def _sdcpp_img_gen(self, call: Any) -> Any:
        if not call.raw:
            return _reply(400, {"error": "empty body"})
        try:
            body = json.loads(call.raw.decode("utf-8", errors="replace"))
        except json.JSONDecodeError as exc:
            return _reply(400, {"error": "invalid json", "message":
                                f"[json.exception.parse_error.101] parse error: {exc.msg}"})
        try:
            request, img2img = self._sdcpp_native_request(body, call)
        except _Answer as early:
            return _reply(early.status, early.body)
        output_format = body.get("output_format", "png")
        if output_format not in ("png", "jpeg"):
            return _reply(400, {"error": "invalid output_format"})
        now = time.time()
        with self._jobs_cond:
            self._sdcpp_purge(now)
            if sum(job.status in ("queued", "generating") for job in self._jobs.values()) >= self.sdcpp_max_queue:
                return _reply(429, {"error": "job queue is full"})
            job_id = f"job_{int(now):x}_{self._jobs_next:08x}"
            self._jobs_next += 1
            self._jobs[job_id] = _Job(job_id, request, body, img2img, output_format, now)
            self._jobs_queue.append(job_id)
            self._sdcpp_ensure_worker()
            self._jobs_cond.notify_all()
        return _reply(202, {"created": int(now), "id": job_id, "kind": "img_gen",
                            "poll_url": f"{NATIVE}/jobs/{job_id}", "status": "queued"})

    def _sdcpp_get_job(self, job_id: str) -> Any:
        with self._jobs_cond:
            self._sdcpp_purge(time.time())
            job = self._jobs.get(job_id)
            if job is None:
                return self._sdcpp_missing(job_id)
            return _reply(200, self._sdcpp_job_json(job))

    def _sdcpp_cancel_job(self, job_id: str) -> Any:
        with self._jobs_cond:
            self._sdcpp_purge(time.time())
            job = self._jobs.get(job_id)
            if job is None:
                return self._sdcpp_missing(job_id)
            if job.status == "queued":
                self._jobs_queue.remove(job_id)
                job.status, job.completed = "cancelled", time.time()
                job.error = {"code": "cancelled", "message": "job cancelled by client"}
            elif job.status == "generating":
                return _reply(409, {"error": "job is currently generating and cannot be interrupted yet"})
            return _reply(200, self._sdcpp_job_json(job))

    def _sdcpp_missing(self, job_id: str) -> Any:
        if job_id in self._jobs_expired:
            return _reply(410, {"error": "job expired"})
        return _reply(404, {"error": "job not found"})

    # ---- bookkeeping (call with _jobs_cond held) --------------------------------------------------------------

    def _sdcpp_purge(self, now: float) -> None:
        """purge_expired_jobs: a finished job is forgotten after the TTL, its id answers 410 a while longer."""
        self._jobs_expired = {k: until for k, until in self._jobs_expired.items() if until > now}
        for job in list(self._jobs.values()):
            if job.completed is not None and now - job.completed >= self.sdcpp_job_ttl_s:
                self._jobs_expired[job.id] = now + max(self.sdcpp_job_ttl_s, EXPIRED_KEPT_MIN_S)
                del self._jobs[job.id]

    def _sdcpp_job_json(self, job: _Job) -> dict[str, Any]:
        """make_async_job_json, keys sorted as nlohmann prints them."""
        position = self._jobs_queue.index(job.id) + 1 if job.status == "queued" else 0
        result = None
        if job.status == "completed":
            result = {"images": [{"b64_json": b64, "index": i} for i, b64 in enumerate(job.images)],
                      "output_format": job.output_format}
        return {"completed": None if job.completed is None else int(job.completed), "created": int(job.created),
                "error": job.error, "id": job.id, "kind": "img_gen", "queue_position": position, "result": result,
                "started": None if job.started is None else int(job.started), "status": job.status}

    def _sdcpp_ensure_worker(self) -> None:
        if self._jobs_worker is None or not self._jobs_worker.is_alive():
            self._jobs_worker = threading.Thread(target=self._sdcpp_worker, name="standin-sdcpp-jobs", daemon=True)
            self._jobs_worker.start()

    def _sdcpp_worker(self) -> None:
        """async_job_worker: take the queue's first job, generate it, store the result; until the stand-in stops."""
        while not self._stopping.is_set():
            with self._jobs_cond:
                if not self._jobs_queue:
                    self._jobs_cond.wait(0.05)
                    continue
                job = self._jobs[self._jobs_queue.pop(0)]
                job.status, job.started = "generating", time.time()
                fail = self._jobs_fail > 0
                self._jobs_fail -= int(fail)
            images: list[str] = []
            try:
                with self._generation_lock:  # one sd_ctx_mutex for both APIs
                    self._load(self._models[0])
                    self._run_job("txt2img", job.request["steps"])
                    if not fail:
                        images = self._sdcpp_job_images(job)
            except Exception:  # noqa: BLE001 - a stand-in bug: the job fails instead of killing the worker
                with self._lock:
                    self._errors.append(traceback.format_exc())
            with self._jobs_cond:
                job.completed = time.time()
                if images:
                    job.status, job.images = "completed", images
                else:
                    job.status = "failed"
                    job.error = {"code": "generation_failed", "message": "generate_image returned no results"}

    def _sdcpp_job_images(self, job: _Job) -> list[str]:
        answer = self._sdcpp_answer(job.body, job.request, job.img2img, job.output_format)
        return answer["images"]

    # ---- the native body --------------------------------------------------------------------------------------

    def _sdcpp_native_request(self, j: Any, call: Any) -> tuple[dict[str, Any], bool]:
        """SDGenerationParams::from_json_str + resolve_and_validate, into the request dict /sdapi/v1 uses.

        Anything these refuse (a wrong type, an unknown sampler or scheduler, a LoRA path /loras does not list, a
        size <= 0) is 400 ``invalid generation parameters`` (routes_sdcpp.cpp; the exact checks are a reading of
        the source, not recorded).
        """
        invalid = _Answer(400, {"error": "invalid generation parameters"})
        if not isinstance(j, dict):
            raise invalid
        sample = j.get("sample_params") or {}
        guidance = sample.get("guidance") or {} if isinstance(sample, dict) else {}
        hires = j.get("hires")
        try:
            width, height = int(j.get("width", 512)), int(j.get("height", 512))
            seed = int(j.get("seed", -1))
            steps = int(sample.get("sample_steps", 20))
            cfg = float(guidance.get("txt_cfg", 7.0))
            batch = int(j.get("batch_count", 1))
            clip_skip = int(j.get("clip_skip", -1))
            strength = float(j.get("strength", 0.75))
        except (TypeError, ValueError, AttributeError):
            raise invalid from None
        method = str(sample.get("sample_method") or "default")
        scheduler = str(sample.get("scheduler") or "default")
        if width <= 0 or height <= 0 or steps <= 0 or not 1 <= batch <= 8:
            raise invalid
        if method != "default" and method not in self._sdcpp_native_samplers:
            raise invalid
        if scheduler != "default" and self._sdcpp_scheduler(scheduler) is None:
            raise invalid
        request: dict[str, Any] = {
            "prompt": str(j.get("prompt") or ""), "negative_prompt": str(j.get("negative_prompt") or ""),
            "seed": seed if seed >= 0 else random.randrange(2**31), "steps": steps, "batch": batch,
            "cfg_scale": _float32(cfg), "clip_skip": clip_skip if clip_skip > 0 else -1,
            "sampler": None if method == "default" else method,
            "scheduler": None if scheduler == "default" else self._sdcpp_scheduler(scheduler),
            "width": width, "height": height, "strength": _float32(strength), "hires": None, "init": None,
            "mask": None,
        }
        if isinstance(hires, dict) and hires.get("enabled") is True:
            upscaler = str(hires.get("upscaler", "Latent"))
            known = {u["name"] for u in self._upscalers} | {m["name"] for m in self._latent_modes}
            if upscaler not in known:
                raise invalid
            request["hires"] = {"scale": _float32(hires.get("scale", 2.0)), "x": int(hires.get("target_width", 0)),
                                "y": int(hires.get("target_height", 0)), "steps": int(hires.get("steps", 0)),
                                "strength": _float32(hires.get("denoising_strength", 0.7)), "upscaler": upscaler,
                                "valid": True}
        try:
            request["loras"] = self._sdcpp_loras(j)
        except _Answer:
            raise invalid from None
        img2img = False
        for key, slot in (("init_image", "init"), ("mask_image", "mask")):
            if isinstance(j.get(key), str) and j[key]:
                from tests.standin.webui import _mask_channel, _Respond

                try:
                    raw, image = self._decode_image(j[key])
                except _Respond:
                    raise invalid from None
                if slot == "init":
                    call.record.init_images.append(raw)
                    img2img = True
                else:
                    call.record.mask = raw
                    image = _mask_channel(image)
                request[slot] = image
        return request, img2img


def _reply(status: int, body: Any) -> Any:
    from tests.standin.webui import _Reply

    return _Reply(status, json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode())


class SdCppFlavor(SdCppJobs):
    """Mixin for ``StandInWebUI``: the sd.cpp lists and its txt2img/img2img (``self.flavor == "sdcpp"``)."""

    # ---- lists ----------------------------------------------------------------------------------------------

    def _sdcpp_static_shapes(self) -> None:
        """The recorded lists, exactly (get_samplers.json, get_schedulers.json, ...)."""
        self._samplers = _fixture("get_samplers")
        self._schedulers = _fixture("get_schedulers")
        self._upscalers = _fixture("get_upscalers")
        self._latent_modes = _fixture("get_latent_upscale_modes")
        self._sdcpp_native_samplers = [s["name"] for s in self._samplers if s["name"] != "default"]
        self._sdcpp_native_schedulers = [s["name"] for s in self._schedulers if s["name"] not in ("default", "normal")]

    def _sdcpp_sampler(self, name: str) -> str | None:
        """get_sdapi_sample_method: the native name, else a hard-coded lowercase alias, else None (the default)."""
        if name in self._sdcpp_native_samplers:
            return name
        return SAMPLER_ALIASES.get(name.lower())

    def _sdcpp_scheduler(self, name: str) -> str | None:
        """str_to_scheduler: only the exact lowercase name; anything else is None (the default, not reported)."""
        if name in self._sdcpp_native_schedulers:
            return name
        return SCHEDULER_ALIASES.get(name)

    # ---- txt2img / img2img ----------------------------------------------------------------------------------

    def _generate_sdcpp(self, call: Any, mode: str) -> Any:
        from tests.standin.webui import _Reply  # a late import: webui imports this module

        try:
            reply = self._sdcpp_any2img(call, mode == "img2img")
        except _Answer as early:
            reply = early
        body = json.dumps(reply.body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        return _Reply(reply.status, body)

    def _sdcpp_any2img(self, call: Any, img2img: bool) -> _Answer:
        if not call.raw:
            raise _Answer(400, {"error": "empty body"})
        body = self._sdcpp_parse(call.raw)
        request = self._sdcpp_request(body, img2img, call)
        with self._generation_lock:  # sd_ctx_mutex: one generation at a time
            self._load(self._models[0])  # the one model it was started with; override_settings is ignored
            self._run_job("txt2img", request["steps"])
        return _Answer(200, self._sdcpp_answer(body, request, img2img))

    @staticmethod
    def _sdcpp_parse(raw: bytes) -> dict[str, Any]:
        """json::parse, and the type checks of j.value(...), with nlohmann's messages."""
        text = raw.decode("utf-8", errors="replace")
        try:
            body = json.loads(text)
        except json.JSONDecodeError as exc:
            at_end = exc.pos >= len(text.rstrip())
            line = text.count("\n", 0, exc.pos) + 1
            # nlohmann counts the character it failed on, at the end the end of input itself
            column = (len(text) + 1 if at_end else exc.pos + 1) - (text.rfind("\n", 0, exc.pos) + 1)
            if at_end and "property name" in exc.msg:
                what = "object key - unexpected end of input; expected string literal"
            elif at_end:
                what = "value - unexpected end of input; expected '[', '{', or a literal"
            else:
                what = "value - invalid literal"
            raise _Answer(500, {"error": "server_error", "message":
                                 f"[json.exception.parse_error.101] parse error at line {line}, column {column}: "
                                 f"syntax error while parsing {what}"}) from None
        if not isinstance(body, dict):
            raise _Answer(500, {"error": "server_error", "message":
                                 f"[json.exception.type_error.306] cannot use value() with {_json_type(body)}"})
        for key in STRING_FIELDS + NUMBER_FIELDS:
            if key not in body or body[key] is None and key in STRING_FIELDS:
                continue
            wanted = "string" if key in STRING_FIELDS else "number"
            if _json_type(body[key]) != wanted:
                raise _Answer(500, {"error": "server_error", "message":
                                     f"[json.exception.type_error.302] type must be {wanted}, "
                                     f"but is {_json_type(body[key])}"})
        return body

    def _sdcpp_request(self, j: dict[str, Any], img2img: bool, call: Any) -> dict[str, Any]:
        """build_sdapi_img_gen_request: what sd.cpp will really do with this body."""
        width, height = int(j.get("width", 512)), int(j.get("height", 512))
        if width <= 0 or height <= 0:
            raise _Answer(400, {"error": "width and height must be positive"})
        prompt = j.get("prompt") or ""
        if not prompt:
            raise _Answer(400, {"error": "prompt required"})
        width_set = "width" in j and "height" in j
        seed = int(j.get("seed", -1))
        request: dict[str, Any] = {
            "prompt": prompt, "negative_prompt": j.get("negative_prompt") or "",
            "seed": seed if seed >= 0 else random.randrange(2**31),
            "steps": min(100, max(1, int(j.get("steps", 20)))),
            "batch": min(8, max(1, int(j.get("batch_size", 1)))),
            "cfg_scale": _float32(j.get("cfg_scale", 7.0)),
            "clip_skip": int(j["clip_skip"]) if int(j.get("clip_skip", -1)) > 0 else -1,
            "sampler": self._sdcpp_sampler(str(j.get("sampler_name") or "")),
            "scheduler": self._sdcpp_scheduler(str(j.get("scheduler") or "")),
            "width": width if width_set else None, "height": height if width_set else None,
            "strength": 0.75, "hires": None, "init": None, "mask": None,
        }
        if not img2img and j.get("enable_hr") is True:
            upscaler = j.get("hr_upscaler", "Latent")
            known = {u["name"] for u in self._upscalers} | {m["name"] for m in self._latent_modes}
            request["hires"] = {"scale": _float32(j.get("hr_scale", 2.0)), "x": int(j.get("hr_resize_x", 0)),
                                "y": int(j.get("hr_resize_y", 0)), "steps": int(j.get("hr_steps", 0)),
                                "strength": _float32(j.get("denoising_strength", 0.7)), "upscaler": upscaler,
                                "valid": upscaler in known}
        request["loras"] = self._sdcpp_loras(j)
        if img2img:
            self._sdcpp_images(j, request, call)
        if request["hires"] is not None and not request["hires"]["valid"]:
            raise _Answer(400, {"error": "invalid params"})
        if request["width"] is None:  # neither given nor taken from an image: the default
            request["width"], request["height"] = 512, 512
        return request

    def _sdcpp_loras(self, j: dict[str, Any]) -> dict[tuple[str, bool], float]:
        """Only the ``lora`` array; each path must be one /loras lists (with its extension).

        Returns {(file name, is_high_noise): summed multiplier}, as sd.cpp's lora_map adds repeated paths.
        """
        items = j.get("lora")
        loras: dict[tuple[str, bool], float] = {}
        if not isinstance(items, list):
            return loras
        paths = {lora["path"] for lora in self._sdcpp_loras_listed()}
        for item in items:
            if not isinstance(item, dict):
                continue
            path = item.get("path") or ""
            if not path:
                raise _Answer(400, {"error": "lora.path required"})
            if path not in paths:
                raise _Answer(400, {"error": f"invalid lora path: {path}"})
            key = (path.rsplit("/", 1)[-1], bool(item.get("is_high_noise", False)))
            loras[key] = _float32(loras.get(key, 0.0) + float(item.get("multiplier", 1.0)))
        return loras

    def _sdcpp_loras_listed(self) -> list[dict[str, str]]:
        return [{"name": lora["name"], "path": f"{lora['name']}.safetensors"} for lora in self._loras]

    def _sdcpp_images(self, j: dict[str, Any], request: dict[str, Any], call: Any) -> None:
        """init_images[0] and mask; an image that does not decode is skipped silently (then it is txt2img)."""
        from tests.standin.webui import _mask_channel, _Respond

        images = j.get("init_images")
        if isinstance(images, list) and images and isinstance(images[0], str):
            try:
                raw, request["init"] = self._decode_image(images[0])
                call.record.init_images.append(raw)
            except _Respond:
                pass
        if isinstance(j.get("mask"), str):
            try:
                raw, mask = self._decode_image(j["mask"])
                call.record.mask = raw
                request["mask"] = _mask_channel(mask)
                if j.get("inpainting_mask_invert", 0) != 0:
                    request["mask"] = ImageOps.invert(request["mask"])
            except _Respond:
                pass
        source = request["init"] or request["mask"]
        if request["width"] is None and source is not None:
            request["width"], request["height"] = source.size
        strength = float(j.get("denoising_strength", -1))
        if strength >= 0:
            request["strength"] = _float32(min(strength, 1.0))

    # ---- the answer -----------------------------------------------------------------------------------------

    def _sdcpp_out_size(self, request: dict[str, Any]) -> tuple[int, int]:
        """The real image size: the (hires) target rounded UP to a multiple of 64."""
        width, height, hires = request["width"], request["height"], request["hires"]
        if hires is not None:
            if hires["x"] and hires["y"]:
                width, height = hires["x"], hires["y"]
            elif hires["x"]:
                width, height = hires["x"], round(height * hires["x"] / width)
            elif hires["y"]:
                width, height = round(width * hires["y"] / height), hires["y"]
            else:
                width, height = int(width * hires["scale"]), int(height * hires["scale"])
        return _round_up_64(width), _round_up_64(height)

    def _sdcpp_answer(self, body: dict[str, Any], request: dict[str, Any], img2img: bool,
                      image_format: str = "png") -> dict[str, Any]:
        model = self._models[0]
        model_file = f"{model.stem}.safetensors"
        seeds = [request["seed"] + i for i in range(request["batch"])]
        infotexts = [self._sdcpp_infotext(request, seed, model_file) for seed in seeds]
        size = self._sdcpp_out_size(request)
        params = {"denoising_strength": request["strength"]}
        images = [self._image(i, seed, model.stem, size, request["init"], request["mask"], params, text, image_format)
                  for i, (seed, text) in enumerate(zip(seeds, infotexts))]
        with self._lock:
            self._last_images = images
        info: dict[str, Any] = {"prompt": request["prompt"], "seed": request["seed"], "cfg_scale": request["cfg_scale"],
                                "width": request["width"], "height": request["height"], "steps": request["steps"],
                                "sampler_name": request["sampler"] or "NONE", "sd_model_name": model_file,
                                "version": "stable-diffusion.cpp", "infotexts": infotexts,
                                "all_prompts": [request["prompt"]] * len(seeds),
                                "all_negative_prompts": [request["negative_prompt"]] * len(seeds), "all_seeds": seeds}
        if request["negative_prompt"]:
            info["negative_prompt"] = request["negative_prompt"]
        if request["clip_skip"] != -1:
            info["clip_skip"] = request["clip_skip"]
        if request["scheduler"]:
            info["extra_generation_params"] = {"Schedule type": request["scheduler"]}
        if img2img:
            info["denoising_strength"] = request["strength"]
        return {"images": [base64.b64encode(png).decode("ascii") for png in images], "parameters": body,
                "info": json.dumps(info, sort_keys=True, separators=(",", ":"), ensure_ascii=False)}

    def _sdcpp_infotext(self, request: dict[str, Any], seed: int, model_file: str) -> str:
        """get_image_params, in the recorded shape (post_txt2img_*.json), with the ``SDCPP: {json}`` tail."""
        sampler = request["sampler"] or "NONE"
        if request["scheduler"]:
            sampler += " " + request["scheduler"]
        fields = [f"Steps: {request['steps']}", f"CFG scale: {request['cfg_scale']:.6f}", "Guidance: 3.500000",
                  "Eta: inf", f"Seed: {seed}", f"Size: {request['width']}x{request['height']}",
                  f"Model: {model_file}", "RNG: cuda", f"Sampler: {sampler}"]
        if request["clip_skip"] != -1:
            fields.append(f"Clip skip: {request['clip_skip']}")
        hires = request["hires"]
        if hires is not None:
            fields += [f"Hires upscale: {hires['upscaler']}", f"Hires scale: {hires['scale']:.6f}",
                       f"Hires resize: {hires['x']}x{hires['y']}", f"Hires steps: {hires['steps']}",
                       f"Denoising strength: {hires['strength']:.6f}"]
        fields.append("Version: stable-diffusion.cpp")
        sampling: dict[str, Any] = {
            "custom_sigmas": [], "eta": None, "extra_sample_args": "", "flow_shift": None,
            "guidance": {"distilled_guidance": 3.5, "img_cfg": None,
                         "slg": {"end": _float32(0.2), "layers": [7, 8, 9], "scale": 0.0, "start": _float32(0.01)},
                         "txt_cfg": request["cfg_scale"]},
            "shifted_timestep": 0, "steps": request["steps"]}
        if request["sampler"]:
            sampling["method"] = request["sampler"]
        if request["scheduler"]:
            sampling["scheduler"] = request["scheduler"]
        tail: dict[str, Any] = {
            "auto_resize_ref_image": True, "clip_skip": request["clip_skip"], "control_strength": _float32(0.9),
            "generator": SDCPP_BUILDS[self._sdcpp_build], "height": request["height"], "increase_ref_index": False,
            "ip_adapter_strength": 1.0, "mode": "img_gen", "models": {"model": model_file},
            "prompt": {"negative": request["negative_prompt"], "positive": request["prompt"]}, "rng": "cuda",
            "sampling": sampling, "schema": "sdcpp.image.params/v1", "seed": seed, "strength": request["strength"],
            "width": request["width"]}
        if request["loras"]:
            tail["loras"] = [{"is_high_noise": high, "multiplier": multiplier, "name": name}
                             for (name, high), multiplier in sorted(request["loras"].items())]
        if hires is not None:
            tail["hires"] = {"custom_sigmas": [], "denoising_strength": hires["strength"], "enabled": True, "model": "",
                             "scale": hires["scale"], "steps": hires["steps"], "target_height": hires["y"],
                             "target_width": hires["x"], "upscale_tile_size": 128, "upscaler": hires["upscaler"]}
        fields.append("SDCPP: " + json.dumps(tail, sort_keys=True, separators=(",", ":"), ensure_ascii=False))
        head = request["prompt"] + (f"\nNegative prompt: {request['negative_prompt']}"
                                    if request["negative_prompt"] else "")
        return head + "\n" + ", ".join(fields)

