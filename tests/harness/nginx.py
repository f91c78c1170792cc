"""A real nginx reverse proxy on 127.0.0.1 in front of several upstream WebUIs, for scale-out tests.

Usage::

    with Nginx(["127.0.0.1:7001", "http://127.0.0.1:7002"]) as proxy:
        requests.get(proxy.base_url + "/sdapi/v1/options")
        proxy.access_log()   # [{"request": "GET /sdapi/v1/options HTTP/1.1", "upstream_addr": "127.0.0.1:7001", ...}]

Everything nginx writes (config, pid file, error and access logs, request-body and proxy temp files)
lives in a private temporary directory, nginx runs in the foreground as one process (``daemon off``,
``master_process off``) so it never touches the system service, and it stops with the context
(SIGQUIT, then SIGKILL). Upstreams are balanced round-robin by default, with keep-alive connections
(``proxy_http_version 1.1`` and an empty ``Connection`` header), a 64 MB body limit and a 600 s read
timeout, i.e. what a WebUI behind nginx needs.

The nginx binary is the Debian package's (``scripts/ensure_nginx.sh`` installs it; CI runs that).
A missing binary is an error, not a skip.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

_error_log_flag: dict[str, bool] = {}  # binary -> whether it has "-e filename" (nginx >= 1.19.5)

MISSING_MESSAGE = "nginx is not installed: run scripts/ensure_nginx.sh (CI does)"

# One JSON object per request, so tests can see which upstream answered which request.
_LOG_FORMAT = (
    '\'{"time":"$time_iso8601","request":"$request","status":"$status",'
    '"upstream_addr":"$upstream_addr","upstream_status":"$upstream_status",'
    '"request_time":"$request_time","request_length":"$request_length","bytes_sent":"$bytes_sent"}\''
)


class NginxNotInstalled(RuntimeError):
    """No nginx binary on PATH nor at /usr/sbin/nginx."""


class NginxStartError(RuntimeError):
    """nginx exited or did not accept connections in time; the message carries its error log."""


def _popen(args: list[str], **kwargs) -> subprocess.Popen:
    """Popen without the DeprecationWarning about fork() in a threaded process: the test process has
    threads (stand-in servers, plugin readers) and the SDK's gevent patching makes Popen fork; the
    child execs nginx at once, which is the safe case the warning does not apply to."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*use of fork\(\) may lead to deadlocks", category=DeprecationWarning)
        return subprocess.Popen(args, **kwargs)


def find_nginx() -> str:
    """Path of the nginx binary, or raise NginxNotInstalled (never skip: CI installs it)."""
    for candidate in (shutil.which("nginx"), "/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise NginxNotInstalled(MISSING_MESSAGE)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _host_port(upstream: str) -> str:
    """'http://127.0.0.1:7860/' or '127.0.0.1:7860' -> '127.0.0.1:7860'."""
    text = upstream.strip()
    if "://" in text:
        parts = urlsplit(text)
        if not parts.hostname or not parts.port:
            raise ValueError(f"upstream {upstream!r} needs an explicit host and port")
        return f"{parts.hostname}:{parts.port}"
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"upstream {upstream!r} is not host:port")
    return text


class Nginx:
    """nginx on 127.0.0.1:<free port> load-balancing ``upstreams``; a context manager.

    upstreams: "host:port" or "http://host:port" of each backend (order = round-robin order).
    balance: extra upstream directive such as "least_conn;" (default: plain round-robin).
    keepalive: idle keep-alive connections nginx keeps per process to the upstreams.
    start_timeout: seconds to wait for nginx to accept connections.
    """

    def __init__(
        self,
        upstreams: Iterable[str],
        *,
        balance: str = "",
        keepalive: int = 8,
        host: str = "127.0.0.1",
        start_timeout: float = 10.0,
    ) -> None:
        self.upstreams = [_host_port(u) for u in upstreams]
        if not self.upstreams:
            raise ValueError("at least one upstream is needed")
        self.balance = balance.strip()
        self.keepalive = int(keepalive)
        self.host = host
        self.start_timeout = start_timeout
        self.port = 0
        self.base_url = ""
        self.binary = ""
        self.dir: Path | None = None
        self._proc: subprocess.Popen | None = None
        self._saved_access_log: str | None = None
        self._saved_error_log: str | None = None

    # ------------------------------------------------------------------ paths
    def _path(self, name: str) -> Path:
        assert self.dir is not None
        return self.dir / name

    @property
    def conf_path(self) -> Path:
        return self._path("nginx.conf")

    @property
    def access_log_path(self) -> Path:
        return self._path("access.log")

    @property
    def error_log_path(self) -> Path:
        return self._path("error.log")

    # ------------------------------------------------------------------ config
    def render_config(self) -> str:
        d = self.dir
        servers = "\n".join(f"        server {u};" for u in self.upstreams)
        balance = f"        {self.balance}\n" if self.balance else ""
        return f"""# written by tests/harness/nginx.py; everything under {d}
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;

events {{
    worker_connections 256;
}}

http {{
    access_log off;
    log_format scaleout escape=json {_LOG_FORMAT};

    client_body_temp_path {d}/client_body_temp;
    proxy_temp_path {d}/proxy_temp;
    fastcgi_temp_path {d}/fastcgi_temp;
    uwsgi_temp_path {d}/uwsgi_temp;
    scgi_temp_path {d}/scgi_temp;

    upstream webui {{
{balance}{servers}
        keepalive {self.keepalive};
    }}

    server {{
        listen {self.host}:{self.port};
        server_name localhost;
        access_log {d}/access.log scaleout;

        client_max_body_size 64m;

        location / {{
            proxy_pass http://webui;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_connect_timeout 5s;
            proxy_send_timeout 600s;
            proxy_read_timeout 600s;
        }}
    }}
}}
"""

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Nginx:
        if self._proc is not None:
            return self
        self.binary = find_nginx()
        self.dir = Path(tempfile.mkdtemp(prefix="nginx-scaleout-"))
        try:
            for attempt in range(3):  # free_port() can race with another process; retry on a new port
                self.port = free_port(self.host)
                self.base_url = f"http://{self.host}:{self.port}"
                self.conf_path.write_text(self.render_config())
                try:
                    self._spawn_and_wait()
                    return self
                except NginxStartError as exc:
                    if "Address already in use" not in str(exc) or attempt == 2:
                        raise
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn_and_wait(self) -> None:
        args = [self.binary, "-p", f"{self.dir}/", "-c", str(self.conf_path)]
        if self._supports_error_log_flag():  # nginx >= 1.19.5: no startup alert about /var/log/nginx
            args += ["-e", str(self.error_log_path)]
        self._output = open(self._path("stdout-stderr.log"), "wb")
        self._proc = _popen(args, stdin=subprocess.DEVNULL, stdout=self._output,
                            stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._reap()
                raise NginxStartError(f"nginx exited with code {code} at startup:\n{self._logs_tail()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                message = (f"nginx did not accept connections on {self.host}:{self.port} within "
                           f"{self.start_timeout}s:\n{self._logs_tail()}")
                self.stop()
                raise NginxStartError(message)
            time.sleep(0.02)

    def _supports_error_log_flag(self) -> bool:
        if self.binary not in _error_log_flag:
            try:
                proc = _popen([self.binary, "-h"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
                out, _ = proc.communicate(timeout=10)
                _error_log_flag[self.binary] = b"-e filename" in out
            except (OSError, subprocess.TimeoutExpired):
                _error_log_flag[self.binary] = False
        return _error_log_flag[self.binary]

    def stop(self) -> None:
        """SIGQUIT (graceful), then SIGKILL after 5 s; keep the logs readable, remove the directory."""
        if self._proc is not None and self._proc.poll() is None:
            try:
                os.kill(self._proc.pid, signal.SIGQUIT)
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)
            except ProcessLookupError:
                pass
        self._reap()
        if self.dir is not None and self.dir.exists():
            self._saved_access_log = self._read(self.access_log_path)
            self._saved_error_log = self._read(self.error_log_path)
            shutil.rmtree(self.dir, ignore_errors=True)

    def _reap(self) -> None:
        if self._proc is not None:
            self._proc = None
        output = getattr(self, "_output", None)
        if output is not None and not output.closed:
            output.close()

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> Nginx:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ logs
    @staticmethod
    def _read(path: Path) -> str:
        try:
            return path.read_text(errors="replace")
        except OSError:
            return ""

    def error_log(self) -> str:
        if self.dir is not None and self.dir.exists():
            return self._read(self.error_log_path)
        return self._saved_error_log or ""

    def access_log(self) -> list[dict]:
        """One dict per request nginx has logged (it logs when the response is complete)."""
        if self.dir is not None and self.dir.exists():
            text = self._read(self.access_log_path)
        else:
            text = self._saved_access_log or ""
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def _logs_tail(self, max_chars: int = 4000) -> str:
        parts = []
        for name in ("stdout-stderr.log", "error.log"):
            text = self._read(self._path(name)) if self.dir else ""
            if text.strip():
                parts.append(f"--- {name}\n{text[-max_chars:]}")
        return "\n".join(parts) or "(nginx wrote nothing)"
