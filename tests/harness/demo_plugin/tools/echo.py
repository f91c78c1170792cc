from collections.abc import Generator
from typing import Any

from dify_plugin import Tool
from dify_plugin.entities import I18nObject
from dify_plugin.entities.parameters import ParameterOption
from dify_plugin.entities.tool import ToolInvokeMessage

BLOB_SIZE = 20_000


def demo_blob(prompt: str) -> bytes:
    """Deterministic 20 000-byte payload that the self-check can recompute."""
    seed = f"<{prompt}>".encode()
    return (seed * (BLOB_SIZE // len(seed) + 1))[:BLOB_SIZE]


class EchoTool(Tool):
    def _invoke(self, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        prompt = str(tool_parameters.get("prompt", ""))
        if tool_parameters.get("fail"):
            raise ValueError(f"demo failure for {prompt!r}")
        yield self.create_text_message(f"echo: {prompt}")
        yield self.create_json_message({"prompt": prompt, "model": tool_parameters.get("model")})
        yield self.create_variable_message("prompt_length", len(prompt))
        yield self.create_blob_message(
            demo_blob(prompt), meta={"mime_type": "application/octet-stream", "filename": "echo.bin"}
        )

    def _fetch_parameter_options(self, parameter: str) -> list[ParameterOption]:
        if parameter != "model":
            raise ValueError(f"unknown parameter {parameter!r}")
        return [
            ParameterOption(value="alpha", label=I18nObject(en_US="Alpha")),
            ParameterOption(value="beta", label=I18nObject(en_US="Beta")),
        ]
