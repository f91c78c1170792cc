"""txt2img: a prompt in, every generated image out as a blob, with seeds and info."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from dify_plugin import Tool
from dify_plugin.entities.tool import ToolInvokeMessage

from sdwebui.generation import Generation
from sdwebui.remake import with_generation_info
from sdwebui.settings import read_sampling
from tools.dify_errors import reported_as_dify_errors
from tools.webui_tool import WebUIToolMixin


class Txt2ImgTool(WebUIToolMixin, Tool):
    def _invoke(self, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        with reported_as_dify_errors():
            settings = self.provider_settings()
            deadline = settings.deadline()
            sampling = read_sampling(with_generation_info(tool_parameters))
            extras = self.extension_settings(tool_parameters, mode="txt2img")
            generation = Generation(settings.client(), default_model=settings.default_model)
            result = yield from self.generate_with_progress(
                settings, sampling, lambda on_progress: generation.txt2img(sampling, deadline, extras, on_progress=on_progress))
        yield from self.generation_messages(result, tool_parameters)
