"""Upscale: one image file in, the upscaled image out, through the WebUI's extras upscalers."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from dify_plugin import Tool
from dify_plugin.entities.tool import ToolInvokeMessage

from sdwebui.settings import read_upscale
from sdwebui.upscaling import upscale
from tools.dify_errors import reported_as_dify_errors
from tools.webui_tool import WebUIToolMixin


class UpscaleTool(WebUIToolMixin, Tool):
    def _invoke(self, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        with reported_as_dify_errors():
            settings = self.provider_settings()
            deadline = settings.deadline()
            wanted = read_upscale(tool_parameters)
            image = self.input_image(tool_parameters, "image", what="input image", required=True)
            result = upscale(settings.client(), image.base64, wanted, deadline)
        [result], note = self.fit_output([result], tool_parameters)
        yield self.create_blob_message(result.data, meta={"mime_type": result.mime_type, "filename": result.filename})
        summary = result.summary()
        yield self.create_json_message(summary)
        for name in ("width", "height", "upscaler"):
            yield self.create_variable_message(name, summary[name])
        yield self.create_text_message(f"Upscaled the image to {result.width}x{result.height} with {result.upscaler}." + (f"\n{note}" if note else ""))
