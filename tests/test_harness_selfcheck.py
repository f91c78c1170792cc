"""Self-check of the stdio plugin harness against the throwaway plugin in tests/harness/demo_plugin."""

from __future__ import annotations

import base64
import shutil
import time
from pathlib import Path

import pytest

from tests.harness.plugin_process import (
    MAX_LINE_BYTES,
    PluginProcess,
    PluginDiedError,
    PluginProtocolError,
    PluginStartError,
    build_result,
)

DEMO_DIR = Path(__file__).parent / "harness" / "demo_plugin"
CREDS = {"api_key": "good"}
HEARTBEAT_INTERVAL = 0.2


def demo_blob(prompt: str) -> bytes:
    """Same payload as demo_plugin/tools/echo.py (not imported: keep the plugin out of this process)."""
    seed = f"<{prompt}>".encode()
    return (seed * (20_000 // len(seed) + 1))[:20_000]


@pytest.fixture(scope="module")
def plugin():
    with PluginProcess(str(DEMO_DIR), env={"HEARTBEAT_INTERVAL": str(HEARTBEAT_INTERVAL)}) as proc:
        yield proc
    assert not proc.alive()


def test_startup(plugin):
    assert plugin.alive()
    assert plugin.startup_s is not None and plugin.startup_s < 30
    assert plugin.manifest is not None and plugin.manifest["name"] == "harness_demo"
    assert any("Installed tool: demo" in log.get("message", "") for log in plugin.logs)


def test_validate_credentials(plugin):
    good = plugin.validate_credentials("demo", CREDS)
    assert good.ended and good.error is None
    assert good.messages == [{"result": True}]

    bad = plugin.validate_credentials("demo", {"api_key": "bad"})
    assert bad.ended and bad.messages == []
    assert bad.error["error_type"] == "ToolProviderCredentialValidationError"
    assert bad.error["message"] == "API key is invalid"
    assert "Traceback" in bad.error["args"]["traceback"]


def test_invoke_tool(plugin):
    result = plugin.invoke_tool("demo", "echo", CREDS, {"prompt": "hello", "model": "beta"})
    assert result.ended and result.error is None
    assert [m["type"] for m in result.messages] == ["text", "json", "variable", "blob"]
    assert result.texts == ["echo: hello"]
    assert result.jsons == [{"prompt": "hello", "model": "beta"}]
    assert result.variables == {"prompt_length": 5}

    (blob,) = result.blobs
    assert len(blob.data) == 20_000
    assert blob.data == demo_blob("hello")
    assert blob.mime_type == "application/octet-stream"
    assert blob.filename == "echo.bin"
    assert blob.meta == {"mime_type": "application/octet-stream", "filename": "echo.bin"}
    assert result.messages[-1]["blob_obj"] is blob

    # 20 000 bytes -> chunks of 8192 + 8192 + 3616 + an empty end chunk, then the session end
    chunk_lines = [line for line in result.raw_lines if '"blob_chunk"' in line]
    assert len(chunk_lines) == 4
    assert result.raw_lines[-1].endswith('"data":{"type":"end","data":{}}}')
    assert 8192 * 4 // 3 < plugin.max_line_bytes < MAX_LINE_BYTES
    assert plugin.non_json_lines == []


def test_invoke_tool_error(plugin):
    result = plugin.invoke_tool("demo", "echo", CREDS, {"prompt": "x", "fail": True})
    assert result.ended
    assert result.messages == [] and result.blobs == []
    assert result.error["error_type"] == "ValueError"
    assert result.error["message"] == "demo failure for 'x'"


def test_unknown_tool_is_a_session_error(plugin):
    result = plugin.invoke_tool("demo", "nope", CREDS, {"prompt": "x"})
    assert result.error["error_type"] == "ValueError"
    assert "nope" in result.error["message"]


def test_fetch_parameter_options(plugin):
    result = plugin.fetch_parameter_options("demo", "echo", "model", CREDS)
    assert result.ended and result.error is None
    options = result.messages[0]["options"]
    assert [o["value"] for o in options] == ["alpha", "beta"]
    assert [o["label"]["en_US"] for o in options] == ["Alpha", "Beta"]


def test_concurrent_invocations(plugin):
    prompts = [f"prompt-{i}" for i in range(8)]
    session_ids = [
        plugin.submit(
            {
                "user_id": "u1",
                "type": "tool",
                "action": "invoke_tool",
                "provider": "demo",
                "tool": "echo",
                "credentials": CREDS,
                "credential_type": "api-key",
                "tool_parameters": {"prompt": p},
            }
        )
        for p in prompts
    ]
    assert len(set(session_ids)) == 8
    for prompt, session_id in zip(prompts, session_ids, strict=True):
        result = plugin.wait(session_id, timeout=30)
        assert result.error is None
        assert result.texts == [f"echo: {prompt}"]
        assert [b.data for b in result.blobs] == [demo_blob(prompt)]


def test_garbage_on_stdin_is_a_top_level_error(plugin):
    before = len(plugin.errors)
    plugin.send_raw_line("this is not json")
    deadline = time.monotonic() + 5
    while len(plugin.errors) == before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "Invalid JSON" in plugin.errors[-1]["error"]
    assert plugin.validate_credentials("demo", CREDS).messages == [{"result": True}]


def test_heartbeats(plugin):
    seen = len(plugin.heartbeats)
    time.sleep(3 * HEARTBEAT_INTERVAL)
    assert len(plugin.heartbeats) >= seen + 2
    gaps = [b - a for a, b in zip(plugin.heartbeats, plugin.heartbeats[1:], strict=False)]
    assert all(gap > HEARTBEAT_INTERVAL / 4 for gap in gaps[-2:])


def test_start_failure_reports_stderr(tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(DEMO_DIR, broken, ignore=shutil.ignore_patterns("__pycache__"))
    tool_yaml = broken / "tools" / "echo.yaml"
    tool_yaml.write_text(tool_yaml.read_text().replace("type: boolean", "type: dropdown"))
    with pytest.raises(PluginStartError, match="dropdown"):
        PluginProcess(str(broken)).start()


# ---------------------------------------------------------------- blob merging without a process
def _chunk(sequence: int, data: bytes, *, end: bool = False, total: int = 10, blob_id: str = "b1"):
    event = {
        "event": "session",
        "session_id": "s",
        "data": {
            "type": "stream",
            "data": {
                "type": "blob_chunk",
                "message": {
                    "id": blob_id,
                    "sequence": sequence,
                    "total_length": total,
                    "blob": base64.b64encode(data).decode(),
                    "end": end,
                },
                "meta": {"mime_type": "image/png"},
            },
        },
    }
    return ("", event)


END = ("", {"event": "session", "session_id": "s", "data": {"type": "end", "data": {}}})


def test_merge_ok():
    result = build_result([_chunk(0, b"12345"), _chunk(1, b"67890"), _chunk(2, b"", end=True), END])
    assert result.protocol_errors == []
    assert result.blobs[0].data == b"1234567890"
    assert result.blobs[0].mime_type == "image/png"


@pytest.mark.parametrize(
    ("events", "problem"),
    [
        ([_chunk(0, b"x" * 8193, total=8193), _chunk(1, b"", end=True, total=8193), END], "8193 bytes"),
        ([_chunk(0, b"12345"), _chunk(2, b"67890"), _chunk(3, b"", end=True), END], "expected 1"),
        ([_chunk(0, b"12345"), _chunk(1, b"", end=True), END], "total_length is 10"),
        ([_chunk(0, b"12345"), END], "never received its end"),
    ],
)
def test_merge_violations(events, problem):
    result = build_result(events)
    assert any(problem in error for error in result.protocol_errors), result.protocol_errors


FAKE_MAIN = """
import json, sys, base64
def out(obj):
    sys.stdout.write(json.dumps(obj) + "\\n\\n"); sys.stdout.flush()
print("hello from a stray print()")
out({"event": "heartbeat", "session_id": None, "data": {}})
for line in sys.stdin:
    sid = json.loads(line)["session_id"]
    def chunk(seq, data, end=False):
        msg = {"id": "b", "sequence": seq, "total_length": 6, "blob": base64.b64encode(data).decode(), "end": end}
        out({"event": "session", "session_id": sid, "data": {"type": "stream",
             "data": {"type": "blob_chunk", "message": msg, "meta": {}}}})
    out({"event": "session", "session_id": sid, "data": {"type": "stream", "data": {"result": True}}})
    chunk(0, b"abc"); chunk(2, b"def"); chunk(3, b"", end=True)
    out({"event": "session", "session_id": sid, "data": {"type": "end", "data": {}}})
"""


def test_protocol_violations_raise_from_wait(tmp_path):
    (tmp_path / "main.py").write_text(FAKE_MAIN)
    with PluginProcess(str(tmp_path)) as fake:
        with pytest.raises(PluginProtocolError, match="expected 1") as excinfo:
            fake.validate_credentials("demo", CREDS, timeout=10)
        assert fake.non_json_lines == ["hello from a stray print()"]
    partial = excinfo.value.result
    assert partial.ended and partial.messages[0] == {"result": True}
    assert partial.blobs[0].data == b"abcdef"


DYING_MAIN = """
import sys
print('{"event": "heartbeat", "session_id": null, "data": {}}', flush=True)
sys.stdin.readline()
sys.exit("boom on request")
"""


def test_plugin_death_fails_the_wait(tmp_path):
    (tmp_path / "main.py").write_text(DYING_MAIN)
    with PluginProcess(str(tmp_path)) as fake:
        with pytest.raises(PluginDiedError, match="boom on request"):
            fake.invoke_tool("demo", "echo", CREDS, {}, timeout=10)
        assert not fake.alive()
