"""The server table: detection from recorded answers, and the README's table rendered from it."""

from __future__ import annotations

from pathlib import Path

import pytest
import responses

from sdwebui.client import WebUIClient
from sdwebui.deadline import Deadline
from sdwebui.servers import BY_KEY, PROFILES, detect_server, markdown_table
from tests.conftest import API, BASE
from tests.fixtures.load import load_fixture

README = Path(__file__).resolve().parents[2] / "README.md"

# The recorded GET answers each server gives to the routes detection may read; absent: 404 {"detail": "Not Found"}.
RECORDED = {
    "a1111": {"options": "a1111/get_options", "version": "a1111/get_version", "sd-modules": "a1111/get_sd_modules",
              "schedulers": "a1111/get_schedulers"},
    "forge": {"options": "forge/get_options", "sd-modules": "forge/get_sd_modules", "schedulers": "forge/get_schedulers"},
    "forge-classic": {"options": "forge-classic/get_options", "version": "forge-classic/get_version",
                      "sd-modules": "forge-classic/get_sd_modules", "schedulers": "forge-classic/get_schedulers"},
    "sdnext-2025": {"options": "sdnext/get_options", "version": "sdnext/get_version"},
    "sdnext": {"options": "sdnext/058a7f0/get_options", "version": "sdnext/058a7f0/get_version",
               "schedulers": "sdnext/058a7f0/get_schedulers"},
    "sdcpp": {"options": "sdcpp/get_options", "version": "sdcpp/get_version_404"},
}


def _mock(routes: dict[str, str]) -> None:
    for path in ("options", "version", "sd-modules", "schedulers"):
        if path in routes:
            response = load_fixture(routes[path])["response"]
            body = response.get("json")
            responses.add(responses.GET, f"{API}/{path}", json=body, status=response["status"])
        else:
            responses.add(responses.GET, f"{API}/{path}", json={"detail": "Not Found"}, status=404)


@pytest.mark.parametrize("key", list(RECORDED))
@responses.activate
def test_each_server_is_detected_from_its_recorded_answers(key):
    _mock(RECORDED[key])
    assert detect_server(WebUIClient(BASE), Deadline(5)).key == key
    assert not [c for c in responses.calls if "cmd-flags" in c.request.url]  # it returns the server's secrets


@responses.activate
def test_a_server_without_schedulers_route_has_no_scheduler_setting():
    _mock({**RECORDED["a1111"], "schedulers": "forge-classic/get_schedulers"})  # A1111 before 1.9
    server = detect_server(WebUIClient(BASE), Deadline(5))
    assert server.key == "a1111" and server.schedulers is None


@responses.activate
def test_current_sdnext_is_not_detected_from_an_options_key_it_no_longer_returns():
    """058a7f0's GET /options lists only changed settings: no schedulers_sigma, yet it has sigma schedulers."""
    _mock(RECORDED["sdnext"])
    assert "schedulers_sigma" not in load_fixture("sdnext/058a7f0/get_options")["response"]["json"]
    server = detect_server(WebUIClient(BASE), Deadline(5))
    assert server.scheduler_kind == "sigma" and "karras" in server.sigmas


def test_every_profile_key_is_unique_and_only_the_fallback_has_no_clues():
    assert len(BY_KEY) == len(PROFILES)
    assert [p.key for p in PROFILES if not p.clues] == [PROFILES[-1].key]


def test_the_readme_server_table_is_the_one_rendered_from_the_profiles():
    table = markdown_table()
    assert table in README.read_text(), "README's server table is stale; paste:\n" + table
