"""Checking sampler, scheduler, LoRA and upscaler names against the server's own lists.

The WebUI silently replaces an unknown sampler, scheduler or LoRA; checking
first turns that into an error that lists what the server does have.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from sdwebui.errors import InvalidInput, NotFound, quoted
from sdwebui.models import Lora, Sampler, Scheduler


def normalise(name: str) -> str:
    """Compare names loosely: 'Euler a', 'euler_a' and 'EULER A' are one sampler."""
    return re.sub(r"[\s_\-]", "", name.lower())


def unknown_name(kind: str, name: str, available: list[str], close: list[str] | None = None) -> NotFound:
    """'The WebUI has no <kind> named X. Closest: a, b.' (or the first few names when none is close).

    ``close``: the caller's own closest names (ControlNet models compare without their ``[hash]``).
    """
    close = difflib.get_close_matches(name, available, n=3, cutoff=0.4) if close is None else close
    shown = close or available[:8]
    more = "" if close or len(available) <= 8 else f" (and {len(available) - 8} more)"
    listing = ", ".join(shown) + more if shown else "none"
    return NotFound(f"The WebUI has no {kind} named {quoted(name)}. {'Closest' if close else 'Available'}: {listing}.")


def with_aliases(samplers: list[Sampler], table: dict[str, str]) -> list[Sampler]:
    """``samplers`` with the extra names of ``table`` (alias -> listed name) added to their aliases."""
    extra: dict[str, list[str]] = {}
    for alias, name in table.items():
        extra.setdefault(name, []).append(alias)
    return [s.model_copy(update={"aliases": [*(s.aliases or []), *extra.get(s.name, [])]}) for s in samplers]


def resolve_scheduler(name: str, schedulers: list[Scheduler]) -> str:
    """The scheduler's lowercase ``name`` (servers match it; sd.cpp only matches lowercase)."""
    wanted = normalise(name)
    for scheduler in schedulers:
        if wanted in {normalise(scheduler.name), normalise(scheduler.label or "")} | {normalise(a) for a in scheduler.aliases or ()}:
            return scheduler.name
    raise unknown_name("scheduler", name, [s.name for s in schedulers])


def resolve_sampler(name: str, samplers: list[Sampler], schedulers: list[Scheduler] | None) -> tuple[str, str | None]:
    """``(sampler_name, scheduler_name or None)`` for ``name``.

    A legacy combined name such as "DPM++ 2M Karras" is split into sampler and
    scheduler when the server has schedulers (A1111 1.9+, Forge, sd.cpp).
    """
    wanted = normalise(name)
    for sampler in samplers:
        if wanted in {normalise(sampler.name)} | {normalise(a) for a in sampler.aliases or ()}:
            return sampler.name, None
    if schedulers:
        for scheduler in schedulers:
            for suffix in {scheduler.label or "", scheduler.name}:
                if suffix and name.lower().endswith(" " + suffix.lower()):
                    base = name[: -len(suffix)].strip()
                    for sampler in samplers:
                        if normalise(base) in {normalise(sampler.name)} | {normalise(a) for a in sampler.aliases or ()}:
                            return sampler.name, scheduler.name
    raise unknown_name("sampler", name, [s.name for s in samplers])


@dataclass(frozen=True)
class LoraUse:
    name: str  # as the server lists it, used in the prompt tag
    weight: float
    path: str | None  # for sd.cpp's lora array

    @property
    def tag(self) -> str:
        return f"<lora:{self.name}:{self.weight:g}>"


_TAG = re.compile(r"^<lora:(.+)>$", re.IGNORECASE)


def parse_lora_list(text: str) -> list[tuple[str, float]]:
    """Parse ``name:weight, name2:weight2`` (weight optional, default 1; ``<lora:…>`` tags accepted)."""
    items: list[tuple[str, float]] = []
    for raw in re.split(r"[,\n;]", text or ""):
        item = raw.strip()
        if not item:
            continue
        tag = _TAG.match(item)
        if tag:
            item = tag.group(1)
        name, sep, weight_text = item.rpartition(":")
        if not sep:
            name, weight = item, 1.0
        else:
            try:
                weight = float(weight_text)
            except ValueError:
                raise InvalidInput(
                    f"LoRA weight {quoted(weight_text)} in {quoted(raw)} is not a number; write LoRAs as name:weight, "
                    "for example add_detail:0.6, film_grain:0.3."
                ) from None
        name = name.strip()
        if not name:
            raise InvalidInput(f"{quoted(raw)} has no LoRA name; write LoRAs as name:weight, for example add_detail:0.6.")
        if not -4.0 <= weight <= 4.0:
            raise InvalidInput(f"LoRA weight {weight:g} for {quoted(name)} is out of range; use a value between -4 and 4 (usually 0.3 to 1).")
        items.append((name, weight))
    return items


def resolve_loras(text: str, available: list[Lora]) -> list[LoraUse]:
    uses = []
    for name, weight in parse_lora_list(text):
        wanted = normalise(name)
        match = next((lora for lora in available if wanted in {normalise(lora.name), normalise(lora.alias or "")}), None)
        if match is None:
            if not available:
                raise NotFound(f"The WebUI lists no LoRAs, so {quoted(name)} cannot be applied; put it in models/Lora and refresh.")
            raise unknown_name("LoRA", name, [lora.name for lora in available])
        uses.append(LoraUse(name=match.name, weight=weight, path=match.path))
    return uses


def resolve_upscaler(name: str, upscalers: list[str]) -> str:
    wanted = normalise(name)
    for upscaler in upscalers:
        if normalise(upscaler) == wanted:
            return upscaler
    raise unknown_name("upscaler", name, upscalers)
