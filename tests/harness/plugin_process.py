"""Drive a Dify plugin over stdio exactly like the plugin daemon's local runtime does.

Protocol (see /work/shared/dify/CONTRACT.md, "1. Local runtime: install and launch",
"2. The stdio protocol", "3. Output messages" and "8. SDK integration harness"):

* Launch: ``<python> -m main`` with cwd = plugin dir and env = parent env + ``INSTALL_METHOD=local``.
  The plugin is ready at its first ``heartbeat`` event.
* stdin: one JSON object per line, ``{"session_id", "conversation_id": null, "message_id": null,
  "app_id": null, "endpoint_id": null, "context": null, "event": "request", "data": {...}}``; ``data``
  is built with the SDK's own request models (``ToolInvokeRequest`` ...), so payloads are the real ones.
* stdout: one JSON object per line. Messages written by the SDK's writer end with ``"\\n\\n"``
  (a blank line follows each); ``log`` events come from a logging handler and end with a single
  ``"\\n"``. The very first line is a manifest dump without an ``"event"`` key. Events are
  ``session`` (``data.type`` = stream | end | error | invoke), ``heartbeat``, ``log`` and ``error``
  (top level, e.g. unparsable stdin). Every request ends with exactly one ``end``, also after ``error``.
  The daemon kills the plugin on a line longer than 5 MiB.
* Blobs arrive as ``blob_chunk`` stream messages (same ``id``, increasing ``sequence``,
  ``total_length``, base64 ``blob`` of at most 8192 bytes, final chunk ``end: true``) and are merged
  here the way Dify's ``merge_blob_chunks`` does, with stricter checks.
* The SDK exits when ``getppid() == 1`` (CONTRACT §10 item 15), so the harness refuses to run as PID 1.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from dify_plugin.core.entities.plugin.request import (
    DynamicParameterFetchParameterOptionsRequest,
    ToolInvokeRequest,
    ToolValidateCredentialsRequest,
)
from dify_plugin.entities.provider_config import CredentialType

MAX_LINE_BYTES = 5 * 1024 * 1024  # daemon PLUGIN_RUNTIME_MAX_BUFFER_SIZE: a longer line kills the plugin
MAX_CHUNK_BYTES = 8192  # Dify merge_blob_chunks: a bigger chunk is an error
MAX_FILE_BYTES = 50 * 1024 * 1024  # Dify PLUGIN_MAX_FILE_SIZE default
STDERR_KEEP_BYTES = 64 * 1024
DEFAULT_USER_ID = "harness-user"

_EOF = object()  # queued to every waiting session when the plugin's stdout closes


class PluginStartError(RuntimeError):
    """The plugin died or did not heartbeat in time during start()."""


class PluginDiedError(RuntimeError):
    """The plugin process went away while a request was in flight (or before it was sent)."""


class PluginProtocolError(AssertionError):
    """The plugin broke the wire protocol (bad blob chunks, oversized line, ...).

    ``result`` holds everything that was received for the session.
    """

    def __init__(self, message: str, result: Result) -> None:
        super().__init__(message)
        self.result = result


@dataclass
class Blob:
    data: bytes
    mime_type: str | None
    filename: str | None
    meta: dict


@dataclass
class Result:
    messages: list[dict] = field(default_factory=list)
    blobs: list[Blob] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    jsons: list[dict] = field(default_factory=list)
    variables: dict = field(default_factory=dict)
    error: dict | None = None
    ended: bool = False
    raw_lines: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    invokes: list[dict] = field(default_factory=list)  # backwards calls (session type "invoke"); not answered
    protocol_errors: list[str] = field(default_factory=list)
    arrived: list[float] = field(default_factory=list)  # time.monotonic() each raw line was read, by raw_lines index


@dataclass
class _BlobBuffer:
    total_length: int
    next_sequence: int = 0
    data: bytearray = field(default_factory=bytearray)


def invoke_data(provider: str, tool: str, credentials: dict, tool_parameters: dict) -> dict:
    """The ``data`` of an invoke_tool request, as the daemon sends it (for :meth:`PluginProcess.submit`)."""
    return ToolInvokeRequest(
        user_id=DEFAULT_USER_ID, provider=provider, tool=tool, credentials=credentials, tool_parameters=tool_parameters
    ).model_dump(mode="json")


def build_result(
    events: list[tuple[str, dict]],
    *,
    elapsed_s: float = 0.0,
    max_chunk_bytes: int = MAX_CHUNK_BYTES,
    max_file_bytes: int = MAX_FILE_BYTES,
) -> Result:
    """Turn one session's ``(raw_line, event)`` list into a Result.

    Mirrors Dify's ``merge_blob_chunks`` (chunks collected per id, the merged ``blob`` message is
    emitted at the ``end`` chunk with that chunk's ``meta``) and additionally records protocol errors
    for chunk-size, sequence, total-length, oversized-line and unterminated-blob violations.
    """
    result = Result(elapsed_s=elapsed_s)
    buffers: dict[str, _BlobBuffer] = {}

    for raw, event in events:
        result.raw_lines.append(raw)
        if len(raw.encode()) > MAX_LINE_BYTES:
            result.protocol_errors.append(
                f"stdout line of {len(raw.encode())} bytes exceeds the daemon's {MAX_LINE_BYTES}-byte limit "
                "(the daemon would kill the plugin)"
            )
        payload = event.get("data") or {}
        kind = payload.get("type")
        data = payload.get("data")

        if kind == "end":
            result.ended = True
            break
        if kind == "error":
            result.error = data
        elif kind == "invoke":
            result.invokes.append(data)
        elif kind == "stream":
            _add_stream_message(result, buffers, data or {}, max_chunk_bytes, max_file_bytes)
        else:
            result.protocol_errors.append(f"unknown session message type {kind!r}")

    for blob_id in buffers:
        result.protocol_errors.append(f"blob {blob_id} never received its end:true chunk")
    return result


def _add_stream_message(
    result: Result,
    buffers: dict[str, _BlobBuffer],
    data: dict,
    max_chunk_bytes: int,
    max_file_bytes: int,
) -> None:
    msg_type = data.get("type")
    message = data.get("message") or {}

    if msg_type == "blob_chunk":
        blob = _merge_blob_chunk(result, buffers, message, data.get("meta"), max_chunk_bytes, max_file_bytes)
        if blob is not None:
            result.messages.append(
                {
                    "type": "blob",
                    "message": {"id": message.get("id"), "total_length": message.get("total_length")},
                    "meta": data.get("meta"),
                    "blob_obj": blob,
                }
            )
        return

    if msg_type == "blob":  # the SDK always chunks, but accept an unchunked blob anyway
        blob = _make_blob(_b64(result, message.get("blob", "")), data.get("meta"))
        result.blobs.append(blob)
        result.messages.append({**data, "blob_obj": blob})
        return

    result.messages.append(data)
    if msg_type == "text":
        result.texts.append(message.get("text"))
    elif msg_type == "json":
        result.jsons.append(message.get("json_object"))
    elif msg_type == "variable":
        name, value = message.get("variable_name"), message.get("variable_value")
        if message.get("stream") and isinstance(value, str):
            result.variables[name] = result.variables.get(name, "") + value
        else:
            result.variables[name] = value


def _merge_blob_chunk(
    result: Result,
    buffers: dict[str, _BlobBuffer],
    message: dict,
    meta: dict | None,
    max_chunk_bytes: int,
    max_file_bytes: int,
) -> Blob | None:
    blob_id = message.get("id")
    chunk = _b64(result, message.get("blob") or "")
    total_length = message.get("total_length")
    sequence = message.get("sequence")

    buf = buffers.setdefault(blob_id, _BlobBuffer(total_length=total_length))
    if len(chunk) > max_chunk_bytes:
        result.protocol_errors.append(
            f"blob {blob_id} chunk {sequence} is {len(chunk)} bytes (> {max_chunk_bytes})"
        )
    if sequence != buf.next_sequence:
        result.protocol_errors.append(
            f"blob {blob_id} chunk sequence {sequence}, expected {buf.next_sequence}"
        )
    if total_length != buf.total_length:
        result.protocol_errors.append(
            f"blob {blob_id} total_length changed from {buf.total_length} to {total_length}"
        )
    if len(buf.data) + len(chunk) > max_file_bytes:
        result.protocol_errors.append(f"blob {blob_id} exceeds {max_file_bytes} bytes")
    buf.data += chunk
    buf.next_sequence = (sequence if isinstance(sequence, int) else buf.next_sequence) + 1

    if not message.get("end"):
        return None
    del buffers[blob_id]
    if len(buf.data) != buf.total_length:
        result.protocol_errors.append(
            f"blob {blob_id} assembled {len(buf.data)} bytes but total_length is {buf.total_length}"
        )
    blob = _make_blob(bytes(buf.data), meta)
    result.blobs.append(blob)
    return blob


def _b64(result: Result, text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        result.protocol_errors.append(f"invalid base64 in blob: {exc}")
        return b""


def _make_blob(data: bytes, meta: dict | None) -> Blob:
    meta = dict(meta or {})
    return Blob(data=data, mime_type=meta.get("mime_type"), filename=meta.get("filename"), meta=meta)


class _Session:
    def __init__(self) -> None:
        self.events: queue.Queue = queue.Queue()
        self.started = time.monotonic()


class PluginProcess:
    """A plugin subprocess in stdio mode; see the module docstring for the protocol."""

    def __init__(
        self,
        plugin_dir: str,
        *,
        env: Mapping[str, str | None] | None = None,
        python: str = sys.executable,
        start_timeout: float = 60,
    ) -> None:
        self.plugin_dir = os.path.abspath(plugin_dir)
        self.python = python
        self.start_timeout = start_timeout
        self.env = dict(os.environ)
        self.env["INSTALL_METHOD"] = "local"
        for key, value in (env or {}).items():  # a None value removes the variable
            if value is None:
                self.env.pop(key, None)
            else:
                self.env[key] = str(value)

        self.heartbeats: list[float] = []
        self.max_line_bytes = 0
        self.non_json_lines: list[str] = []
        self.manifest: dict | None = None  # first stdout line (no "event")
        self.logs: list[dict] = []  # data of "log" events
        self.errors: list[dict] = []  # data of top-level "error" events (no session)
        self.stray_events: list[dict] = []  # JSON without a known event, or sessions nobody waits for
        self.startup_s: float | None = None  # spawn -> first heartbeat

        self._proc: subprocess.Popen | None = None
        self._sessions: dict[str, _Session] = {}
        self._sessions_lock = threading.Lock()
        self._stdin_lock = threading.Lock()
        self._ready = threading.Event()
        self._stdout_closed = threading.Event()
        self._stderr = bytearray()
        self._stderr_lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> PluginProcess:
        if os.getpid() == 1:
            raise PluginStartError(
                "the harness runs as PID 1: the SDK's parent watchdog (getppid() == 1) would kill the "
                "plugin; run the tests under an init such as tini / `docker run --init`"
            )
        spawned = time.monotonic()
        self._proc = subprocess.Popen(
            [self.python, "-m", "main"],
            cwd=self.plugin_dir,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.env,
        )
        for target in (self._read_stdout, self._read_stderr):
            thread = threading.Thread(target=target, name=f"plugin-{target.__name__}", daemon=True)
            thread.start()
            self._threads.append(thread)

        deadline = spawned + self.start_timeout
        while not self._ready.wait(0.02):
            if self._stdout_closed.is_set() or self._proc.poll() is not None:
                self._settle_after_exit()
                self.close()
                raise PluginStartError(
                    f"plugin exited with code {self._proc.returncode} before its first heartbeat; "
                    f"stderr tail:\n{self.stderr_tail()}"
                )
            if time.monotonic() > deadline:
                self.close()
                raise PluginStartError(
                    f"no heartbeat within {self.start_timeout}s; stderr tail:\n{self.stderr_tail()}"
                )
        self.startup_s = self.heartbeats[0] - spawned
        return self

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def close(self) -> None:
        """Terminate the plugin, kill it if it lingers. (Closing stdin alone makes the SDK spin.)"""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        try:
            proc.stdin.close()
        except OSError:
            pass
        self._join_readers()

    def __enter__(self) -> PluginProcess:
        return self.start() if self._proc is None else self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def stderr_tail(self, max_bytes: int = 4096) -> str:
        with self._stderr_lock:
            return bytes(self._stderr[-max_bytes:]).decode("utf-8", "replace")

    # ------------------------------------------------------------------ requests
    def validate_credentials(self, provider: str, credentials: dict, timeout: float = 60) -> Result:
        data = ToolValidateCredentialsRequest(
            user_id=DEFAULT_USER_ID, provider=provider, credentials=credentials
        ).model_dump(mode="json")
        return self.wait(self.submit(data), timeout)

    def invoke_tool(
        self,
        provider: str,
        tool: str,
        credentials: dict,
        tool_parameters: dict,
        timeout: float = 120,
    ) -> Result:
        return self.wait(self.submit(invoke_data(provider, tool, credentials, tool_parameters)), timeout)

    def fetch_parameter_options(
        self,
        provider: str,
        tool: str,
        parameter: str,
        credentials: dict,
        timeout: float = 60,
    ) -> Result:
        """Options are in ``result.messages[0]["options"]``."""
        data = DynamicParameterFetchParameterOptionsRequest(
            user_id=DEFAULT_USER_ID,
            provider=provider,
            provider_action=tool,
            parameter=parameter,
            credentials=credentials,
            credential_type=CredentialType.API_KEY,  # what the daemon sends for api-key providers
        ).model_dump(mode="json")
        return self.wait(self.submit(data), timeout)

    def submit(self, data: dict, *, session_id: str | None = None) -> str:
        """Send one request envelope around ``data``; returns its session id (answer via wait())."""
        session_id = session_id or uuid.uuid4().hex
        with self._sessions_lock:
            if session_id in self._sessions:
                raise ValueError(f"session {session_id} is already in flight")
            self._sessions[session_id] = _Session()
        envelope = {
            "session_id": session_id,
            "conversation_id": None,
            "message_id": None,
            "app_id": None,
            "endpoint_id": None,
            "context": None,
            "event": "request",
            "data": data,
        }
        try:
            self.send_raw_line(json.dumps(envelope, separators=(",", ":")))
        except PluginDiedError:
            with self._sessions_lock:
                self._sessions.pop(session_id, None)
            raise
        return session_id

    def send_raw_line(self, line: str) -> None:
        """Write one line to the plugin's stdin as-is (a newline is appended)."""
        if self._proc is None:
            raise PluginDiedError("plugin not started")
        with self._stdin_lock:
            try:
                self._proc.stdin.write(line.encode() + b"\n")
                self._proc.stdin.flush()
            except (BrokenPipeError, OSError, ValueError) as exc:
                raise PluginDiedError(
                    f"cannot write to the plugin ({exc}); stderr tail:\n{self.stderr_tail()}"
                ) from exc

    def wait(self, session_id: str, timeout: float) -> Result:
        """Collect the session until its ``end`` event; raise on timeout, death or protocol errors."""
        with self._sessions_lock:
            session = self._sessions.get(session_id)
        if session is None:
            raise KeyError(f"unknown session {session_id}")

        deadline = time.monotonic() + timeout
        events: list[tuple[str, dict]] = []
        arrived: list[float] = []  # when each line was read, for tests of what streams while a job runs
        try:
            while True:
                remaining = deadline - time.monotonic()
                try:
                    item = session.events.get(timeout=max(remaining, 0))
                except queue.Empty:
                    raise TimeoutError(
                        f"session {session_id}: no end event within {timeout}s "
                        f"({len(events)} events received); stderr tail:\n{self.stderr_tail()}"
                    ) from None
                if item is _EOF:
                    self._settle_after_exit()
                    raise PluginDiedError(
                        f"plugin stdout closed before session {session_id} ended "
                        f"(exit code {self._proc.poll()}); stderr tail:\n{self.stderr_tail()}"
                    )
                events.append(item[:2])
                arrived.append(item[2])
                if (item[1].get("data") or {}).get("type") == "end":
                    break
        finally:
            with self._sessions_lock:
                self._sessions.pop(session_id, None)

        result = build_result(events, elapsed_s=time.monotonic() - session.started)
        result.arrived = arrived[:len(result.raw_lines)]
        if result.protocol_errors:
            raise PluginProtocolError(
                f"session {session_id}: " + "; ".join(result.protocol_errors), result
            )
        return result

    # ------------------------------------------------------------------ reader threads
    def _read_stdout(self) -> None:
        stdout = self._proc.stdout
        try:
            for raw in iter(stdout.readline, b""):
                line = raw[:-1] if raw.endswith(b"\n") else raw
                self.max_line_bytes = max(self.max_line_bytes, len(line))
                if not line.strip():
                    continue  # the blank half of the SDK's "\n\n" terminator
                self._handle_line(line.decode("utf-8", "replace"))
        finally:
            self._stdout_closed.set()
            with self._sessions_lock:
                waiting = list(self._sessions.values())
            for session in waiting:
                session.events.put(_EOF)

    def _handle_line(self, text: str) -> None:
        try:
            obj = json.loads(text)
        except ValueError:
            self.non_json_lines.append(text)
            return
        if not isinstance(obj, dict):
            self.non_json_lines.append(text)
            return

        event = obj.get("event")
        if event is None:
            if self.manifest is None and not self.heartbeats:
                self.manifest = obj
            else:
                self.stray_events.append(obj)
        elif event == "heartbeat":
            self.heartbeats.append(time.monotonic())
            self._ready.set()
        elif event == "log":
            self.logs.append(obj.get("data") or {})
        elif event == "error":
            self.errors.append(obj.get("data") or {})
        elif event == "session":
            with self._sessions_lock:
                session = self._sessions.get(obj.get("session_id"))
            if session is None:
                self.stray_events.append(obj)
            else:
                session.events.put((text, obj, time.monotonic()))
        else:
            self.stray_events.append(obj)  # the daemon ignores unknown events

    def _read_stderr(self) -> None:
        stderr = self._proc.stderr
        while chunk := stderr.read1(65536):
            with self._stderr_lock:
                self._stderr += chunk
                if len(self._stderr) > STDERR_KEEP_BYTES:
                    del self._stderr[:-STDERR_KEEP_BYTES]

    def _settle_after_exit(self) -> None:
        """After stdout EOF: let the process exit and the stderr reader catch up (for error messages)."""
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return
        for thread in self._threads:
            thread.join(timeout=2)

    def _join_readers(self) -> None:
        for thread in self._threads:
            thread.join(timeout=5)
        for pipe in (self._proc.stdout, self._proc.stderr):
            try:
                pipe.close()
            except OSError:
                pass
