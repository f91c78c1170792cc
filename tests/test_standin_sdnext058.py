"""The stand-in flavour ``sdnext-058a7f0`` answers like the SD.Next 058a7f0 recordings in
tests/fixtures/sdnext/058a7f0/ (status, keys, key facts); plain ``sdnext`` keeps its 431bcc3 answers."""

from __future__ import annotations

import base64
import io
import json
import threading
import time

import pytest
import requests
from PIL import Image

from tests.fixtures.load import load_fixture
from tests.standin.webui import FLAVORS, STANDIN_FLAVORS, StandInWebUI

API = "/sdapi/v1"
MODELS = ["rand-a", "sub/rand-b"]  # the recorded 058a7f0 checkpoints


def _recorded(name: str) -> tuple[dict, dict]:
    fixture = load_fixture(f"sdnext/058a7f0/{name}")
    return fixture["request"], fixture["response"]


def _replay(base_url: str, request: dict) -> requests.Response:
    kwargs = {"json": request["json"]} if "json" in request else {}
    return requests.request(request["method"], base_url + request["path"], timeout=10, **kwargs)


def _image_size(b64: str) -> tuple[int, int]:
    return Image.open(io.BytesIO(base64.b64decode(b64))).size


@pytest.fixture
def sdnext():
    with StandInWebUI("sdnext-058a7f0", models=MODELS) as webui:
        yield webui


def test_the_name_is_a_standin_flavour_but_not_in_flavors():
    assert "sdnext-058a7f0" in STANDIN_FLAVORS and "sdnext-058a7f0" not in FLAVORS
    webui = StandInWebUI("sdnext-058a7f0")
    assert (webui.flavor, webui.sdnext_version) == ("sdnext", "058a7f0")
    assert StandInWebUI("sdnext").sdnext_version == "431bcc3"
    with pytest.raises(ValueError):
        StandInWebUI("sdnext-0000000")


@pytest.mark.parametrize("name", ["get_version", "get_samplers", "get_upscalers", "get_sd_models",
                                  "get_schedulers", "post_interrupt_idle"])
def test_answers_equal_the_recording(sdnext, name):
    request, response = _recorded(name)
    got = _replay(sdnext.base_url, request)
    assert got.status_code == response["status"]
    if response["status"] == 204:
        assert got.content == b""
    else:
        assert got.json() == response["json"]


def test_plain_sdnext_keeps_its_431bcc3_answers():
    with StandInWebUI("sdnext") as webui:
        assert requests.get(webui.base_url + API + "/version").json() == load_fixture(
            "sdnext/get_version")["response"]["json"]
        assert requests.get(webui.base_url + API + "/schedulers").status_code == 404
        assert requests.post(webui.base_url + API + "/interrogate", json={}).status_code != 404
        assert len(requests.get(webui.base_url + API + "/options").json()) == len(
            load_fixture("sdnext/get_options")["response"]["json"])


def test_options_list_only_the_recorded_keys(sdnext):
    request, response = _recorded("get_options")
    got = _replay(sdnext.base_url, request).json()
    assert set(got) == set(response["json"]) and len(got) == 34
    assert got["sd_model_checkpoint"] == "rand-a [8cdf65fe63]"  # the current model (recorded: after a switch)
    # the loaded rand-a's sha256, as recorded while rand-a was loaded (get_options_after_unknown_model.json)
    assert got["sd_checkpoint_hash"] == _recorded("get_options_after_unknown_model")[1]["json"]["sd_checkpoint_hash"]


def test_status_idle_has_the_recorded_keys(sdnext):
    request, response = _recorded("get_status")
    got = _replay(sdnext.base_url, request)
    assert got.status_code == 200
    assert list(got.json()) == list(response["json"])
    assert {k: got.json()[k] for k in ("status", "task", "step", "steps", "progress")} == {
        k: response["json"][k] for k in ("status", "task", "step", "steps", "progress")}


def test_status_while_running_advances(sdnext):
    sdnext.generation_delay = 1.0
    keys = list(_recorded("get_status")[1]["json"])
    job = threading.Thread(target=requests.post, args=(sdnext.base_url + API + "/txt2img",),
                           kwargs={"json": {"prompt": "x", "steps": 10, "width": 64, "height": 64}, "timeout": 10})
    job.start()
    seen = []
    deadline = time.monotonic() + 5
    while job.is_alive() and time.monotonic() < deadline:
        status = requests.get(sdnext.base_url + API + "/status").json()
        if status["status"] == "running":
            assert list(status) == keys and status["steps"] == 10 and status["task"] == "txt2img"
            seen.append(status["step"])
        time.sleep(0.05)
    job.join()
    assert seen and seen[-1] > seen[0]
    assert requests.get(sdnext.base_url + API + "/status").json()["status"] == "idle"


def test_run_without_sampler_reports_default(sdnext):
    request, response = _recorded("post_txt2img_short")
    assert "sampler_name" not in request["json"]
    got = _replay(sdnext.base_url, request)
    assert got.status_code == 200
    recorded_info = json.loads(response["json"]["info"])
    info = json.loads(got.json()["info"])
    assert recorded_info["sampler_name"] == info["sampler_name"] == "Default"
    assert set(info) == set(recorded_info)
    assert set(got.json()["parameters"]) == set(response["json"]["parameters"])
    assert info["sd_model_hash"] == recorded_info["sd_model_hash"]  # rand-a 8cdf65fe63


def test_options_switch_loads_the_model_in_the_call(sdnext):
    request, response = _recorded("post_options_switch_to_b")
    got = _replay(sdnext.base_url, request)
    assert (got.status_code, got.json()) == (response["status"], response["json"])
    after = _recorded("get_options_after_switch")[1]["json"]
    options = requests.get(sdnext.base_url + API + "/options").json()
    assert options["sd_model_checkpoint"] == after["sd_model_checkpoint"]
    assert options["sd_checkpoint_hash"] == after["sd_checkpoint_hash"]
    info = json.loads(requests.post(sdnext.base_url + API + "/txt2img",
                                    json={"prompt": "x", "width": 64, "height": 64}).json()["info"])
    assert info["sd_model_hash"] == "917136ce6c"  # post_txt2img_right_after_switch.json
    request, response = _recorded("post_reload_checkpoint")
    got = _replay(sdnext.base_url, request)
    assert (got.status_code, got.content) == (204, b"") and response["status"] == 204


def test_unknown_model_unloads_until_a_known_one_is_set(sdnext):
    request, response = _recorded("post_options_unknown_model")
    got = _replay(sdnext.base_url, request)
    assert (got.status_code, got.json()) == (response["status"], response["json"])
    after = _recorded("get_options_after_unknown_model")[1]["json"]
    assert requests.get(sdnext.base_url + API + "/options").json()["sd_model_checkpoint"] == \
        after["sd_model_checkpoint"]
    request, response = _recorded("post_txt2img_after_unknown_model_no_model_loaded")
    for path in ("/txt2img", "/img2img"):
        body = dict(request["json"])
        if path == "/img2img":
            buffer = io.BytesIO()
            Image.new("RGB", (64, 64), "red").save(buffer, "PNG")
            body["init_images"] = [base64.b64encode(buffer.getvalue()).decode()]
        got = requests.post(sdnext.base_url + API + path, json=body)
        assert got.status_code == response["status"] == 200
        assert got.json()["images"] == response["json"]["images"] == []
        assert got.json()["info"] == response["json"]["info"]
    requests.post(sdnext.base_url + API + "/options", json={"sd_model_checkpoint": "rand-a [8cdf65fe63]"})
    assert requests.post(sdnext.base_url + API + "/txt2img", json=request["json"]).json()["images"]


@pytest.mark.parametrize("name", ["post_txt2img_hires_resize_lanczos", "post_txt2img_hires_latent_bicubic",
                                  "post_txt2img_hires_resize_lanczos_resize_mode_1",
                                  "post_txt2img_hires_latent_resize_mode_1"])
def test_hires_size_as_recorded(sdnext, name):
    request, response = _recorded(name)
    got = _replay(sdnext.base_url, request)
    assert got.status_code == response["status"] == 200
    assert _image_size(got.json()["images"][0]) == _image_size(response["json"]["images"][0])
    recorded_info, info = json.loads(response["json"]["info"]), json.loads(got.json()["info"])
    assert (info["width"], info["height"]) == (recorded_info["width"], recorded_info["height"])


def test_hires_resize_mode_1_lanczos_is_bigger():  # guards the parametrised test above against two equal sizes
    _, response = _recorded("post_txt2img_hires_resize_lanczos_resize_mode_1")
    assert _image_size(response["json"]["images"][0]) == (128, 128)


@pytest.mark.parametrize("name", ["post_extra_single_image_resize_lanczos_short",
                                  "post_extra_single_image_lanczos_short"])
def test_extra_single_image_is_the_recorded_500(sdnext, name):
    request, response = _recorded(name)
    buffer = io.BytesIO()
    Image.new("RGB", (96, 64), "blue").save(buffer, "PNG")
    body = {**request["json"], "image": base64.b64encode(buffer.getvalue()).decode()}
    got = requests.post(sdnext.base_url + request["path"], json=body)
    assert got.status_code == response["status"] == 500
    assert got.json() == response["json"]


def test_interrogate_is_gone_and_caption_is_source_shaped(sdnext):
    assert requests.post(sdnext.base_url + API + "/interrogate", json={"image": "x"}).status_code == 404
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(buffer, "PNG")
    image = base64.b64encode(buffer.getvalue()).decode()
    got = requests.post(sdnext.base_url + API + "/caption", json={"backend": "openclip", "image": image})
    assert got.status_code == 200 and got.json()["backend"] == "openclip" and "red" in got.json()["caption"]
    assert got.json()["tags"] is None
    got = requests.post(sdnext.base_url + API + "/caption", json={"backend": "tagger", "image": image})
    assert got.status_code == 200 and got.json()["backend"] == "tagger" and got.json()["tags"]
    assert got.json()["caption"] is None
    got = requests.post(sdnext.base_url + API + "/caption", json={"backend": "openclip"})
    assert got.status_code == 404 and got.json()["detail"] == "Image not found"
    assert requests.post(sdnext.base_url + API + "/caption", json={"backend": "nope", "image": image}
                         ).status_code == 422


@pytest.mark.parametrize("name", ["post_txt2img_short", "post_txt2img_hires_resize_lanczos",
                                  "post_txt2img_hires_latent_bicubic",
                                  "post_txt2img_hires_resize_lanczos_resize_mode_1",
                                  "post_txt2img_hires_latent_resize_mode_1"])
def test_infotext_equals_the_recording(sdnext, name):
    request, response = _recorded(name)
    got = _replay(sdnext.base_url, request)
    assert json.loads(got.json()["info"])["infotexts"] == json.loads(response["json"]["info"])["infotexts"]


def test_infotext_keys_of_img2img_and_lora_as_recorded(sdnext):
    for name, path in (("sdnext/058a7f0/post_img2img_short", "/img2img"),
                       ("sdnext/058a7f0/post_img2img_inpaint_short", "/img2img"),
                       ("sdnext/058a7f0/post_txt2img_lora_prompt_tag_short", "/txt2img")):
        fixture = load_fixture(name)
        body = dict(fixture["request"]["json"])
        if path == "/img2img":
            buffer = io.BytesIO()
            Image.new("RGB", (96, 64), "red").save(buffer, "PNG")
            body["init_images"] = [base64.b64encode(buffer.getvalue()).decode()]
            if "mask" in body:
                Image.new("L", (96, 64), 255).save(buffer := io.BytesIO(), "PNG")
                body["mask"] = base64.b64encode(buffer.getvalue()).decode()
        got = requests.post(sdnext.base_url + API + path, json=body)
        assert got.status_code == 200
        keys = lambda text: [f.split(": ")[0] for f in text.split("\n")[-1].split(", ")]  # noqa: E731
        recorded = json.loads(fixture["response"]["json"]["info"])["infotexts"][0]
        text = json.loads(got.json()["info"])["infotexts"][0]
        assert keys(text) == keys(recorded), name
        assert text.split("\n")[:3] == recorded.split("\n")[:3]
