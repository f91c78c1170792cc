"""list_resources: the server's models, samplers, schedulers, LoRAs and upscalers, for an agent to choose from."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from dify_plugin import Tool
from dify_plugin.entities.tool import ToolInvokeMessage

from sdwebui.catalog import RESOURCE_KINDS, Catalog, overview
from sdwebui.settings import read_resource_kinds
from tools.dify_errors import reported_as_dify_errors
from tools.webui_tool import WebUIToolMixin


class ListResourcesTool(WebUIToolMixin, Tool):
    def _invoke(self, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        with reported_as_dify_errors():
            settings = self.provider_settings()
            deadline = settings.deadline()
            kinds = read_resource_kinds(tool_parameters, RESOURCE_KINDS)
            resources = overview(Catalog(settings.client()), deadline, kinds)
        yield self.create_json_message(resources)
        counts = ", ".join(f"{len(v)} {k}" for k, v in resources.items() if isinstance(v, list))
        yield self.create_text_message(f"{resources['server']} with active model {resources['active_model']}: {counts}.")
