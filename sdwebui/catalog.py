"""What a server offers (models, samplers, schedulers, LoRAs, upscalers, its flavour), cached briefly.

Lists are cached per base URL and user for a short time, so a dynamic-select
dropdown, the validation of a name and the generation that follows cost one
``GET`` each, and a ``/loras`` answer of tens of MB is read once a minute at most.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from sdwebui import checkpoints, models
from sdwebui.client import WebUIClient
from sdwebui.deadline import Deadline
from sdwebui.servers import ServerProfile, detect_server

LIST_TTL_S = 60.0
SERVER_TTL_S = 300.0

_store: dict[tuple[str, str, str], tuple[float, Any]] = {}
_lock = threading.Lock()


def clear_cache() -> None:
    with _lock:
        _store.clear()


class Catalog:
    def __init__(self, client: WebUIClient, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self._clock = clock

    def _cached(self, name: str, ttl: float, load: Callable[[], Any], *, refresh: bool = False) -> Any:
        key = (self.client.base_url, self.client.username or "", name)
        now = self._clock()
        with _lock:
            hit = _store.get(key)
        if hit and not refresh and hit[0] > now:
            return hit[1]
        value = load()
        with _lock:
            _store[key] = (now + ttl, value)
        return value

    def server(self, deadline: Deadline, options: models.Options | None = None) -> ServerProfile:
        """The server family (detected once per base URL). The client learns it too, so that a route
        this server lacks is reported as such rather than as "the API is off"."""
        server = self._cached("server", SERVER_TTL_S, lambda: detect_server(self.client, deadline, options))
        self.client.known_server = (server.name, server.missing_route_advice)
        return server

    def models(self, deadline: Deadline, *, refresh: bool = False) -> list[models.SDModel]:
        return self._cached("sd-models", LIST_TTL_S, lambda: self.client.sd_models(deadline), refresh=refresh)

    def samplers(self, deadline: Deadline) -> list[models.Sampler]:
        return self._cached("samplers", LIST_TTL_S, lambda: self.client.samplers(deadline))

    def schedulers(self, deadline: Deadline, server: ServerProfile) -> list[models.Scheduler] | None:
        """The server's schedulers; SD.Next's sigma algorithms stand in for them; ``None``: no such setting."""
        if server.scheduler_kind == "sigma":
            return [models.Scheduler(name=name, label=name.capitalize()) for name in server.sigmas]
        if server.scheduler_kind is None:
            return None
        return self._cached("schedulers", LIST_TTL_S, lambda: self.client.schedulers(deadline))

    def loras(self, deadline: Deadline) -> list[models.Lora]:
        return self._cached("loras", LIST_TTL_S, lambda: self.client.loras(deadline))

    def upscalers(self, deadline: Deadline) -> list[models.Upscaler]:
        return self._cached("upscalers", LIST_TTL_S, lambda: self.client.upscalers(deadline))

    def latent_upscale_modes(self, deadline: Deadline) -> list[models.LatentUpscaleMode]:
        return self._cached("latent-upscale-modes", LIST_TTL_S, lambda: self.client.latent_upscale_modes(deadline))

    # Extensions and finer control (sdwebui/extensions.py). None: the route is missing, the extension not installed.

    def controlnet_models(self, deadline: Deadline) -> list[str] | None:
        return self._cached("controlnet-models", LIST_TTL_S, lambda: self.client.controlnet_models(deadline))

    def controlnet_modules(self, deadline: Deadline) -> list[str] | None:
        return self._cached("controlnet-modules", LIST_TTL_S, lambda: self.client.controlnet_modules(deadline))

    def adetailer_models(self, deadline: Deadline) -> list[str] | None:
        return self._cached("adetailer-models", LIST_TTL_S, lambda: self.client.adetailer_models(deadline))

    def vaes(self, deadline: Deadline, server: ServerProfile) -> list[models.VaeEntry] | None:
        """The VAEs (Forge: its modules, VAEs and text encoders); ``None`` where the server lists none."""
        route = server.vae_route
        if route is None:
            return None
        return self._cached(route, LIST_TTL_S, lambda: self.client.vaes(deadline, route))

    def styles(self, deadline: Deadline) -> list[models.PromptStyle] | None:
        return self._cached("prompt-styles", LIST_TTL_S, lambda: self.client.prompt_styles(deadline))

    def interrogators(self, deadline: Deadline) -> list[str] | None:
        """SD.Next's ``GET /interrogate`` list of interrogator names; ``None`` where the route does not exist."""
        def load() -> list[str] | None:
            listed = self.client.get_optional("interrogate", deadline=deadline)
            return [str(item) for item in listed] if isinstance(listed, list) else None
        return self._cached("interrogators", LIST_TTL_S, load)


# null in the answer: the server or the extension does not have that list (ControlNet or ADetailer not installed).
EXTENSION_KINDS = ("controlnet_models", "controlnet_modules", "adetailer_models", "vaes", "styles")


def extension_overview(catalog: Catalog, server: ServerProfile, deadline: Deadline, kinds: list[str]) -> dict[str, Any]:
    """The extension lists asked for in ``kinds``; ``None`` where the server or extension lacks one."""

    def listed(names: list[str] | None) -> list[str] | None:
        return None if names is None else [n for n in names if n.lower() != "none"][:MAX_LISTED]

    def controlnet_modules() -> list[str] | None:
        if catalog.controlnet_models(deadline) is None:  # the same detection as for generating
            return None
        return (catalog.controlnet_modules(deadline) or [])[:MAX_LISTED]

    extensible = server.alwayson_extensions  # ControlNet/ADetailer through alwayson_scripts
    sources: dict[str, Callable[[], list[str] | None]] = {
        "controlnet_models": lambda: listed(catalog.controlnet_models(deadline)),
        "controlnet_modules": controlnet_modules,
        "adetailer_models": lambda: listed(catalog.adetailer_models(deadline)),
        "vaes": lambda: listed([v.model_name for v in catalog.vaes(deadline, server) or []]),
        "styles": lambda: listed([s.name for s in catalog.styles(deadline) or []]),
    }
    unavailable = {kind for kind, has in (("vaes", server.vae_route), ("styles", server.styles)) if not has}
    if not extensible:
        unavailable |= {"controlnet_models", "controlnet_modules", "adetailer_models"}
    return {kind: None if kind in unavailable else load() for kind, load in sources.items() if kind in kinds}


def active_model(catalog: Catalog, options: models.Options, server: ServerProfile, deadline: Deadline) -> str | None:
    """The checkpoint the next generation without a model uses, by its title where it can be told.

    SD.Next's options name the model last set even when another is loaded; its ``sd_checkpoint_hash``
    names the loaded one. Elsewhere the options' name is the one used next (Forge loads it lazily).
    """
    available = catalog.models(deadline)
    if not server.reloads_on_options:
        loaded = checkpoints.loaded_model(options.sd_checkpoint_hash, available)
        if loaded is not None:
            return loaded.title
    named = checkpoints.find_models(options.sd_model_checkpoint or "", available) if options.sd_model_checkpoint else []
    return named[0].title if len(named) == 1 else options.sd_model_checkpoint


RESOURCE_KINDS = ("models", "samplers", "schedulers", "loras", "upscalers") + EXTENSION_KINDS
MAX_LISTED = 300  # keeps the agent's JSON small even with thousands of LoRAs


def overview(catalog: Catalog, deadline: Deadline, kinds: list[str] | None = None) -> dict[str, Any]:
    """The server's lists as plain names, for an agent to choose from before it generates."""
    kinds = kinds or list(RESOURCE_KINDS)
    options = catalog.client.options(deadline)
    server = catalog.server(deadline, options)
    result: dict[str, Any] = {"server": server.name, "active_model": active_model(catalog, options, server, deadline)}
    if "models" in kinds:
        result["models"] = [{"title": m.title, "name": m.model_name} for m in catalog.models(deadline)][:MAX_LISTED]
    if "samplers" in kinds:
        result["samplers"] = [s.name for s in catalog.samplers(deadline)][:MAX_LISTED]
    if "schedulers" in kinds:
        schedulers = catalog.schedulers(deadline, server)
        result["schedulers"] = None if schedulers is None else [s.name for s in schedulers][:MAX_LISTED]
    if "loras" in kinds:
        result["loras"] = [lora.name for lora in catalog.loras(deadline)][:MAX_LISTED]
    if "upscalers" in kinds:
        result["upscalers"] = [u.name for u in catalog.upscalers(deadline) if u.name != "None"][:MAX_LISTED]
    result.update(extension_overview(catalog, server, deadline, kinds))
    return result
