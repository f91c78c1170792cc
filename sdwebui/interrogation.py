"""Describing an image: ``POST /interrogate`` turns an image into a prompt.

A1111 and Forge offer two interrogators, ``clip`` (BLIP caption + CLIP artists/flavours, a sentence)
and ``deepdanbooru`` (anime tags); any other name answers 404 "Model not found". SD.Next lists what
it has with ``GET /interrogate`` (OpenCLIP names such as ``ViT-L-14/openai``, older versions also
``clip`` and ``deepdanbooru``). stable-diffusion.cpp has no such route (404, empty body).

Failures worth one plain sentence, not the client's generic one:

- the server family cannot interrogate at all (sd.cpp);
- the interrogator's weights are missing: A1111 answers 500, or 200 with ``<error>`` in the caption;
- the first call loads the interrogator model, which can take minutes: a deadline that runs out then
  says so. No ``/interrupt`` is sent: it stops sampling only, and would hit someone else's generation.
"""

from __future__ import annotations

from dataclasses import dataclass

from sdwebui import models
from sdwebui.catalog import Catalog
from sdwebui.client import WebUIClient
from sdwebui.deadline import Deadline
from sdwebui.errors import ApiNotFound, MalformedResponse, MissingRoute, NotFound, ServerError, Timeout, Unsupported, quoted
from sdwebui.names import normalise
from sdwebui.servers import ServerProfile

A1111_INTERROGATORS = ("clip", "deepdanbooru")
DEFAULT_INTERROGATOR = "clip"
_ALIASES = {"deepbooru": "deepdanbooru", "danbooru": "deepdanbooru", "blip": "clip"}


@dataclass(frozen=True)
class Description:
    prompt: str  # one line
    interrogator: str
    server: str  # flavour

    def summary(self) -> dict[str, str]:
        return {"prompt": self.prompt, "interrogator": self.interrogator, "server": self.server}


def interrogate(client: WebUIClient, image_base64: str, interrogator: str, deadline: Deadline, *, catalog: Catalog | None = None) -> Description:
    catalog = catalog or Catalog(client)
    server = catalog.server(deadline)
    if not server.describe_routes:
        raise Unsupported(
            f"The {server.name} cannot describe images (it has no /interrogate); "
            "use an AUTOMATIC1111, Forge or SD.Next WebUI for this tool."
        )
    name = resolve_interrogator(interrogator, _offered(catalog, server, deadline))
    try:
        data = _describe(client, server, image_base64, name, deadline)
    except Timeout:
        raise Timeout(
            f"The WebUI did not describe the image within {deadline.seconds:.0f} s. Its first description loads the "
            f"{quoted(name)} interrogator, which can take minutes; try again, or raise 'Request timeout' in the provider settings."
        ) from None
    except (ApiNotFound, MissingRoute):
        raise Unsupported(f"The {server.name} at {client.base_url} has no /interrogate route, so it cannot describe images.") from None
    except NotFound:
        raise NotFound(f"The WebUI has no interrogator named {quoted(name)}; use clip or deepdanbooru.") from None
    except ServerError as exc:
        if exc.status is None:  # connection dropped: the client's sentence already says it
            raise
        raise _failed(name, exc.errors) from None
    answer = models.parse(models.InterrogateResponse, data, what="POST /interrogate")
    caption = answer.caption or answer.tags or answer.answer or ""
    if "<error>" in caption:  # A1111's interrogator catches its own failure and answers with this marker
        raise _failed(name, "")
    line = " ".join(caption.split())
    if not line:
        raise MalformedResponse(f"The WebUI's {quoted(name)} interrogator returned an empty description; try the other interrogator.")
    return Description(prompt=line, interrogator=name, server=server.flavor)


# SD.Next 2026's POST /caption (modules/api/caption.py, read from source: no recording yet): one route, three
# backends. The plugin's two interrogator names map onto its OpenCLIP and tagger backends.
CAPTION_BODIES = {"clip": {"backend": "openclip"}, "deepdanbooru": {"backend": "tagger", "model": "deepbooru"}}


def _describe(client: WebUIClient, server: ServerProfile, image_base64: str, name: str, deadline: Deadline) -> object:
    """The server's first describe route that exists (``ServerProfile.describe_routes``)."""
    for route in server.describe_routes[:-1]:
        try:
            return client.post(route, _body(route, image_base64, name), deadline=deadline)
        except (ApiNotFound, MissingRoute):
            continue  # an older version of this server: its next route
    route = server.describe_routes[-1]
    return client.post(route, _body(route, image_base64, name), deadline=deadline)


def _body(route: str, image_base64: str, name: str) -> dict[str, object]:
    if route == "caption":
        return {"image": image_base64, **CAPTION_BODIES.get(name, {"backend": "openclip", "clip_model": name})}
    return {"image": image_base64, "model": name}


def resolve_interrogator(name: str, offered: list[str]) -> str:
    """The server's spelling of ``name``; ``clip`` (the default) falls back to the first one offered."""
    wanted = (name or DEFAULT_INTERROGATOR).strip()
    wanted = _ALIASES.get(wanted.lower(), wanted)
    for candidate in offered:
        if normalise(candidate) == normalise(wanted):
            return candidate
    if wanted == DEFAULT_INTERROGATOR and offered:
        return offered[0]
    raise NotFound(f"The WebUI has no interrogator named {quoted(name)}. Available: {', '.join(offered) or 'none'}.")


def _offered(catalog: Catalog, server: ServerProfile, deadline: Deadline) -> list[str]:
    """A1111/Forge: the two built in. SD.Next: its ``GET /interrogate`` list, cached (or the two, if it has none)."""
    if server.lists_interrogators:
        listed = catalog.interrogators(deadline)
        if listed:
            return listed
    return list(A1111_INTERROGATORS)


def _failed(name: str, detail: str) -> ServerError:
    other = "deepdanbooru" if name == "clip" else "clip"
    reason = f" ({detail})" if detail else ""
    return ServerError(
        f"The WebUI's {quoted(name)} interrogator failed{reason}; its model weights are probably missing or could not be "
        f"downloaded. Check the WebUI console (models/BLIP, models/interrogate, models/torch_deepdanbooru), or try {other}.",
        errors=detail,
    )
