"""Check server: runs the conformance cases (sdwebui/conformance.py) against the configured WebUI, from inside Dify.

The same cases as ``make check-server``, so that the two cannot drift; here the runner calls the plugin's other tools
in-process, built the way the SDK builds them (``Tool.from_credentials``) with this tool's credentials, and only each
call's request timeout changed to its case's deadline. Input images are passed as in-memory files (``data``).
The whole run stays within min(the provider's request timeout, 300 s), well inside Dify's 600 s per call.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from dify_plugin import Tool
from dify_plugin.entities.tool import ToolInvokeMessage

from provider.sd_webui import SDWebUIProvider
from sdwebui import conformance
from sdwebui.config import MIN_DEADLINE_S
from sdwebui.conformance import Answer, Check
from tools import img2img, interrogate, list_resources, png_info, txt2img, upscale
from tools.dify_errors import reported_as_dify_errors
from tools.webui_tool import WebUIToolMixin

BUDGET_S = 300.0  # the whole check; Dify stops a plugin call at 600 s
# Modules, not classes: the SDK's loader wants exactly one Tool subclass among this module's names.
TOOLS: dict[str, Any] = {
    "txt2img": lambda: txt2img.Txt2ImgTool, "img2img": lambda: img2img.Img2ImgTool,
    "upscale": lambda: upscale.UpscaleTool, "list_resources": lambda: list_resources.ListResourcesTool,
    "interrogate": lambda: interrogate.InterrogateTool, "png_info": lambda: png_info.PngInfoTool}
Msg = ToolInvokeMessage.MessageType


def _error(exc: BaseException) -> dict[str, Any]:
    return {"error_type": type(exc).__name__, "message": str(exc)}


class InProcessRunner:
    """The plugin's own tools, called directly with the admin's credentials."""

    def __init__(self, credentials: dict[str, Any]) -> None:
        self.credentials = dict(credentials)

    def _credentials(self, timeout_s: float) -> dict[str, Any]:
        return {**self.credentials, "timeout": str(max(int(MIN_DEADLINE_S), int(timeout_s)))}

    def invoke(self, tool_name: str, params: dict[str, Any], timeout_s: float) -> Answer:
        answer = Answer()
        try:
            tool = TOOLS[tool_name]().from_credentials(self._credentials(timeout_s))
            for message in tool.invoke(params):
                body = message.message
                if message.type == Msg.TEXT:
                    answer.texts.append(body.text)
                elif message.type == Msg.JSON:
                    answer.jsons.append(body.json_object)
                elif message.type == Msg.BLOB:
                    answer.blobs.append(body.blob)
                elif message.type == Msg.VARIABLE:
                    answer.variables[body.variable_name] = body.variable_value
        except Exception as exc:  # an Invoke*Error as Dify would show it, or anything else the tool raised
            answer.error = _error(exc)
        return answer

    def validate(self, timeout_s: float) -> Answer:
        try:
            SDWebUIProvider()._validate_credentials(self._credentials(timeout_s))
        except Exception as exc:
            return Answer(error=_error(exc))
        return Answer(messages=[{"result": True}])

    def options(self, tool_name: str, parameter: str, timeout_s: float) -> Answer:
        try:
            tool = TOOLS[tool_name]().from_credentials(self._credentials(timeout_s))
            options = tool._fetch_parameter_options(parameter)
        except Exception as exc:
            return Answer(error=_error(exc))
        return Answer(messages=[{"options": [option.model_dump(mode="json") for option in options]}])

    def image(self, data: bytes, filename: str) -> Any:
        return {"data": data, "filename": filename, "mime_type": "image/png", "size": len(data), "url": ""}


class CheckServerTool(WebUIToolMixin, Tool):
    def _invoke(self, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        credentials = dict(self.runtime.credentials or {})
        with reported_as_dify_errors():
            timeout_s = self.provider_settings().timeout_s
        budget_s = min(timeout_s, BUDGET_S)
        # A third of the budget per case (at least the plugin's minimum timeout): one hung case cannot eat the call.
        case_timeout_s = max(MIN_DEADLINE_S, min(timeout_s, budget_s / 3))
        check = Check(InProcessRunner(credentials), case_timeout_s, budget_s=budget_s,
                      quick=_flag(tool_parameters.get("quick")))
        rows = conformance.run_checks(check)
        result = conformance.report(rows, check)
        yield self.create_text_message(conformance.markdown_table(rows) + "\n\n" + result["summary"])
        yield self.create_json_message(result)


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "on")
    return bool(value)
