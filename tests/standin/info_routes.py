"""Stand-in routes that read images instead of making them: ``POST /png-info`` and ``/interrogate``.

A mixin of :class:`tests.standin.webui.StandInWebUI`, shaped on:

- ``tests/fixtures/forge/post_png_info.json`` (a real Forge answer): ``{"info", "items", "parameters"}``,
  the infotext read from the PNG ``parameters`` chunk or the EXIF UserComment; like A1111's
  ``read_info_from_image`` it also turns a NovelAI PNG (``Software: NovelAI`` + JSON ``Comment``)
  into an infotext, which is what a client cannot do by reading the ``parameters`` chunk alone;
- A1111/Forge ``modules/api/api.py`` ``interrogateapi``: ``{"image", "model"}`` -> ``{"caption"}``,
  ``clip`` or ``deepdanbooru``, any other model 404 ``Model not found``; it holds the queue lock;
- SD.Next: ``GET /interrogate`` lists OpenCLIP models and ``POST`` takes one of them;
- stable-diffusion.cpp has neither route (404 with an empty body, from the dispatcher).

Knobs, set on the instance (defaults are a healthy server)::

    webui.interrogator_weights_missing = True   # POST /interrogate answers 500 FileNotFoundError (A1111 without BLIP)
    webui.interrogator_load_delay = 2.0         # the first interrogation loads the model for this long
"""

from __future__ import annotations

import io
import json
from typing import Any, Callable

from PIL import Image

SDNEXT_INTERROGATORS = ["ViT-L-14/openai", "ViT-H-14/laion2b_s32b_b79k"]
A1111_INTERROGATORS = ("clip", "deepdanbooru")
NOVELAI_SAMPLERS = {"k_euler_ancestral": "Euler a", "k_euler": "Euler", "k_lms": "LMS", "ddim": "DDIM"}
BLIP_MISSING = ("[Errno 2] No such file or directory: "
                "'/srv/stable-diffusion-webui/models/BLIP/model_base_caption_capfilt_large.pth'")
_EXIF_IFD, _USER_COMMENT = 0x8769, 0x9286


class InfoRoutesMixin:
    interrogator_weights_missing = False
    interrogator_load_delay = 0.0
    _interrogator_loaded = False

    def _info_routes(self) -> dict[tuple[str, str], Callable[..., Any]]:
        """Routes for every flavour but sd.cpp."""
        from tests.standin.webui import API

        routes = {
            ("POST", f"{API}/png-info"): self._post_png_info,
            ("POST", f"{API}/interrogate"): self._post_interrogate,
        }
        if self.flavor == "sdnext":
            routes[("GET", f"{API}/interrogate")] = lambda call: self._json(SDNEXT_INTERROGATORS)
        return routes

    # ---- png-info --------------------------------------------------------------------------------------------

    def _post_png_info(self, call):
        body = self._json_object(call)
        raw, image = self._decode_image(str(body.get("image") or "").strip())
        call.record.init_images.append(raw)
        items = {k: v for k, v in image.info.items() if isinstance(v, str)}
        info = items.pop("parameters", None) or _exif_comment(image) or _novelai_infotext(items, image) or ""
        return self._json({"info": info, "items": items, "parameters": _parse(info)})

    # ---- interrogate -----------------------------------------------------------------------------------------

    def _post_interrogate(self, call):
        body = self._json_object(call)
        raw, image = self._decode_image(body.get("image", ""))
        call.record.init_images.append(raw)
        model = body.get("model", "clip")
        offered = SDNEXT_INTERROGATORS if self.flavor == "sdnext" else A1111_INTERROGATORS
        if model not in offered:
            return self._http_error(404, "Model not found")
        with self._generation_lock:  # the queue lock, as in api.py
            if not self._interrogator_loaded:
                self._stopping.wait(self.interrogator_load_delay)
            if self.interrogator_weights_missing:
                return self._exception_reply("FileNotFoundError", BLIP_MISSING)
            self._interrogator_loaded = True
        return self._json({"caption": _caption(image, model)})

    def _json(self, obj: Any):
        from tests.standin.webui import _json_reply

        return _json_reply(200, obj)


def _caption(image: Image.Image, model: str) -> str:
    """A caption that follows from the pixels: the dominant colour, so tests can tell images apart."""
    red, green, blue = image.convert("RGB").resize((1, 1)).getpixel((0, 0))
    colour = max((("red", red), ("green", green), ("blue", blue)), key=lambda pair: pair[1])[0]
    if model == "deepdanbooru":
        return f"no humans, simple background, {colour} theme, abstract"
    return f"a {colour} abstract painting with rectangles, by Piet Mondrian, minimalism"


def _exif_comment(image: Image.Image) -> str:
    comment = image.getexif().get_ifd(_EXIF_IFD).get(_USER_COMMENT)
    if not comment:
        return ""
    if isinstance(comment, str):
        return comment
    if comment.startswith(b"UNICODE\0"):
        return comment[8:].decode("utf-16-le" if comment[9:10] == b"\0" else "utf-16-be", errors="ignore").strip("\0")
    return comment.decode("utf-8", errors="ignore").strip("\0")


def _novelai_infotext(items: dict[str, str], image: Image.Image) -> str:
    """A1111's read_info_from_image for a NovelAI PNG."""
    if items.get("Software") != "NovelAI":
        return ""
    try:
        meta = json.loads(items.get("Comment", "{}"))
    except ValueError:
        return ""
    sampler = NOVELAI_SAMPLERS.get(meta.get("sampler"), "Euler a")
    return (f"{items.get('Description', '')}\nNegative prompt: {meta.get('uc', '')}\n"
            f"Steps: {meta.get('steps')}, Sampler: {sampler}, CFG scale: {meta.get('scale')}, Seed: {meta.get('seed')}, "
            f"Size: {image.width}x{image.height}, Clip skip: 2, ENSD: 31337")


def _parse(info: str) -> dict[str, Any]:
    """The ``parameters`` object, roughly as parse_generation_parameters fills it (the plugin reads ``info``)."""
    if not info:
        return {}
    *lines, last = info.strip().split("\n")
    prompt = [line for line in lines if not line.startswith("Negative prompt:")]
    negative = [line[16:].strip() for line in lines if line.startswith("Negative prompt:")]
    params: dict[str, Any] = {}
    for pair in last.split(", "):
        key, sep, value = pair.partition(": ")
        if not sep:
            continue
        if key == "Size" and "x" in value:
            params["Size-1"], _, params["Size-2"] = value.partition("x")
        else:
            params[key] = value
    params.update({"Prompt": "\n".join(prompt), "Negative prompt": "\n".join(negative)})
    return params


def novelai_png(prompt: str, meta: dict[str, Any], size: tuple[int, int] = (64, 64)) -> bytes:
    """A PNG with NovelAI's metadata (no ``parameters`` chunk), for the /png-info fallback tests."""
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "NovelAI")
    info.add_text("Description", prompt)
    info.add_text("Comment", json.dumps(meta))
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, "PNG", pnginfo=info)
    return out.getvalue()
