"""img2img and inpainting: an image file (and optionally a mask) in, new images out."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from dify_plugin import Tool
from dify_plugin.entities.tool import ToolInvokeMessage

from sdwebui.generation import Generation, Img2ImgInputs
from sdwebui.settings import read_img2img_controls, read_sampling
from tools.dify_errors import reported_as_dify_errors
from tools.webui_tool import WebUIToolMixin


class Img2ImgTool(WebUIToolMixin, Tool):
    def _invoke(self, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        with reported_as_dify_errors():
            settings = self.provider_settings()
            deadline = settings.deadline()
            sampling = read_sampling(tool_parameters, prompt_required=False)
            controls = read_img2img_controls(tool_parameters)
            extras = self.extension_settings(tool_parameters, mode="img2img")
            image = self.input_image(tool_parameters, "image", what="input image", required=True)
            mask = self.input_image(tool_parameters, "mask", what="mask")
            inputs = Img2ImgInputs(init_image=image.base64, controls=controls, mask=mask.base64 if mask else None,
                                   input_size=(image.image.width, image.image.height))
            generation = Generation(settings.client(), default_model=settings.default_model)
            result = yield from self.generate_with_progress(
                settings, sampling, lambda on_progress: generation.img2img(sampling, inputs, deadline, extras, on_progress=on_progress))
        yield from self.generation_messages(result, tool_parameters)
