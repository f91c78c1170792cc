"""Provider: checks the admin's WebUI settings with one cheap, real request."""

from __future__ import annotations

from typing import Any

from dify_plugin import ToolProvider

from sdwebui.checkpoints import resolve_model
from sdwebui.config import ProviderSettings
from sdwebui.deadline import Deadline
from sdwebui.errors import NotFound
from tools.dify_errors import reported_as_credential_errors

VALIDATION_DEADLINE_S = 30.0


class SDWebUIProvider(ToolProvider):
    def _validate_credentials(self, credentials: dict[str, Any]) -> None:
        with reported_as_credential_errors():
            settings = ProviderSettings.from_credentials(credentials)
            deadline = Deadline(min(VALIDATION_DEADLINE_S, settings.timeout_s))
            models = settings.client().sd_models(deadline)
            if not models:
                raise NotFound(
                    f"The WebUI at {settings.base_url} answers but lists no checkpoints; put a model in "
                    "models/Stable-diffusion and restart it."
                )
            if settings.default_model:
                resolve_model(settings.default_model, models)
