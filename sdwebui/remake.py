"""'Make it again': txt2img parameters from the generation info of an earlier image.

txt2img's optional ``generation_info`` takes what ``png_info`` returns, in any form a workflow or an
LLM may hand it over:

- a JSON object (``png_info``'s ``json`` output), or a list holding one (Dify passes a node's ``json``
  output as an array), or either as JSON text (or as a Python literal, the way some Dify versions put an object
  variable into text);
- an infotext as plain text (``png_info``'s ``infotext`` variable, or one of txt2img's ``infotexts``).

The values become ordinary tool parameters (prompt, negative_prompt, steps, cfg_scale, seed, width,
height, sampler, scheduler, model, loras, clip_skip) that :func:`sdwebui.settings.read_sampling` then
checks like any other, and the model, sampler and LoRAs are resolved against the server's lists like
typed names, so an unknown one is refused with the closest names. Hires fix and img2img fields are
not carried over: the size given is the first-pass size.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from typing import Any

from sdwebui.errors import InvalidInput
from sdwebui.infotext import parse_infotext
from sdwebui.settings import MAX_SIZE, MIN_SIZE, is_given, read_number

_COPIED = ("prompt", "negative_prompt", "steps", "cfg_scale", "seed", "clip_skip", "sampler", "scheduler", "model")
_EXAMPLE = 'the JSON that Read generation info returns, e.g. {"prompt": "a red apple", "seed": 1234, "steps": 20}'


def read_generation_info(value: Any) -> dict[str, Any]:
    """The generation info as a dict (``{}`` when none was given); one sentence when it is unusable."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return {}
    if isinstance(value, str):
        text = value.strip()
        if text[0] in "[{":
            value = _json_or_literal(text)
        else:
            parsed = parse_infotext(text)
            if not parsed.fields:
                raise InvalidInput(f"generation_info is neither JSON nor a WebUI infotext (no 'Steps: ..., Seed: ...' line); pass {_EXAMPLE}.")
            return parsed.to_json()
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if not isinstance(value, Mapping):
        raise InvalidInput(f"generation_info must be one JSON object; got {type(value).__name__}. Pass {_EXAMPLE}.")
    if value.get("found") is False:
        raise InvalidInput("generation_info comes from an image that carries no generation parameters; give a prompt instead.")
    return dict(value)


def _json_or_literal(text: str) -> Any:
    """JSON; else a Python literal, which is how some Dify versions render an object variable inside text."""
    try:
        return json.loads(text)
    except ValueError as exc:
        error = exc
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise InvalidInput(f"generation_info is not valid JSON ({error.msg} at character {error.pos}); pass {_EXAMPLE}.") from None


def txt2img_parameters(info: Mapping[str, Any]) -> dict[str, Any]:
    """Tool parameters from generation info; keys without a value are left out."""
    params = {key: info[key] for key in _COPIED if info.get(key) not in (None, "")}
    if isinstance(params.get("scheduler"), str) and params["scheduler"].lower() == "automatic":
        del params["scheduler"]  # the sampler's own default: leave it to the server (sd.cpp has no "automatic")
    for key in ("width", "height"):
        value = info.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            # The WebUI rounds a size down to a multiple of 8 but records the size asked for (100x60 -> 96x56);
            # this plugin's range (64..2048) then bounds it, so a 56 becomes 64 rather than an error.
            value = min(MAX_SIZE, max(MIN_SIZE, int(value) // 8 * 8))
        if value not in (None, ""):
            params[key] = value
    loras = _loras_text(info.get("loras"))
    if loras:
        params["loras"] = loras
    return params


def _loras_text(value: Any) -> str:
    if value in (None, "", []):
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(item, Mapping) and item.get("name") for item in value):
        return ", ".join(f"{item['name']}:{item.get('weight', 1)}" for item in value)
    raise InvalidInput('generation_info.loras must be a list like [{"name": "add_detail", "weight": 0.6}] or text like add_detail:0.6.')


def with_generation_info(params: Mapping[str, Any]) -> Mapping[str, Any]:
    """txt2img's parameters over ``generation_info`` (an earlier image's settings, see :mod:`sdwebui.remake`).

    Explicit fields win. A seed of -1 does not count as explicit: it is the form's default, which Dify
    sends when the user left the field alone, and it means "no particular seed".
    """
    base = txt2img_parameters(read_generation_info(params.get("generation_info")))
    if not base:
        return params
    explicit = {k: v for k, v in params.items() if is_given(params, k) and not (k == "seed" and read_number(params, k) == -1)}
    return {**base, **explicit}
