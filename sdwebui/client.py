"""HTTP client for the Stable Diffusion WebUI API (``/sdapi/v1``). No Dify imports.

One :class:`WebUIClient` wraps one ``requests.Session``:

- HTTP Basic credentials are sent pre-emptively (the WebUI drops ``WWW-Authenticate``);
- every call takes a :class:`~sdwebui.deadline.Deadline`: the connect timeout is
  short, the read timeout is whatever is left of the call's total budget;
- bodies are streamed and bounded, so a huge ``/loras`` answer cannot eat memory;
- every failure becomes one :mod:`sdwebui.errors` exception with one clear
  sentence, never a urllib3 traceback, and never the password or URL userinfo.
"""

from __future__ import annotations

import json
import socket
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

from sdwebui import models
from sdwebui.deadline import Deadline
from sdwebui.errors import (
    ApiNotFound,
    AuthenticationFailed,
    InvalidInput,
    MalformedResponse,
    MissingRoute,
    NotFound,
    RequestRejected,
    ServerError,
    Timeout,
    Unreachable,
    WebUIError,
)
from sdwebui.routing import ROUTE_HEADER, route_key

API_PREFIX = "/sdapi/v1"
DEFAULT_CONNECT_TIMEOUT_S = 10.0
# A 4 x 2048² PNG batch is ~25 MB of JSON; /loras has been seen at 31 MB.
MAX_GENERATION_BYTES = 256 * 1024 * 1024
MAX_LIST_BYTES = 64 * 1024 * 1024
# A 404 on these means the API is off or this is not a WebUI, whatever the server family.
_CORE_ROUTES = {f"{m} {API_PREFIX}/{p}" for m, p in (("GET", "sd-models"), ("GET", "options"), ("POST", "txt2img"), ("POST", "img2img"))}
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "0.0.0.0", "::1", "[::1]"}
_CHUNK = 256 * 1024


def split_base_url(raw: str) -> tuple[str, str | None, str | None]:
    """Normalise a user-typed base URL into ``(base_url, user, password)``.

    Tolerates a missing scheme, a trailing slash, a reverse-proxy sub-path
    (``https://host/sd``) and a pasted ``/sdapi/v1`` or ``/docs`` suffix. Userinfo
    (``http://user:pass@host``) is taken out of the URL, so it is never shown.
    """
    text = (raw or "").strip()
    if not text:
        raise InvalidInput("The WebUI base URL is empty; enter it like http://192.168.1.20:7860.")
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("The WebUI base URL must start with http:// or https:// and name a host, like http://192.168.1.20:7860.")
    try:
        port = parts.port
    except ValueError:
        raise InvalidInput("The WebUI base URL has an invalid port; use a number, like http://192.168.1.20:7860.") from None
    path = parts.path.rstrip("/")
    for suffix in (API_PREFIX, "/docs", "/openapi.json"):
        if path.endswith(suffix):
            path = path[: -len(suffix)].rstrip("/")
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    netloc = host + (f":{port}" if port else "")
    base = urlunsplit((parts.scheme, netloc, path, "", ""))
    return base, parts.username or None, parts.password or None


def is_local_host(base_url: str) -> bool:
    return (urlsplit(base_url).hostname or "") in _LOCAL_HOSTS


def docker_hint(base_url: str) -> str:
    if not is_local_host(base_url):
        return ""
    return (
        " Dify's plugin daemon usually runs in a Docker container, where localhost is the container itself:"
        " use http://host.docker.internal:7860 or the machine's LAN IP instead, and start the WebUI with --listen."
    )


class WebUIClient:
    def __init__(
        self,
        base_url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_S,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url, url_user, url_password = split_base_url(base_url)
        self.username = username or url_user
        password = password or url_password
        self.connect_timeout = connect_timeout
        # (name, advice), set once the server family is known (Catalog.server): a 404 then means "this server
        # lacks the route", not "the API is off".
        self.known_server: tuple[str, str] | None = None
        self.session = session or requests.Session()
        self.session.trust_env = False  # the WebUI is on the admin's network, not behind the daemon's proxy
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=32, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update({"Accept": "application/json", "User-Agent": "dify-sd-webui-plugin"})
        if self.username or password:
            # requests sends Basic auth on the first request, no 401 round trip needed.
            self.session.auth = (self.username or "", password or "")

    def __repr__(self) -> str:  # never shows the password
        return f"WebUIClient({self.base_url!r}, user={self.username!r})"

    def route_by_model(self, title: str | None) -> None:
        """Send ``X-SD-Model`` with every later request of this client, so a hash balancer keeps the call on the
        WebUI that owns this checkpoint (see :mod:`sdwebui.routing`). An empty title removes the header."""
        key = route_key(title)
        if key:
            self.session.headers[ROUTE_HEADER] = key
        else:
            self.session.headers.pop(ROUTE_HEADER, None)

    # ------------------------------------------------------------------ transport

    def get(self, path: str, *, deadline: Deadline, max_bytes: int = MAX_LIST_BYTES, prefix: str = API_PREFIX) -> Any:
        return self.request("GET", path, deadline=deadline, max_bytes=max_bytes, prefix=prefix)

    def post(self, path: str, body: Any, *, deadline: Deadline, max_bytes: int = MAX_LIST_BYTES) -> Any:
        return self.request("POST", path, body=body, deadline=deadline, max_bytes=max_bytes)

    def request(
        self, method: str, path: str, *, deadline: Deadline, body: Any = None, max_bytes: int = MAX_LIST_BYTES, prefix: str = API_PREFIX
    ) -> Any:
        """Send one request and return the decoded JSON body, or raise a :class:`WebUIError`.

        ``prefix`` is ``/sdapi/v1`` except for extensions' own routes (``/controlnet/…``, ``/adetailer/v1/…``).
        """
        url = f"{self.base_url}{prefix}/{path.lstrip('/')}"
        what = f"{method} {prefix}/{path.lstrip('/')}"
        if deadline.expired:
            raise self._timeout(deadline)
        read_timeout = max(0.5, deadline.remaining())
        kwargs: dict[str, Any] = {"timeout": (min(self.connect_timeout, read_timeout), read_timeout), "stream": True}
        if body is not None:
            kwargs["data"] = json.dumps(body).encode()
            kwargs["headers"] = {"Content-Type": "application/json"}
        try:
            with self.session.request(method, url, **kwargs) as response:
                raw = self._read_body(response, deadline=deadline, max_bytes=max_bytes, what=what)
                status = response.status_code
                content_type = response.headers.get("Content-Type", "")
        except WebUIError:
            raise
        except requests.exceptions.ConnectTimeout:
            raise Unreachable(
                f"Timed out after {self.connect_timeout:.0f} s connecting to the WebUI at {self.base_url}; "
                f"check the host, the port and any firewall.{docker_hint(self.base_url)}"
            ) from None
        except requests.exceptions.ReadTimeout:
            raise self._timeout(deadline) from None
        except requests.exceptions.SSLError:
            raise Unreachable(
                f"The TLS handshake with {self.base_url} failed; check the certificate or use http:// if the WebUI has no TLS."
            ) from None
        except requests.exceptions.ConnectionError as exc:
            raise self._connection_error(exc) from None
        except requests.exceptions.RequestException:
            raise Unreachable(f"The request to the WebUI at {self.base_url} failed before an answer came back; check the URL.") from None
        # Decode to text and drop the bytes before parsing: bytes, text and parsed strings are never all alive at
        # once, so a 4 x 1024² batch peaks near 2.7x its payload instead of 4x.
        text = raw.decode("utf-8", errors="replace")
        del raw
        return self._decode(status, content_type, text, what=what)

    def _read_body(self, response: requests.Response, *, deadline: Deadline, max_bytes: int, what: str) -> bytearray:
        length = response.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > max_bytes:
            raise MalformedResponse(self._too_big(what, max_bytes))
        body = bytearray()
        try:
            for chunk in response.iter_content(_CHUNK):
                body += chunk
                if len(body) > max_bytes:
                    raise MalformedResponse(self._too_big(what, max_bytes))
                if deadline.expired:
                    raise self._timeout(deadline)
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError):
            raise MalformedResponse(
                f"The WebUI's answer to {what} was cut off mid-transfer; the WebUI or a proxy may have restarted. Try again."
            ) from None
        if length and length.isdigit() and len(body) < int(length):
            raise MalformedResponse(
                f"The WebUI's answer to {what} was cut off mid-transfer ({len(body)} of {length} bytes); try again."
            )
        return body

    @staticmethod
    def _too_big(what: str, max_bytes: int) -> str:
        return f"The WebUI's answer to {what} is larger than {max_bytes // (1024 * 1024)} MiB; ask for fewer or smaller images."

    def _timeout(self, deadline: Deadline) -> Timeout:
        return Timeout(
            f"The WebUI at {self.base_url} did not answer within {deadline.seconds:.0f} s; "
            "raise 'Request timeout' in the provider settings, or lower steps, size or batch size."
        )

    def _connection_error(self, exc: BaseException) -> WebUIError:
        chain = _exception_chain(exc)
        names = {type(e).__name__ for e in chain}
        hint = docker_hint(self.base_url)
        if any(isinstance(e, socket.gaierror) for e in chain) or "NameResolutionError" in names:
            host = urlsplit(self.base_url).hostname
            return Unreachable(f"The host name '{host}' of the WebUI URL could not be resolved (DNS failure); check its spelling.{hint}")
        if any(isinstance(e, ConnectionRefusedError) for e in chain):
            return Unreachable(
                f"Connection refused at {self.base_url}: nothing is listening there. Check that the WebUI is running "
                f"and the port is right.{hint}"
            )
        if names & {"RemoteDisconnected", "ConnectionResetError", "ProtocolError", "BrokenPipeError"}:
            return ServerError(
                f"The WebUI at {self.base_url} closed the connection without answering; it may have crashed or "
                "restarted. Check its console, then try again."
            )
        if names & {"ConnectTimeoutError"}:
            return Unreachable(f"Timed out connecting to the WebUI at {self.base_url}; check the host, the port and any firewall.{hint}")
        return Unreachable(f"Could not connect to the WebUI at {self.base_url}; check the URL and that the WebUI is running.{hint}")

    def _decode(self, status: int, content_type: str, text: str, *, what: str) -> Any:
        looks_html = "html" in content_type.lower() or text[:200].lstrip().startswith("<")
        try:
            body = None if not text or text.isspace() else json.loads(text)
            is_json = True
        except ValueError:
            body, is_json = None, False
        if 200 <= status < 300:
            if is_json:
                return body
            if looks_html:
                raise ApiNotFound(
                    f"{self.base_url} answered {what} with an HTML page, not the WebUI API (a proxy, login or error page?); "
                    "check the URL points at the WebUI started with --api."
                )
            raise MalformedResponse(f"The WebUI's answer to {what} is not valid JSON (truncated?); try again, and check the WebUI console.")
        raise self._status_error(status, body if is_json else None, looks_html, what=what)

    def _status_error(self, status: int, body: Any, looks_html: bool, *, what: str) -> WebUIError:
        text = server_message(body)
        if status == 401:
            if not self.session.auth:
                return AuthenticationFailed(
                    f"The WebUI at {self.base_url} requires a username and password (it runs with --api-auth); "
                    "enter them in the provider settings."
                )
            return AuthenticationFailed(
                f"The WebUI at {self.base_url} rejected the username or password ({text or 'HTTP 401'}); "
                "use exactly the user:password given to --api-auth."
            )
        if status == 403:
            return AuthenticationFailed(f"The WebUI at {self.base_url} refused access (HTTP 403{': ' + text if text else ''}); check the credentials and any proxy rules.")
        if looks_html:
            return ServerError(
                f"The WebUI at {self.base_url} (or a proxy in front of it) answered {what} with HTTP {status} and an HTML page; "
                "check that the WebUI is running and the proxy points at it.",
                status=status,
            )
        if status in (404, 405) and text in ("", "Not Found", "Method Not Allowed"):
            if self.known_server and what not in _CORE_ROUTES:  # the API is on: this server just lacks this route
                name, advice = self.known_server
                return MissingRoute(f"The {name} at {self.base_url} has no {what} (HTTP {status}), so it cannot do this; {advice}.")
            return ApiNotFound(
                f"{self.base_url} has no {what} (HTTP {status}): the API is off (start the WebUI with --api) "
                "or this URL is not a Stable Diffusion WebUI."
            )
        if status == 404:
            return NotFound(f"The WebUI could not find something it needs for {what}: {text}.")
        if 400 <= status < 500:
            return RequestRejected(f"The WebUI rejected {what} (HTTP {status}): {text or 'no reason given'}.", status=status, detail=text)
        if "out of memory" in text.lower():
            return ServerError(
                f"The WebUI ran out of GPU memory ({text}); lower width, height or batch size, or disable hires fix.",
                status=status,
                errors=text,
            )
        return ServerError(f"The WebUI failed on {what} (HTTP {status}): {text or 'no details given'}; check the WebUI console.", status=status, errors=text)

    # ------------------------------------------------------------------ endpoints

    def sd_models(self, deadline: Deadline) -> list[models.SDModel]:
        return models.parse_list(models.SDModel, self.get("sd-models", deadline=deadline), what="GET /sd-models")

    def options(self, deadline: Deadline) -> models.Options:
        return models.parse(models.Options, self.get("options", deadline=deadline), what="GET /options")

    def set_options(self, values: dict[str, Any], deadline: Deadline) -> None:
        self.post("options", values, deadline=deadline)

    def reload_checkpoint(self, deadline: Deadline) -> None:
        """SD.Next: load the checkpoint the options name (its ``POST /options`` only stores it in API mode)."""
        self.post("reload-checkpoint", {}, deadline=deadline)

    def samplers(self, deadline: Deadline) -> list[models.Sampler]:
        return models.parse_list(models.Sampler, self.get("samplers", deadline=deadline), what="GET /samplers")

    def schedulers(self, deadline: Deadline) -> list[models.Scheduler] | None:
        """``None`` when the server has no ``/schedulers`` (SD.Next, A1111 before 1.9)."""
        data = self.get_optional("schedulers", deadline=deadline)
        return None if data is None else models.parse_list(models.Scheduler, data, what="GET /schedulers")

    def upscalers(self, deadline: Deadline) -> list[models.Upscaler]:
        return models.parse_list(models.Upscaler, self.get("upscalers", deadline=deadline), what="GET /upscalers")

    def latent_upscale_modes(self, deadline: Deadline) -> list[models.LatentUpscaleMode]:
        data = self.get_optional("latent-upscale-modes", deadline=deadline)
        return [] if data is None else models.parse_list(models.LatentUpscaleMode, data, what="GET /latent-upscale-modes")

    def loras(self, deadline: Deadline) -> list[models.Lora]:
        data = self.get_optional("loras", deadline=deadline)
        return [] if data is None else models.parse_list(models.Lora, data, what="GET /loras")

    def vaes(self, deadline: Deadline, route: str = "sd-vae") -> list[models.VaeEntry] | None:
        """``GET /sd-vae`` (A1111, SD.Next) or Forge's ``/sd-modules`` (same item shape); ``None`` when absent."""
        data = self.get_optional(route, deadline=deadline)
        return None if data is None else models.parse_list(models.VaeEntry, data, what=f"GET /{route}")

    def prompt_styles(self, deadline: Deadline) -> list[models.PromptStyle] | None:
        data = self.get_optional("prompt-styles", deadline=deadline)
        return None if data is None else models.parse_list(models.PromptStyle, data, what="GET /prompt-styles")

    # Extensions answer on their own routes, outside /sdapi/v1. ``None``: the extension is not installed.

    def controlnet_models(self, deadline: Deadline) -> list[str] | None:
        data = self.get_optional("model_list", deadline=deadline, prefix="/controlnet")
        return None if data is None else models.name_list(data, "model_list", what="GET /controlnet/model_list")

    def controlnet_modules(self, deadline: Deadline) -> list[str] | None:
        data = self.get_optional("module_list", deadline=deadline, prefix="/controlnet")
        return None if data is None else models.name_list(data, "module_list", what="GET /controlnet/module_list")

    def adetailer_models(self, deadline: Deadline) -> list[str] | None:
        data = self.get_optional("ad_model", deadline=deadline, prefix="/adetailer/v1")
        return None if data is None else models.name_list(data, "ad_model", what="GET /adetailer/v1/ad_model")

    def get_optional(self, path: str, *, deadline: Deadline, prefix: str = API_PREFIX) -> Any:
        """GET a route that some servers lack: ``None`` on a plain 404."""
        try:
            return self.get(path, deadline=deadline, prefix=prefix)
        except (ApiNotFound, MissingRoute):
            return None

    def interrupt(self) -> bool:
        """Ask the WebUI to stop the job it is running, whoever started it; best effort, a few seconds at most.

        Only :mod:`sdwebui.jobs` calls this, after checking the running job is ours. Raises
        :class:`ApiNotFound` or :class:`MissingRoute` when the server has no ``/interrupt`` (stable-diffusion.cpp);
        returns whether the WebUI acknowledged it.
        """
        try:
            self.post("interrupt", {}, deadline=Deadline(5.0))
        except (ApiNotFound, MissingRoute):
            raise
        except WebUIError:
            return False
        return True


def server_message(body: Any, limit: int = 300) -> str:
    """The human part of a WebUI error body, whatever the server family.

    A1111 puts exceptions in ``errors``, this Forge in ``message``, HTTPExceptions in
    ``detail`` (a list of field errors on 422), SD.Next and sd.cpp in ``error``.
    """
    text = ""
    if isinstance(body, dict):
        for key in ("errors", "message", "detail", "error"):
            value = body.get(key)
            if value:
                text = _field_errors(value) if isinstance(value, list) else str(value)
                break
    elif isinstance(body, str):
        text = body
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _field_errors(items: list) -> str:
    parts = []
    for item in items:
        if isinstance(item, dict):
            loc = [str(p) for p in item.get("loc", ()) if p != "body"]
            parts.append(f"{'.'.join(loc) or 'body'}: {item.get('msg', 'invalid')}")
        else:
            parts.append(str(item))
    return "; ".join(parts)


def _exception_chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    stack: list[BaseException | None] = [exc]
    while stack:
        current = stack.pop()
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        stack.extend([current.__cause__, current.__context__])
        stack.extend(a for a in getattr(current, "args", ()) if isinstance(a, BaseException))
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            stack.append(reason)
    return seen
