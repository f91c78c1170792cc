"""Model families in the stand-in WebUI: checkpoint metadata, Forge's VAE/text-encoder modules, Flux without them.

A mixin of :class:`tests.standin.webui.StandInWebUI` (a1111 and forge flavours). Nothing about the family shows in
``/sd-models``, ``/options`` or ``info`` (recordings ``tests/fixtures/{a1111,forge}/sdxl/``, see their README), so
this mixin only adds what those servers really offer:

Recorded (``tests/fixtures/a1111/sdxl/get_metadata_*.json``, ``tests/fixtures/forge/sdxl/get_metadata_*.json``):

- ``GET /sd_extra_networks/metadata?page=checkpoints&item=STEM`` answers ``200 {}`` for every item until the UI has
  rendered its extra-networks pages once (``render_extra_networks()`` stands for that), also after the model was
  loaded; afterwards ``{"metadata": "<the file's safetensors metadata as JSON, indent 4>"}`` for the bare file stem
  of a file that has metadata, and ``{}`` for a file without, for the title (``x.safetensors [hash]``) and for the
  name with ``.safetensors``. Same on A1111 and Forge.
- ``GET /sdapi/v1/sd-modules`` (Forge): ``[]`` when no VAE/text-encoder files are installed (``get_sd_modules.json``):
  ``set_sd_modules([])``. By default the stand-in lists ``extensions.FORGE_MODULE_FILES`` (ae, clip_l,
  t5xxl_fp8_e4m3fn, an SD VAE), as it did before this mixin took the route over.

Shaped from source, not recorded:

- The metadata string is ``json.dumps(metadata, indent=4, ensure_ascii=False)`` and an unknown ``page`` answers
  ``{}`` (A1111/Forge ``modules/ui_extra_networks.py::get_metadata``); the item key is ``name_for_extra``, the bare
  stem, so ``sub/rand-b`` is asked as ``rand-b`` (``modules/sd_models.py``; the recordings cannot show it, rand-b
  has no metadata). The route is added by ``add_pages_to_demo`` with a plain ``app.add_api_route``, so
  ``--api-auth`` does not cover it, and only when the UI is built (not with ``--nowebui``):
  ``extra_networks_ui = False`` makes it 404.
- ``/sd-modules`` items are ``{"model_name": basename, "filename": absolute path}`` (Forge ``modules/api/api.py::
  get_sd_vaes_and_text_encoders`` over ``main_entry.module_list``, files of ``models/VAE`` and
  ``models/text_encoder``).
- A Flux checkpoint without its own VAE and text encoders (``set_checkpoint_family(..., bundled=False)``, the
  default) fails on Forge when a generation loads it, with 500 ``AssertionError`` from Forge's
  ``backend/loader.py::load_huggingface_component``, in the order of FLUX.1's ``model_index.json``: no CLIP-L module
  in ``forge_additional_modules`` (the option, or ``override_settings``) -> ``You do not have CLIP state dict!``,
  then no T5 -> ``You do not have T5 state dict!``, then no VAE -> ``You do not have VAE state dict!``. The body is
  the middleware's (``{"error": "AssertionError", "detail": "", "body": "", "message": ...}``, the shape of the
  recorded Forge 500 ``bad_post_txt2img_sdxl_64x64_first_vaeapprox_sdxl_download_offline.json``). Forge drops the
  model it had before loading the new one (``sd_models.forge_model_reload``), so nothing is loaded afterwards.
  A module counts when its basename is one ``/sd-modules`` lists (``main_entry.modules_change`` matches basenames);
  POST /options stores the list as sent. A1111 1.10 cannot run Flux at all; the stand-in does not imitate that.

Usage::

    webui = StandInWebUI.sdxl_recorded("forge")          # rand-a, sub/rand-b, juggernautXL_rand, plainmodel_rand
    webui.render_extra_networks()                         # as if a browser had opened the UI
    webui = StandInWebUI("forge", models=["rand-a", "flux1-dev"])
    webui.set_checkpoint_family("flux1-dev", "flux_dev")  # metadata {"modelspec.architecture": "flux-1-dev"}
    webui.set_sd_modules(FLUX_MODULES)                    # ae, clip_l, t5xxl_fp16 in /sd-modules
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable
from urllib.parse import parse_qs

from tests.fixtures.load import load_fixture

EXTRA_NETWORKS_METADATA = "/sd_extra_networks/metadata"
FLUX_MODULES = ["ae.safetensors", "clip_l.safetensors", "t5xxl_fp16.safetensors"]

# The metadata each family's file would carry (kohya-ss sd-scripts library/sai_model_spec.py ARCH_* values);
# SDXL's is the recorded juggernautXL_rand metadata.
ARCHITECTURES = {"sd15": "stable-diffusion-v1", "sdxl": "stable-diffusion-xl-v1-base",
                 "pony": "stable-diffusion-xl-v1-base", "flux_dev": "flux-1-dev", "flux_schnell": "flux-1-schnell",
                 "sd35": "stable-diffusion-3.5-large"}
# backend/loader.py's assertions, in the order FLUX.1's model_index.json lists the components.
FLUX_COMPONENTS = (("clip_l", "You do not have CLIP state dict!"), ("t5", "You do not have T5 state dict!"),
                   ("vae", "You do not have VAE state dict!"))


def recorded_sdxl_metadata() -> dict[str, Any]:
    """juggernautXL_rand's safetensors metadata, as the recorded answer carries it."""
    answer = load_fixture("forge/sdxl/get_metadata_after_ui_render_item_stem_juggernautXL_rand.json")
    return json.loads(answer["response"]["json"]["metadata"])


def module_kind(name: str) -> str:
    """"vae", "clip_l", "clip_g", "t5" or "" for a module file name or path."""
    stem = os.path.splitext(os.path.basename(str(name)))[0].lower()
    if "t5" in stem:
        return "t5"
    if "clip_l" in stem:
        return "clip_l"
    if "clip_g" in stem:
        return "clip_g"
    return "vae" if stem == "ae" or "vae" in stem else ""


class FamiliesMixin:
    extra_networks_ui = True  # False: the server runs with --nowebui, the extra-networks routes do not exist

    # ---- knobs -----------------------------------------------------------------------------------------------

    @classmethod
    def sdxl_recorded(cls, flavor: str = "forge", **kwargs: Any):
        """The models of the recordings in tests/fixtures/*/sdxl/: two SD 1.5 files, juggernautXL_rand (SDXL with
        metadata) and plainmodel_rand (the same SDXL tensors, no metadata, no hint in the name)."""
        webui = cls(flavor, models=["rand-a", "sub/rand-b", "juggernautXL_rand", "plainmodel_rand"], **kwargs)
        webui.set_checkpoint_family("juggernautXL_rand", "sdxl", metadata=recorded_sdxl_metadata())
        webui.set_checkpoint_family("plainmodel_rand", "sdxl", metadata={})
        return webui

    def set_checkpoint_family(self, path: str, family: str, *, metadata: dict[str, Any] | None = None,
                              bundled: bool = False) -> None:
        """Give the checkpoint ``path`` a family ("sd15", "sdxl", "pony", "flux_dev", "flux_schnell", "sd35") and
        its safetensors metadata (default: the family's ``modelspec.architecture``; ``{}`` for none). ``bundled``:
        a Flux file that carries its own VAE and text encoders (then Forge needs no modules)."""
        if not any(m.path == path for m in self._models):
            raise ValueError(f"no checkpoint {path!r} in this stand-in")
        if metadata is None:
            metadata = {"modelspec.architecture": ARCHITECTURES[family]} if family in ARCHITECTURES else {}
        self._family_table()[path] = {"family": family, "metadata": dict(metadata), "bundled": bundled}

    def checkpoint_family(self, path: str) -> str | None:
        entry = self._family_table().get(path)
        return entry["family"] if entry else None

    def render_extra_networks(self) -> None:
        """What a browser opening the UI does (the recordings called the Gradio load event): from now on the
        metadata route answers with each file's metadata."""
        self._extra_networks_rendered = True

    def set_sd_modules(self, names: list[str]) -> None:
        """The files in models/VAE and models/text_encoder that Forge's /sd-modules lists (basenames)."""
        self._sd_module_names = [os.path.basename(n) for n in names]

    def _module_names(self) -> list[str]:
        from tests.standin.extensions import FORGE_MODULE_FILES

        names = getattr(self, "_sd_module_names", None)
        return list(FORGE_MODULE_FILES if names is None else names)

    def _family_table(self) -> dict[str, dict[str, Any]]:
        table = getattr(self, "_families", None)
        if table is None:
            table = self._families = {}
        return table

    # ---- routes ----------------------------------------------------------------------------------------------

    def _family_routes(self) -> dict[tuple[str, str], Callable[..., Any]]:
        if self.flavor not in ("a1111", "forge"):
            return {}
        routes = {("GET", EXTRA_NETWORKS_METADATA): self._get_extra_networks_metadata}
        if self.flavor == "forge":  # replaces extensions.py's fixed list, keeping it as the default
            routes[("GET", "/sdapi/v1/sd-modules")] = self._get_sd_modules
        return routes

    def _get_extra_networks_metadata(self, call):
        from tests.standin.webui import _json_reply

        if not self.extra_networks_ui:
            return self._not_found()
        query = parse_qs(call.query)
        page, item = query.get("page", [""])[0], query.get("item", [""])[0]
        if page != "checkpoints" or not getattr(self, "_extra_networks_rendered", False):
            return _json_reply(200, {})
        with self._lock:
            model = next((m for m in self._models if m.stem == item), None)
        metadata = self._family_table().get(model.path, {}).get("metadata") if model else None
        if not metadata:
            return _json_reply(200, {})
        return _json_reply(200, {"metadata": json.dumps(metadata, indent=4, ensure_ascii=False)})

    def _get_sd_modules(self, call):
        from tests.standin.webui import INSTALL_DIR, _json_reply

        root = f"{INSTALL_DIR[self.flavor]}/models"
        return _json_reply(200, [{"model_name": name,
                                  "filename": f"{root}/{'VAE' if module_kind(name) == 'vae' else 'text_encoder'}/{name}"}
                                                          for name in self._module_names()])

    # ---- generation ------------------------------------------------------------------------------------------

    def _check_model_components(self, model, job_options: dict[str, Any]) -> None:
        """Forge: a Flux file without its VAE/text encoders loads only with them in forge_additional_modules."""
        from tests.standin.webui import _Respond

        entry = self._family_table().get(model.path)
        if self.flavor != "forge" or not entry or entry["bundled"] or not entry["family"].startswith("flux"):
            return
        listed = set(self._module_names())
        chosen = {module_kind(m) for m in job_options.get("forge_additional_modules") or []
                  if os.path.basename(str(m)) in listed}
        for kind, message in FLUX_COMPONENTS:
            if kind not in chosen:
                with self._lock:
                    self._loaded = None  # forge_model_reload dropped the old model before the load failed
                raise _Respond(self._exception_reply("AssertionError", message))
