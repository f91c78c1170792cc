"""The one exception hierarchy of the WebUI client.

Every failure the plugin can report is a :class:`WebUIError` whose ``str()`` is
one sentence for a person: what went wrong and what to do. The Dify layer maps
these classes to Dify's error types in one place (``tools/dify_errors.py``);
nothing else catches them.
"""

from __future__ import annotations


class WebUIError(Exception):
    """Base class: anything that went wrong talking to, or preparing a call to, the WebUI."""


class InvalidInput(WebUIError):
    """A parameter from the user, an LLM or a workflow variable is not usable.

    Raised before any HTTP call is made.
    """


class Unreachable(WebUIError):
    """The WebUI could not be reached at all: connection refused, DNS failure, connect timeout."""


class AuthenticationFailed(WebUIError):
    """The WebUI answered 401: missing or wrong ``--api-auth`` credentials."""


class ApiNotFound(WebUIError):
    """The URL answers, but not as a WebUI API: 404 on a core route, or HTML instead of JSON."""


class NotFound(WebUIError):
    """A named thing (model, sampler, LoRA, upscaler, route) does not exist on this server."""


class RequestRejected(WebUIError):
    """The WebUI refused the request (4xx); carries the server's ``detail``."""

    def __init__(self, message: str, *, status: int | None = None, detail: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


class ServerError(WebUIError):
    """The WebUI failed while handling the request (5xx); carries the server's ``errors`` text."""

    def __init__(self, message: str, *, status: int | None = None, errors: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.errors = errors


class Timeout(WebUIError):
    """The call's deadline ran out before the WebUI answered."""


class MalformedResponse(WebUIError):
    """The WebUI answered 200 but with something unusable: truncated JSON, no images, bad base64."""


class Unsupported(WebUIError):
    """This server cannot do what was asked (for example switching models on stable-diffusion.cpp)."""


class MissingRoute(Unsupported):
    """A server of a known family answered 404 for a route it does not have (sd.cpp lacks many)."""


class OutputTooLarge(WebUIError):
    """The images are larger than Dify will take from a tool call."""


ECHO_LIMIT = 60  # characters of a user's value an error message repeats


def quoted(value: object, limit: int = ECHO_LIMIT) -> str:
    """A user's (or an LLM's) value as an error message repeats it: quoted, on one line, cut to a readable length."""
    text = " ".join(str(value).split())
    return f"'{text if len(text) <= limit else text[: limit - 1] + '…'}'"
