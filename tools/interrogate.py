"""Describe image: an image file in, a prompt out, through the WebUI's ``POST /interrogate``."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from dify_plugin import Tool
from dify_plugin.entities.tool import ToolInvokeMessage

from sdwebui.interrogation import interrogate
from sdwebui.settings import read_choice
from tools.dify_errors import reported_as_dify_errors
from tools.webui_tool import WebUIToolMixin


class InterrogateTool(WebUIToolMixin, Tool):
    def _invoke(self, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        with reported_as_dify_errors():
            settings = self.provider_settings()
            deadline = settings.deadline()
            interrogator = read_choice(tool_parameters, "interrogator")
            image = self.input_image(tool_parameters, "image", what="image to describe", required=True)
            description = interrogate(settings.client(), image.base64, interrogator, deadline)
        summary = description.summary()
        yield self.create_json_message(summary)
        for name in ("prompt", "interrogator"):
            yield self.create_variable_message(name, summary[name])
        yield self.create_text_message(description.prompt)
