"""The ``a1111`` flavour: AUTOMATIC1111 1.10.1 as recorded in ``tests/fixtures/a1111/`` (README.md there lists the facts).

A mixin of :class:`tests.standin.webui.StandInWebUI`. What comes from which recording:

- lists, answered as recorded: ``get_samplers.json`` (20, options ``{"scheduler": "karras"}``), ``get_schedulers.json``,
  ``get_upscalers.json`` (13, ``R-ESRGAN 4x+`` and ``DAT x2/x3/x4`` included), ``get_latent_upscale_modes.json``,
  ``get_options.json`` (311 keys, no ``forge_*``/``flux_*``), ``get_loras.json`` (the safetensors metadata),
  ``get_face_restorers.json``, ``get_embeddings.json``, ``get_memory.json``, ``get_extensions.json`` (``[]``: A1111
  lists only git checkouts), ``get_scripts.json`` (the extensions' titles only when they are installed),
  ``get_script_info.json``, ``get_internal_sysinfo.json``, ``get_internal_ping.json`` (``{}``);
- ``get_version.json`` / ``get_sd_modules.json``: 404, so those routes are simply not in the table;
- ``get_cmd_flags.json``: 200 with every launch flag (it hands out ``--api-auth`` credentials on a real server; the
  plugin must never call it: :meth:`A1111Flavor.cmd_flags_requests` lists the calls for tests);
- the model files' hashes (``rand-a`` ``3f9547ae2d``, ``sub/rand-b`` ``c139ccd3d4``) and the LoRA's
  (``rand-lora: 18ade45fd167``): ``A1111_SHA256``, ``A1111_LORA_SHORTHASH``;
- ``get_internal_pending_tasks_during_job.json``: only queued ids (``{"size": 0, "tasks": []}`` while one runs);
- ``post_internal_progress_during_job.json``: ``active: true`` with ``progress`` from the job state (``0.0`` at step
  0), ``eta: null`` until there is progress, ``textinfo: null`` (``progress.py`` reads ``shared.state.textinfo``);
- ``bad_txt2img_lora_nans_in_unet.json``: ``webui.inject("nans")`` answers that 500 (``NansException``);
- ``webui.offline = True`` imitates the recorded machine without network: ``post_interrogate_clip_offline.json``
  (200 ``{"caption": "<error>"}``), ``post_interrogate_deepdanbooru_offline.json`` (500 ``IndexError``), and a
  ControlNet preprocessor that needs a download is skipped (``extensions.py``). ``R-ESRGAN 4x+`` answers a plain
  resize either way (``post_extra_single_image_r_esrgan_offline.json``).
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable

from tests.fixtures.load import load_fixture

A1111_SHA256 = {  # get_sd_models.json
    "rand-a": "3f9547ae2d448583d561669c14e82bc63253ec1a9e4785d5e83a76c3c851efa3",
    "rand-b": "c139ccd3d484b0624f136650c811ddc0ab5a705cb859a085e68086ec107898a6",
    "sub/rand-b": "c139ccd3d484b0624f136650c811ddc0ab5a705cb859a085e68086ec107898a6",
}
A1111_LORA_SHORTHASH = {"rand-lora": "18ade45fd167"}  # post_txt2img_with_lora_short.json
EXTENSION_SCRIPTS = {"adetailer": ("adetailer",), "controlnet": ("controlnet", "controlnet m2m")}
NANS_MESSAGE = ("A tensor with NaNs was produced in Unet. Use --disable-nan-check commandline argument to disable "
                "this check.")  # bad_txt2img_lora_nans_in_unet.json


def a1111_fixture(name: str) -> Any:
    """The recorded answer's JSON body of ``tests/fixtures/a1111/<name>.json``."""
    return load_fixture(f"a1111/{name}")["response"]["json"]


class A1111Flavor:
    """Mixed into ``StandInWebUI``; used only when ``flavor == "a1111"``."""

    offline = False  # True: downloads fail as on the recorded machine (interrogators, ControlNet preprocessors)

    def _a1111_static_shapes(self) -> None:
        self._samplers = a1111_fixture("get_samplers")
        self._schedulers = a1111_fixture("get_schedulers")
        self._upscalers = a1111_fixture("get_upscalers")
        self._latent_modes = a1111_fixture("get_latent_upscale_modes")
        recorded = a1111_fixture("get_loras")[0]
        for lora in self._loras:
            lora["metadata"] = recorded["metadata"] if lora["name"] == recorded["name"] else {}
            lora["shorthash"] = A1111_LORA_SHORTHASH.get(lora["name"], lora["shorthash"])

    def _a1111_initial_options(self) -> dict[str, Any]:
        options = a1111_fixture("get_options")  # 311 keys
        options["samples_format"] = self._image_format or "png"
        options["sd_model_checkpoint"] = self._title(self._models[0])
        options["sd_checkpoint_hash"] = ""  # nothing loaded yet: the stand-in loads at the first job
        return options

    def _a1111_routes(self) -> dict[tuple[str, str], Callable[[Any], Any]]:
        from tests.standin.webui import API, _json_reply

        def fixed(name: str) -> Callable[[Any], Any]:
            return lambda call: _json_reply(200, a1111_fixture(name))

        tasks_progress = self.tasks.routes()[("POST", "/internal/progress")]
        return {
            ("GET", f"{API}/cmd-flags"): fixed("get_cmd_flags"),
            ("GET", f"{API}/embeddings"): fixed("get_embeddings"),
            ("GET", f"{API}/face-restorers"): fixed("get_face_restorers"),
            ("GET", f"{API}/memory"): fixed("get_memory"),
            ("GET", f"{API}/extensions"): fixed("get_extensions"),
            ("GET", f"{API}/script-info"): fixed("get_script_info"),
            ("GET", f"{API}/scripts"): self._a1111_scripts,
            ("GET", "/internal/ping"): fixed("get_internal_ping"),
            ("GET", "/internal/sysinfo"): fixed("get_internal_sysinfo"),
            ("GET", "/internal/pending-tasks"): self._a1111_pending_tasks,
            ("POST", "/internal/progress"): lambda call: self._a1111_internal_progress(call, tasks_progress),
            ("POST", f"{API}/interrogate"): self._a1111_interrogate,
            ("POST", f"{API}/png-info"): self._a1111_png_info,
        }

    # ---- routes --------------------------------------------------------------------------------------------

    def _a1111_scripts(self, call: Any) -> Any:
        from tests.standin.webui import _json_reply

        hidden = set()
        if not self.controlnet_installed:
            hidden.update(EXTENSION_SCRIPTS["controlnet"])
        if not self.adetailer_installed:
            hidden.update(EXTENSION_SCRIPTS["adetailer"])
        scripts = a1111_fixture("get_scripts")
        return _json_reply(200, {mode: [t for t in titles if t not in hidden] for mode, titles in scripts.items()})

    def _a1111_pending_tasks(self, call: Any) -> Any:
        """``/internal/pending-tasks``: the queued ids in arrival order, never the running one."""
        from tests.standin.webui import _json_reply

        with self.tasks._state:
            queued = sorted(self.tasks.pending, key=self.tasks.pending.__getitem__)
        return _json_reply(200, {"size": len(queued), "tasks": queued})

    def _a1111_internal_progress(self, call: Any, answer_from_tasks: Callable[[Any], Any]) -> Any:
        """The task bookkeeping of tasks.py, with the running task's numbers as progress.py computes them."""
        from tests.standin.webui import _json_reply

        reply = answer_from_tasks(call)
        answer = json.loads(reply.body)
        if not answer.get("active"):
            return reply
        with self._lock:
            state, started = dict(self._progress), self._job_started
        progress = 0.0
        if state["job_count"] > 0:
            progress += state["job_no"] / state["job_count"]
            if state["sampling_steps"] > 0:
                progress += state["sampling_step"] / state["sampling_steps"] / state["job_count"]
        progress = min(progress, 1.0)
        elapsed = time.monotonic() - started
        eta = elapsed / progress - elapsed if progress > 0 else None
        answer.update(progress=progress, eta=eta, textinfo=None)
        return _json_reply(200, answer)

    def _a1111_interrogate(self, call: Any) -> Any:
        """Offline: CLIP's BLIP download fails inside and the API answers the caption "<error>"; DeepDanbooru
        fails with an IndexError (post_interrogate_*_offline.json)."""
        if self.offline:
            body = self._json_object(call)
            raw, _ = self._decode_image(body.get("image", ""))
            call.record.init_images.append(raw)
            model = body.get("model", "clip")
            if model == "clip":
                return self._json({"caption": "<error>"})
            if model == "deepdanbooru":
                return self._exception_reply("IndexError", "list index out of range")
        return self._post_interrogate(call)

    def _a1111_png_info(self, call: Any) -> Any:
        """parse_generation_parameters fills in its defaults (Clip skip, Hires ..., RNG ...), also for a PNG
        without an infotext (post_png_info_no_parameters_short.json; post_png_info.json)."""
        from tests.standin.webui import _json_reply

        reply = self._post_png_info(call)
        if reply.status != 200:
            return reply
        answer = json.loads(reply.body)
        for key, value in a1111_fixture("post_png_info_no_parameters_short")["parameters"].items():
            answer["parameters"].setdefault(key, value)
        return _json_reply(200, answer)

    # ---- for tests -----------------------------------------------------------------------------------------

    def cmd_flags_requests(self) -> list[Any]:
        """Every request to ``/sdapi/v1/cmd-flags`` (the route that leaks ``--api-auth``): tests assert none."""
        return self.requests_to("GET", "/sdapi/v1/cmd-flags")
