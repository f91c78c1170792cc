"""Checkpoint names: every form a user may type, and comparing them with what the server reports.

A1111 and Forge accept a checkpoint by its title (``x.safetensors [hash]``), the
title before hashing (``x.safetensors``), ``model_name``, the file name with or
without extension, the short hash or the sha256. ``GET /options`` reports the
active checkpoint in whatever form it was last set, so comparing plain strings
is wrong: compare through this alias table.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

from sdwebui.errors import InvalidInput, NotFound, quoted
from sdwebui.models import SDModel

_HASH_SUFFIX = re.compile(r"\s*\[[0-9a-fA-F]{8,64}\]$")


def without_hash(title: str) -> str:
    """'rand-b.safetensors [2a30d74d7c]' -> 'rand-b.safetensors': a WebUI adds the hash once it has read the file."""
    return _HASH_SUFFIX.sub("", title)


_EXTENSIONS = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".sft")


def strip_extension(name: str) -> str:
    """'rand-lora.safetensors' -> 'rand-lora' (model and LoRA files alike); other names are kept."""
    for ext in _EXTENSIONS:
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return name


def _stem(name: str) -> str:
    return strip_extension(name.replace("\\", "/").rsplit("/", 1)[-1])


def aliases(model: SDModel) -> set[str]:
    """Every name that designates ``model`` on A1111, Forge, SD.Next and sd.cpp."""
    names = {model.title, without_hash(model.title)}
    if model.model_name:
        names.add(model.model_name)
    plain = without_hash(model.title)
    names.add(_stem(plain))
    names.add(plain.replace("\\", "/").rsplit("/", 1)[-1])
    if model.filename:
        base = model.filename.replace("\\", "/").rsplit("/", 1)[-1]
        names.update({base, _stem(base), model.filename})
    for digest in (model.hash, model.sha256):
        if digest:
            names.add(digest)
    if model.sha256:
        names.add(model.sha256[:10])
        names.add(model.sha256[:8])
    short = model.hash or (model.sha256[:10] if model.sha256 else None)
    if short:
        names.update({f"{n} [{short}]" for n in (plain, _stem(plain), model.model_name) if n})
    names.discard("")
    return names


def find_models(name: str, models: Iterable[SDModel]) -> list[SDModel]:
    """Every model ``name`` designates: exact aliases first, else case-insensitively.

    Usually one or none. Two byte-identical files share a hash (seen on a real Forge:
    ``rand-a.safetensors`` and ``sub/rand-b.safetensors``), so a hash may name several.
    """
    wanted = name.strip()
    catalogue = [(model, aliases(model)) for model in models]  # each model's aliases built once
    exact = [model for model, names in catalogue if wanted in names]
    if exact:
        return exact
    lowered = wanted.lower()
    return [model for model, names in catalogue if lowered in {a.lower() for a in names}]


def same_file(a: SDModel, b: SDModel) -> bool:
    """Whether two list entries are one checkpoint, read before and after the WebUI hashed it (the title gains
    ``[hash]``, the hash fields fill in)."""
    if a.filename and b.filename:
        return a.filename == b.filename
    return without_hash(a.title) == without_hash(b.title)


def includes(models: Iterable[SDModel], model: SDModel) -> bool:
    return any(same_file(m, model) for m in models)


def find_model(name: str, models: Iterable[SDModel]) -> SDModel | None:
    """The one model ``name`` designates, ``None`` if none; a name that fits several is an error."""
    matches = find_models(name, models)
    if len(matches) > 1:
        titles = ", ".join(m.title for m in matches)
        raise InvalidInput(
            f"The name '{name.strip()}' fits {len(matches)} checkpoints ({titles}), probably identical files that share "
            "one hash; name the one you want by its title or file name."
        )
    return matches[0] if matches else None


def resolve_model(name: str, models: list[SDModel]) -> SDModel:
    """Like :func:`find_model`, but an unknown name is an error that lists the closest names."""
    model = find_model(name, models)
    if model is not None:
        return model
    if not models:
        raise NotFound("The WebUI lists no checkpoints; put a model in models/Stable-diffusion and restart it or refresh its list.")
    def closeness(model: SDModel) -> float:
        return max(difflib.SequenceMatcher(None, name.lower(), alias.lower()).ratio() for alias in (model.title, model.model_name or model.title))

    ranked = sorted(models, key=closeness, reverse=True)
    suggestions = [m.title for m in ranked[:3]]
    raise NotFound(f"The WebUI has no model named {quoted(name)}. Closest available: {', '.join(suggestions)}.")


def is_active(active: str | None, model: SDModel) -> bool:
    """Whether the checkpoint reported by ``GET /options`` is ``model``, in any of its forms."""
    if not active:
        return False
    names = aliases(model)
    return active in names or without_hash(active) in names


def loaded_model(sha256: str | None, models: Iterable[SDModel]) -> SDModel | None:
    """The model whose sha256 is ``sha256`` (``GET /options`` ``sd_checkpoint_hash``), if exactly one has it."""
    digest = (sha256 or "").lower()
    if not digest:
        return None
    matches = [m for m in models if m.sha256 and m.sha256.lower().startswith(digest)]
    return matches[0] if len(matches) == 1 else None
