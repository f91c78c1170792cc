"""Read generation info: an image file in, the prompt and settings that made it out (JSON and variables)."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from dify_plugin import Tool
from dify_plugin.entities.tool import ToolInvokeMessage

from sdwebui.client import WebUIClient
from sdwebui.deadline import Deadline
from sdwebui.errors import InvalidInput, WebUIError
from sdwebui.inputs import fetch_file
from sdwebui.png_info import read_image_info
from tools.dify_errors import reported_as_dify_errors
from tools.webui_tool import WebUIToolMixin, file_ref

SERVER_LOOKUP_S = 30.0  # /png-info only parses text; it never waits for the generation queue
VARIABLES = ("found", "prompt", "negative_prompt", "steps", "sampler", "scheduler", "cfg_scale", "seed",
             "width", "height", "model", "loras", "infotext")


class PngInfoTool(WebUIToolMixin, Tool):
    def _invoke(self, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        with reported_as_dify_errors():
            ref = file_ref(tool_parameters.get("image"))
            if ref is None:
                raise InvalidInput("No image was given; pass the image file whose generation info you want.")
            data = fetch_file(ref, what="image")
            client, deadline = self._server()
            info = read_image_info(data, client=client, deadline=deadline)
        summary = info.summary()
        yield self.create_json_message(summary)
        for name in VARIABLES:
            yield self.create_variable_message(name, summary.get(name))
        yield self.create_text_message(info.describe())

    def _server(self) -> tuple[WebUIClient | None, Deadline | None]:
        """The WebUI for the /png-info fallback; none when the credentials are unusable (reading needs none)."""
        try:
            settings = self.provider_settings()
            return settings.client(), Deadline(min(SERVER_LOOKUP_S, settings.timeout_s))
        except WebUIError:
            return None, None
