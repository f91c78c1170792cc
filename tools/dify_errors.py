"""The one place where WebUI errors become Dify errors.

Dify shows an ``Invoke*Error`` as its plain message; any other exception type
reaches users wrapped in "An error occurred in the plugin, please contact the
author…". So every :class:`~sdwebui.errors.WebUIError` is re-raised as the
``Invoke*Error`` that fits, with the same one-sentence message.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from dify_plugin.errors.model import (
    InvokeAuthorizationError,
    InvokeBadRequestError,
    InvokeConnectionError,
    InvokeError,
    InvokeServerUnavailableError,
)
from dify_plugin.errors.tool import ToolProviderCredentialValidationError

from sdwebui import errors

_DIFY_ERROR: list[tuple[type[errors.WebUIError], type[InvokeError]]] = [
    (errors.InvalidInput, InvokeBadRequestError),
    (errors.NotFound, InvokeBadRequestError),
    (errors.RequestRejected, InvokeBadRequestError),
    (errors.Unsupported, InvokeBadRequestError),
    (errors.OutputTooLarge, InvokeBadRequestError),
    (errors.AuthenticationFailed, InvokeAuthorizationError),
    (errors.Unreachable, InvokeConnectionError),
    (errors.ApiNotFound, InvokeConnectionError),
    (errors.Timeout, InvokeServerUnavailableError),
    (errors.ServerError, InvokeServerUnavailableError),
    (errors.MalformedResponse, InvokeServerUnavailableError),
]


def to_dify_error(exc: errors.WebUIError) -> InvokeError:
    for webui_type, dify_type in _DIFY_ERROR:
        if isinstance(exc, webui_type):
            return dify_type(str(exc))
    return InvokeServerUnavailableError(str(exc))


@contextmanager
def reported_as_dify_errors() -> Iterator[None]:
    """Inside a tool call: turn WebUI errors into Dify errors, without a chained traceback."""
    try:
        yield
    except errors.WebUIError as exc:
        raise to_dify_error(exc) from None


@contextmanager
def reported_as_credential_errors() -> Iterator[None]:
    """Inside credential validation: Dify's form shows this exception's message."""
    try:
        yield
    except errors.WebUIError as exc:
        raise ToolProviderCredentialValidationError(str(exc)) from None
