"""The one parser of the WebUI "infotext": the generation parameters text stored in every image.

A1111, Forge and SD.Next write it into PNGs (the ``parameters`` text chunk) and JPEG/WebP
(EXIF UserComment); stable-diffusion.cpp's server writes the same layout into its PNGs::

    a red apple <lora:rand-lora:0.8>
    Negative prompt: blurry
    Steps: 2, Sampler: Euler, Schedule type: Automatic, CFG scale: 7.0, Seed: 1234, Size: 64x64, ...

The prompt lines come first, then the negative prompt, then one line of ``Key: value`` pairs
(a value with commas is JSON-quoted). The splitting follows A1111's own
``parse_generation_parameters`` (modules/infotext_utils.py), so both read a text the same way.
What the family members add is handled here too:

- sd.cpp writes ``Sampler: euler_a karras`` (sampler and scheduler in one), ``Sampler: NONE`` for its
  default, ``CFG scale: 7.000000``, and appends its whole request as ``SDCPP: {json}``, whose commas
  would cut the pair regex: it is split off first and read as JSON;
- SD.Next writes ``App: SD.Next`` and an empty ``Negative prompt:`` line.

LoRAs travel as ``<lora:name:weight>`` tags inside the prompt (sd.cpp: in its JSON). They are taken
out of ``prompt`` into ``loras``, so that feeding the result back to txt2img applies each LoRA once.
``infotext`` keeps the text exactly as read.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from sdwebui.checkpoints import strip_extension

# A1111's re_param_code: `Key: value` or `Key: "quoted, value"`, separated by commas.
_PAIR = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
_SIZE = re.compile(r"^(\d+)x(\d+)$")
_LORA_TAG = re.compile(r"\s*<lora:([^:>]+)(?::([^:>]*))?(?::[^>]*)?>", re.IGNORECASE)
_SDCPP_JSON = re.compile(r"(?:,\s*|^)SDCPP:\s*(\{.*\})\s*$")
MAX_INFOTEXT_CHARS = 200_000  # real ones are a few KB; a bound keeps a hostile file cheap


@dataclass(frozen=True)
class LoraWeight:
    name: str
    weight: float


@dataclass(frozen=True)
class GenerationParameters:
    """What produced an image, as far as its infotext says. ``None``: the text does not say."""

    infotext: str
    prompt: str = ""
    negative_prompt: str = ""
    steps: int | None = None
    sampler: str | None = None
    scheduler: str | None = None
    cfg_scale: float | None = None
    seed: int | None = None
    width: int | None = None
    height: int | None = None
    model: str | None = None
    model_hash: str | None = None
    loras: tuple[LoraWeight, ...] = ()
    clip_skip: int | None = None
    denoising_strength: float | None = None
    version: str | None = None
    fields: dict[str, str] = field(default_factory=dict)  # every Key: value pair, unquoted

    @property
    def found(self) -> bool:
        return bool(self.prompt or self.negative_prompt or self.fields)

    def to_json(self) -> dict[str, Any]:
        """The shape ``png_info`` returns and txt2img's ``generation_info`` accepts."""
        return {
            "prompt": self.prompt,
            "negative_prompt": self.negative_prompt,
            "steps": self.steps,
            "sampler": self.sampler,
            "scheduler": self.scheduler,
            "cfg_scale": self.cfg_scale,
            "seed": self.seed,
            "width": self.width,
            "height": self.height,
            "model": self.model,
            "model_hash": self.model_hash,
            "loras": [{"name": lora.name, "weight": lora.weight} for lora in self.loras],
            "clip_skip": self.clip_skip,
            "denoising_strength": self.denoising_strength,
            "version": self.version,
            "parameters": dict(self.fields),
            "infotext": self.infotext,
        }


def parse_infotext(text: str) -> GenerationParameters:
    """Read an infotext of any family member; never raises (unknown or odd values become ``None``)."""
    raw = (text or "")[:MAX_INFOTEXT_CHARS]
    *lines, last = raw.strip().replace("\r\n", "\n").split("\n")
    sdcpp, last = _split_sdcpp_json(last)
    if len(_PAIR.findall(last)) < 3:  # A1111's rule: fewer than 3 pairs means the last line is still prompt
        lines.append(last)
        last = ""
    prompt, negative = _prompts(lines)
    fields = _pairs(last)
    prompt, loras = _take_lora_tags(prompt)
    sampler, scheduler = _sampler_and_scheduler(fields, sdcpp)
    width, height = _size(fields.get("Size"))
    version = fields.get("Version")
    if version in (None, "", "unknown") and fields.get("App"):
        version = fields["App"]
    return GenerationParameters(
        infotext=raw,
        prompt=prompt,
        negative_prompt=negative,
        steps=_int(fields.get("Steps")),
        sampler=sampler,
        scheduler=scheduler,
        cfg_scale=_float(fields.get("CFG scale")),
        seed=_int(fields.get("Seed")),
        width=width,
        height=height,
        model=fields.get("Model") or None,
        model_hash=fields.get("Model hash") or None,
        loras=tuple(loras) or _sdcpp_loras(sdcpp),
        clip_skip=_int(fields.get("Clip skip")),
        denoising_strength=_float(fields.get("Denoising strength")),
        version=version or None,
        fields=fields,
    )


def _split_sdcpp_json(line: str) -> tuple[dict[str, Any] | None, str]:
    match = _SDCPP_JSON.search(line)
    if not match:
        return None, line
    try:
        data = json.loads(match.group(1))
    except ValueError:
        return None, line
    return (data if isinstance(data, dict) else None), line[: match.start()]


def _prompts(lines: list[str]) -> tuple[str, str]:
    prompt: list[str] = []
    negative: list[str] = []
    in_negative = False
    for line in lines:
        line = line.strip()
        if line.startswith("Negative prompt:"):
            in_negative = True
            line = line[len("Negative prompt:"):].strip()
        (negative if in_negative else prompt).append(line)
    return "\n".join(prompt).strip(), "\n".join(negative).strip()


def _pairs(line: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for key, value in _PAIR.findall(line):
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            try:
                value = str(json.loads(value))
            except ValueError:
                pass
        fields[key.strip()] = value
    return fields


def _take_lora_tags(prompt: str) -> tuple[str, list[LoraWeight]]:
    loras = []
    for match in _LORA_TAG.finditer(prompt):
        weight = _float(match.group(2))
        loras.append(LoraWeight(name=match.group(1).strip(), weight=1.0 if weight is None else weight))
    return _LORA_TAG.sub("", prompt).strip(), loras


def _sampler_and_scheduler(fields: dict[str, str], sdcpp: dict[str, Any] | None) -> tuple[str | None, str | None]:
    sampler = fields.get("Sampler") or None
    scheduler = fields.get("Schedule type") or fields.get("Scheduler") or None
    is_sdcpp = sdcpp is not None or fields.get("Version") == "stable-diffusion.cpp"
    if not is_sdcpp:
        return sampler, scheduler
    sampling = (sdcpp or {}).get("sampling") or {}
    if isinstance(sampling, dict) and sampling.get("method"):
        return str(sampling["method"]), (str(sampling["scheduler"]) if sampling.get("scheduler") else scheduler)
    if sampler is None or sampler.upper() == "NONE":  # the server's default was used
        return None, scheduler
    name, _, combined_scheduler = sampler.partition(" ")  # "euler_a karras"
    return name, combined_scheduler.strip() or scheduler


def _sdcpp_loras(sdcpp: dict[str, Any] | None) -> tuple[LoraWeight, ...]:
    items = (sdcpp or {}).get("loras") or []
    loras = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and item.get("name"):
            weight = _float(item.get("multiplier"))
            loras.append(LoraWeight(name=strip_extension(str(item["name"])), weight=1.0 if weight is None else round(weight, 4)))
    return tuple(loras)


def _size(value: str | None) -> tuple[int | None, int | None]:
    match = _SIZE.match((value or "").strip())
    return (int(match.group(1)), int(match.group(2))) if match else (None, None)


def _float(value: Any) -> float | None:
    try:
        number = float(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) != float("inf") else None


def _int(value: Any) -> int | None:
    number = _float(value)
    return int(number) if number is not None and number == int(number) else None
