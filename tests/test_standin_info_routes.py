"""The stand-in's /png-info and /interrogate keep the shapes of the real servers."""

from __future__ import annotations

import base64
import json

import pytest
import requests

from sdwebui.infotext import parse_infotext
from tests.fixtures.load import load_fixture
from tests.standin.info_routes import SDNEXT_INTERROGATORS
from tests.standin.webui import StandInWebUI


def post(webui: StandInWebUI, route: str, body: dict) -> requests.Response:
    return requests.post(f"{webui.base_url}/sdapi/v1/{route}", json=body, timeout=10)


def test_png_info_answers_like_the_recorded_forge():
    recorded = load_fixture("forge/post_png_info")
    with StandInWebUI("forge") as webui:
        answer = post(webui, "png-info", recorded["request"]["json"]).json()
    real = recorded["response"]["json"]
    assert answer["info"] == real["info"] and set(answer) == set(real)
    assert {k: answer["parameters"][k] for k in ("Steps", "Seed", "Size-1", "Size-2", "Prompt")} == {
        k: real["parameters"][k] for k in ("Steps", "Seed", "Size-1", "Size-2", "Prompt")}


def test_sdnext_jpegs_carry_their_infotext_in_exif_like_the_real_ones():
    with StandInWebUI("sdnext") as webui:
        made = post(webui, "txt2img", {"prompt": "a red apple", "width": 64, "height": 64, "steps": 2}).json()
        image = base64.b64decode(made["images"][0])
        read_back = post(webui, "png-info", {"image": made["images"][0]}).json()["info"]
    assert image.startswith(b"\xff\xd8")
    assert read_back == json.loads(made["info"])["infotexts"][0]


def test_sdcpp_infotext_has_the_real_layout():
    real = json.loads(load_fixture("sdcpp/post_txt2img_sampler_scheduler")["response"]["json"]["info"])["infotexts"][0]
    with StandInWebUI("sdcpp") as webui:
        body = {"prompt": "a red apple", "width": 64, "height": 64, "steps": 2, "seed": 1234, "cfg_scale": 7.0,
                "sampler_name": "euler_a", "scheduler": "karras"}
        made = json.loads(post(webui, "txt2img", body).json()["info"])["infotexts"][0]
    ours, theirs = parse_infotext(made), parse_infotext(real)
    assert made.split(", SDCPP: ")[0].replace("Model: rand-a.safetensors", "") == real.split(", SDCPP: ")[0].replace(
        "Model: rand-a.safetensors", "")
    assert (ours.sampler, ours.scheduler, ours.cfg_scale, ours.seed) == (theirs.sampler, theirs.scheduler, theirs.cfg_scale, theirs.seed)


def test_sdcpp_has_neither_route():
    with StandInWebUI("sdcpp") as webui:
        for route in ("png-info", "interrogate"):
            answer = post(webui, route, {"image": "x"})
            assert (answer.status_code, answer.content) == (404, b"")


@pytest.mark.parametrize("flavor", ["forge", "a1111"])
def test_interrogate_unknown_model_is_404_model_not_found(flavor):
    image = load_fixture("forge/post_png_info")["request"]["json"]["image"]
    with StandInWebUI(flavor) as webui:
        answer = post(webui, "interrogate", {"image": image, "model": "wd14"})
        good = post(webui, "interrogate", {"image": image, "model": "clip"})
    assert answer.status_code == 404 and "Model not found" in answer.text
    assert set(good.json()) == {"caption"}


def test_sdnext_lists_its_interrogators():
    with StandInWebUI("sdnext") as webui:
        assert requests.get(f"{webui.base_url}/sdapi/v1/interrogate", timeout=10).json() == SDNEXT_INTERROGATORS
