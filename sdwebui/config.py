"""The provider's credentials, read once into settings that build clients and deadlines."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sdwebui.client import WebUIClient, split_base_url
from sdwebui.deadline import DEFAULT_DEADLINE_S, MAX_DEADLINE_S, Deadline
from sdwebui.errors import InvalidInput, quoted
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
    progress_messages: bool = True  # log messages with the job's progress while txt2img/img2img run

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
            progress_messages=_switch(credentials.get("progress_messages"), default=True),
        )

    def client(self) -> WebUIClient:
        return WebUIClient(self.base_url, username=self.username, password=self.password)

    def deadline(self) -> Deadline:
        return Deadline(self.timeout_s)


def _text(value: object) -> str:
    return str(value).strip() if value is not None else ""


def _switch(value: object, *, default: bool) -> bool:
    """An on/off credential: the select's "on"/"off" (or a boolean, or true/false text); empty means ``default``."""
    if isinstance(value, bool):
        return value
    text = _text(value).lower()
    if text in ("on", "true", "1", "yes"):
        return True
    if text in ("off", "false", "0", "no"):
        return False
    return default


def _number(value: object, *, label: str, unit: str, default: float, low: float, high: float, why: str) -> float:
    """A numeric credential typed as text: empty means the default, anything else must be in range."""
    text = _text(value)
    if not text:
        return default
    try:
        number = float(text)
    except ValueError:
        raise InvalidInput(f"{label} must be a number of {unit}; got {quoted(text)}.") from None
    if not low <= number <= high:
        raise InvalidInput(f"{label} must be between {low:g} and {high:g} {unit} ({why}); got {quoted(text)}.")
    return number


def _timeout(value: object) -> float:
    return _number(value, label="Request timeout", unit="seconds", default=DEFAULT_DEADLINE_S, low=MIN_DEADLINE_S,
                   high=MAX_DEADLINE_S, why="Dify stops every plugin call at 600 s")


def _max_output(value: object) -> float:
    return _number(value, label="Max output size", unit="MB", default=DEFAULT_MAX_OUTPUT_MB, low=1, high=50,
                   why="Dify's tool file limit is 15 to 50 MB")
