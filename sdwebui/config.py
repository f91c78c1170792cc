"""The provider's credentials, read once into settings that build clients and deadlines."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sdwebui.client import WebUIClient, split_base_url
from sdwebui.deadline import DEFAULT_DEADLINE_S, MAX_DEADLINE_S, Deadline
from sdwebui.errors import InvalidInput
from sdwebui.output import DEFAULT_MAX_OUTPUT_MB

MIN_DEADLINE_S = 10.0


@dataclass(frozen=True)
class ProviderSettings:
    base_url: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    default_model: str = ""
    timeout_s: float = DEFAULT_DEADLINE_S
    max_output_mb: float = DEFAULT_MAX_OUTPUT_MB

    @classmethod
    def from_credentials(cls, credentials: Mapping[str, Any]) -> ProviderSettings:
        base_url, url_user, url_password = split_base_url(str(credentials.get("base_url") or ""))
        return cls(
            base_url=base_url,
            username=_text(credentials.get("username")) or url_user,
            password=_text(credentials.get("password")) or url_password,
            default_model=_text(credentials.get("default_model")),
            timeout_s=_timeout(credentials.get("timeout")),
            max_output_mb=_max_output(credentials.get("max_output_mb")),
        )

    def client(self) -> WebUIClient:
        return WebUIClient(self.base_url, username=self.username, password=self.password)

    def deadline(self) -> Deadline:
        return Deadline(self.timeout_s)


def _text(value: object) -> str:
    return str(value).strip() if value is not None else ""


def _timeout(value: object) -> float:
    text = _text(value)
    if not text:
        return DEFAULT_DEADLINE_S
    try:
        seconds = float(text)
    except ValueError:
        raise InvalidInput(f"Request timeout must be a number of seconds; got '{text[:40]}'.") from None
    if not MIN_DEADLINE_S <= seconds <= MAX_DEADLINE_S:
        raise InvalidInput(
            f"Request timeout must be between {MIN_DEADLINE_S:.0f} and {MAX_DEADLINE_S:.0f} seconds "
            f"(Dify stops every plugin call at 600 s); got {text}."
        )
    return seconds


def _max_output(value: object) -> float:
    text = _text(value)
    if not text:
        return DEFAULT_MAX_OUTPUT_MB
    try:
        megabytes = float(text)
    except ValueError:
        raise InvalidInput(f"Max output size must be a number of MB; got '{text[:40]}'.") from None
    if not 1 <= megabytes <= 50:
        raise InvalidInput(f"Max output size must be between 1 and 50 MB (Dify's tool file limit is 15 to 50 MB); got {text}.")
    return megabytes
