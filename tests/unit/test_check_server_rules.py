"""The rules (sdwebui/conformance.py, re-exported by scripts/check_server.py) that make check-server classifies with: what counts as "unsupported by this server", and model names."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("check_server", ROOT / "scripts" / "check_server.py")
check_server = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("check_server", check_server)  # dataclasses look their module up there
_spec.loader.exec_module(check_server)


@pytest.mark.parametrize("message", [
    "The stable-diffusion.cpp server at http://x runs the one model it was started with ('a') and cannot switch to 'b'.",
    "The SD.Next has no separate scheduler setting; leave the scheduler empty.",
    "The stable-diffusion.cpp server does not support mask blur and would ignore them; leave them at their defaults.",
    "The stable-diffusion.cpp server cannot upscale (it has no /extra-single-image); use an AUTOMATIC1111 WebUI.",
    "The stable-diffusion.cpp server at http://x has no POST /sdapi/v1/interrupt (HTTP 404), so it cannot do this.",
    "The WebUI lists no upscalers or latent modes, so hires fix cannot run; turn hires fix off.",
])
def test_the_plugins_unsupported_sentences_are_unsupported(message):
    assert check_server.is_unsupported({"error_type": "InvokeBadRequestError", "message": message})


@pytest.mark.parametrize("error", [
    {"error_type": "InvokeBadRequestError", "message": "The WebUI has no model named 'x'. Closest available: y."},
    {"error_type": "InvokeServerUnavailableError", "message": "The WebUI failed: CUDA out of memory."},
    {"error_type": "InvokeConnectionError", "message": "The proxy cannot do this: bad gateway."},  # wrong type
    {"error_type": "InvokeBadRequestError", "message": ""},
    {"error_type": "InvokeBadRequestError", "message": "The WebUI refused the request: Unsupported image mode."},
    {"error_type": "InvokeConnectionError",
     "message": "http://x has no POST /sdapi/v1/extra-single-image (HTTP 404): the API is off (start the WebUI with --api)."},
])
def test_other_errors_are_failures(error):
    assert not check_server.is_unsupported(error)


def test_a_model_is_recognised_by_any_of_its_names():
    entry = {"title": "sub/Rand-B.safetensors [2a30d74d7c]", "name": "sub_rand-b"}
    for name in ("rand-b", "Rand-B.safetensors", "sub/rand-b.safetensors [2a30d74d7c]", "rand_b"):
        assert check_server.same_model(entry, name), name
    assert not check_server.same_model(entry, "rand-a") and not check_server.same_model(entry, None)


def test_pick_prefers_known_names_and_avoids_placeholders():
    assert check_server.pick(["Default", "UniPC", "Euler"], ("Euler",)) == "Euler"
    assert check_server.pick(["default", "lcm"], ("Euler",), avoid=("default",)) == "lcm"
    assert check_server.pick([], ("Euler",)) is None
