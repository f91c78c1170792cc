"""The stand-in WebUI answers like the real recorded Forge exchanges (tests/fixtures/forge/), and its
other flavours differ as API.md §11 says. Fast: the whole file runs in about a second."""

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
from tests.standin.webui import StandInWebUI

API = "/sdapi/v1"


def _recorded(name: str) -> tuple[dict, dict]:
    """(request, response) of a recorded exchange."""
    fixture = load_fixture(f"forge/{name}.json")
    return fixture["request"], fixture["response"]


def _replay(base_url: str, request: dict, **kwargs) -> requests.Response:
    """Send a recorded request again to the stand-in."""
    if "raw_body" in request:
        kwargs["data"] = request["raw_body"].encode()
        kwargs["headers"] = {"Content-Type": "application/json"}
    elif "json" in request:
        kwargs["json"] = request["json"]
    return requests.request(request["method"], base_url + request["path"], timeout=10, **kwargs)


def _info(response: requests.Response) -> dict:
    return json.loads(response.json()["info"])


@pytest.fixture
def forge():
    with StandInWebUI("forge") as webui:
        yield webui


# ---- shapes recorded from Forge -------------------------------------------------------------------------------

def test_sd_models_equal_the_recording(forge):
    request, response = _recorded("get_sd_models")
    got = _replay(forge.base_url, request)
    assert got.status_code == 200
    assert got.json() == response["json"]  # rand-a hashed, rand-b not yet


def test_txt2img_answers_like_the_recording(forge):
    request, response = _recorded("post_txt2img_short")
    got = _replay(forge.base_url, request)
    assert got.status_code == 200
    body = got.json()
    assert list(body) == list(response["json"])
    assert list(body["parameters"]) == list(response["json"]["parameters"])
    assert body["parameters"] == response["json"]["parameters"]
    info, recorded_info = _info(got), json.loads(response["json"]["info"])
    assert list(info) == list(recorded_info)
    for key in set(recorded_info) - {"subseed", "all_subseeds", "job_timestamp"}:
        assert info[key] == recorded_info[key], key
    image = Image.open(io.BytesIO(base64.b64decode(body["images"][0])))
    assert (image.format, image.size) == ("PNG", (64, 64))
    assert image.info["parameters"] == recorded_info["infotexts"][0]
    assert forge.last_images == [base64.b64decode(body["images"][0])]


def test_same_seed_same_image_other_seed_other_image(forge):
    request, _ = _recorded("post_txt2img_short")
    first = _replay(forge.base_url, request).json()["images"]
    again = _replay(forge.base_url, request).json()["images"]
    other = _replay(forge.base_url, {**request, "json": {**request["json"], "seed": 1235}}).json()["images"]
    assert first == again != other


@pytest.mark.parametrize("name", ["bad_txt2img_unknown_sampler_short", "bad_txt2img_unknown_scheduler_short",
                                  "bad_txt2img_override_unknown_checkpoint_short", "post_txt2img_with_lora_short"])
def test_silent_fallbacks_and_lora_match_the_recording(forge, name):
    request, response = _recorded(name)
    info, recorded_info = _info(_replay(forge.base_url, request)), json.loads(response["json"]["info"])
    for key in ("sampler_name", "extra_generation_params", "infotexts", "sd_model_name", "sd_model_hash"):
        assert info[key] == recorded_info[key], key


def test_checkpoint_forms_and_lazy_loading(forge):
    url = forge.base_url + API
    assert requests.get(url + "/options").json()["sd_model_checkpoint"] == \
        _recorded("get_options")[1]["json"]["sd_model_checkpoint"]
    request, response = _recorded("post_options_switch_to_b")
    switched = _replay(forge.base_url, request)
    assert (switched.status_code, switched.json()) == (200, response["json"])
    assert requests.get(url + "/options").json()["sd_model_checkpoint"] == \
        _recorded("get_options_after_switch_to_b")[1]["json"]["sd_model_checkpoint"]
    assert forge.model_loads == 0  # Forge loads at the next generation
    generated = requests.post(url + "/txt2img", json={"prompt": "x", "width": 64, "height": 64, "steps": 2})
    assert _info(generated)["sd_model_name"] == "rand-b" and forge.model_loads == 1
    assert requests.get(url + "/sd-models").json() == _recorded("get_sd_models_final")[1]["json"]

    requests.post(url + "/options", json={"sd_model_checkpoint": "rand-a"})
    request, response = _recorded("post_txt2img_override_checkpoint_b_short")
    assert _info(_replay(forge.base_url, request))["sd_model_name"] == "rand-b"
    assert forge.active_checkpoint == \
        _recorded("get_options_after_override")[1]["json"]["sd_model_checkpoint"] == "rand-a"


@pytest.mark.parametrize("name", ["bad_options_unknown_checkpoint", "bad_options_unknown_key",
                                  "bad_txt2img_width_string", "bad_txt2img_empty_body",
                                  "bad_txt2img_malformed_json", "bad_txt2img_wrong_method", "bad_unknown_endpoint",
                                  "bad_unknown_endpoint_post", "bad_img2img_no_init_images",
                                  "bad_img2img_invalid_base64", "post_interrupt_idle", "get_progress_idle"])
def test_error_and_small_bodies_equal_the_recording(forge, name):
    request, response = _recorded(name)
    got = _replay(forge.base_url, request)
    assert (got.status_code, got.json()) == (response["status"], response["json"])
    assert got.headers["content-type"] == response["headers"]["content-type"]


def test_auth_answers_equal_the_recording():
    with StandInWebUI("forge", auth=("user", "secret")) as webui:
        for name in ("auth_get_sd_models_no_credentials", "auth_get_sd_models_wrong_password"):
            request, response = _recorded(name)
            got = _replay(webui.base_url, request, headers=request["headers"])
            assert (got.status_code, got.json()) == (response["status"], response["json"])
            assert got.headers["www-authenticate"] == "Basic"
        request, _ = _recorded("auth_get_sd_models_ok")
        assert _replay(webui.base_url, request, headers=request["headers"]).status_code == 200
        assert requests.get(webui.base_url + API + "/loras").status_code == 200  # not behind --api-auth


def test_img2img_and_extras_record_what_arrived(forge):
    source = Image.new("RGB", (64, 64), (200, 30, 30))
    buffer = io.BytesIO()
    source.save(buffer, "PNG")
    png = buffer.getvalue()
    url = forge.base_url + API
    init = "data:image/png;base64," + base64.b64encode(png).decode()
    got = requests.post(url + "/img2img", json={"init_images": [init], "prompt": "g", "width": 32, "height": 48,
                                                "denoising_strength": 0.6})
    assert _info(got)["extra_generation_params"] == {"Denoising strength": 0.6}
    assert Image.open(io.BytesIO(forge.last_images[0])).size == (32, 48)
    assert forge.requests_to("POST", API + "/img2img")[0].init_images == [png]

    request, response = _recorded("post_extra_single_image_short")
    got = requests.post(url + "/extra-single-image", json={**request["json"], "image": base64.b64encode(png).decode()})
    assert got.json()["html_info"] == response["json"]["html_info"]
    assert Image.open(io.BytesIO(base64.b64decode(got.json()["image"]))).size == (128, 128)
    request, response = _recorded("bad_extra_single_image_unknown_upscaler_short")
    got = requests.post(url + "/extra-single-image", json={**request["json"], "image": base64.b64encode(png).decode()})
    assert (got.status_code, got.json()) == (response["status"], response["json"])


# ---- generation lock, progress and interrupt ------------------------------------------------------------------

def test_generations_run_one_at_a_time_and_interrupt_ends_one_early():
    with StandInWebUI("forge", generation_delay=0.1) as webui:
        url = webui.base_url + API
        body = {"prompt": "x", "width": 64, "height": 64, "steps": 4}
        started = time.monotonic()
        threads = [threading.Thread(target=requests.post, args=(url + "/txt2img",), kwargs={"json": body})
                   for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert time.monotonic() - started >= 0.3

        webui.generation_delay = 5.0
        result = {}
        worker = threading.Thread(target=lambda: result.update(r=requests.post(url + "/txt2img", json=body)))
        worker.start()
        time.sleep(0.1)
        progress = requests.get(url + "/progress").json()
        assert progress["state"]["job_count"] == 1 and progress["progress"] > 0
        started = time.monotonic()
        assert requests.post(url + "/interrupt").json() == {}
        worker.join(timeout=2)
        assert result["r"].status_code == 200 and time.monotonic() - started < 1
        assert requests.get(url + "/progress").json()["state"]["interrupted"] is True


# ---- benchmark helpers: noise images and per-request server time -------------------------------------------

def test_noise_images_are_photo_sized_cached_and_keep_their_own_infotext():
    with StandInWebUI("forge", image_content="noise") as webui:
        url = webui.base_url + API + "/txt2img"
        body = {"prompt": "x", "width": 512, "height": 512, "steps": 2, "batch_size": 5, "seed": 100}
        first = requests.post(url, json=body).json()
        again = requests.post(url, json={**body, "seed": 200}).json()

    pngs = [base64.b64decode(b) for b in first["images"]]
    images = [Image.open(io.BytesIO(png)) for png in pngs]
    assert all((i.format, i.size, i.mode) == ("PNG", (512, 512), "RGB") for i in images)
    assert all(2.9 < len(png) / (512 * 512) < 3.2 for png in pngs)  # like a real photo, not a flat pattern
    pixels = [i.tobytes() for i in images]
    assert len(set(pixels[:4])) == 4 and pixels[4] == pixels[0]  # batch index modulo 4 picks the cached image
    infotexts = json.loads(first["info"])["infotexts"]
    assert [i.info["parameters"] for i in images] == infotexts
    assert "Seed: 104," in infotexts[4]

    other = [Image.open(io.BytesIO(base64.b64decode(b))) for b in again["images"]]
    assert [i.tobytes() for i in other] == pixels  # the same cached pixels ...
    assert json.loads(again["info"])["all_seeds"] == [200, 201, 202, 203, 204]  # ... but this request's info
    assert [i.info["parameters"] for i in other] == json.loads(again["info"])["infotexts"]


def test_noise_jpeg_and_non_latin1_infotext():
    with StandInWebUI("forge", image_content="noise", image_format="jpeg") as webui:
        got = requests.post(webui.base_url + API + "/txt2img", json={"prompt": "x", "width": 64, "height": 64})
        assert Image.open(io.BytesIO(base64.b64decode(got.json()["images"][0]))).format == "JPEG"
    with StandInWebUI("forge", image_content="noise") as webui:
        got = requests.post(webui.base_url + API + "/txt2img", json={"prompt": "灯台", "width": 64, "height": 64})
        image = Image.open(io.BytesIO(base64.b64decode(got.json()["images"][0])))
        assert image.info["parameters"].startswith("灯台\n")  # an iTXt chunk, as Pillow writes it
    with pytest.raises(ValueError):
        StandInWebUI("forge", image_content="photos")


def test_each_record_has_the_time_the_server_spent_on_it():
    with StandInWebUI("forge", generation_delay=0.2) as webui:
        session = requests.Session()
        started = time.monotonic()
        session.get(webui.base_url + API + "/options")
        session.post(webui.base_url + API + "/txt2img", json={"prompt": "x", "width": 64, "height": 64})
        client_s = time.monotonic() - started
        options, txt2img = webui.requests
    assert isinstance(options.elapsed_s, float) and options.elapsed_s >= 0
    assert 0.2 <= txt2img.elapsed_s  # holds the generation lock for generation_delay
    assert options.elapsed_s + txt2img.elapsed_s <= client_s  # a part of what the client waited


# ---- injected faults ------------------------------------------------------------------------------------------

def test_faults(forge):
    url = forge.base_url + API + "/txt2img"
    body = {"prompt": "x", "width": 64, "height": 64, "steps": 2}
    session = requests.Session()

    forge.inject("oom")
    got = session.post(url, json=body)
    assert got.status_code == 500 and got.json()["error"] == "OutOfMemoryError"

    forge.inject("html_502")
    got = session.post(url, json=body)
    assert (got.status_code, got.headers["content-type"]) == (502, "text/html")

    forge.inject("truncated_json")
    got = session.post(url, json=body)
    assert got.status_code == 200 and int(got.headers["content-length"]) == len(got.content)
    with pytest.raises(ValueError):
        got.json()

    forge.inject("empty_images")
    got = session.post(url, json=body)
    assert got.json()["images"] == [] and _info(got)["all_seeds"]

    forge.inject("drop_connection")
    with pytest.raises(requests.ConnectionError):
        session.post(url, json=body)

    forge.inject("cut_midbody")
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        session.post(url, json=body)

    forge.inject("hang")
    threading.Timer(0.2, requests.post, args=(forge.base_url + API + "/interrupt",)).start()
    with pytest.raises(requests.ConnectionError):
        session.post(url, json=body, timeout=5)

    assert session.post(url, json=body).status_code == 200  # the server survives all of them
    assert len(forge.requests_to("POST", API + "/txt2img")) == 8
    assert forge.errors == []


# ---- other flavours (API.md §11) ------------------------------------------------------------------------------

def test_sdnext_differences():
    with StandInWebUI("sdnext") as webui:
        url = webui.base_url + API
        assert requests.get(url + "/version").json()["app"] == "sd.next"
        assert requests.get(url + "/schedulers").status_code == 404
        models = requests.get(url + "/sd-models").json()
        assert models[0]["title"] == "rand-a [17b6bb621c]" and models[0]["type"] == "safetensors"
        got = requests.post(url + "/txt2img", json={"prompt": "x", "width": 64, "height": 64, "steps": 2})
        assert base64.b64decode(got.json()["images"][0])[:3] == b"\xff\xd8\xff"  # JPEG
        assert "sd_model_name" not in _info(got) and "version" not in _info(got)
        bad = requests.post(url + "/txt2img", json={"prompt": "x", "sampler_name": "DPM++ 2M Karras"})
        assert (bad.status_code, bad.json()["detail"]) == (404, "Sampler not found")
        assert requests.post(url + "/options", json={"sd_model_checkpoint": "rand-b [2a30d74d7c]"}).json() == \
            {"updated": [{"sd_model_checkpoint": True}]}


def test_sdcpp_differences():
    with StandInWebUI("sdcpp", auth=("user", "secret")) as webui:
        url = webui.base_url + API
        for path in ("/version", "/cmd-flags", "/progress"):
            got = requests.get(url + path)
            assert (got.status_code, got.content) == (404, b"")
        assert requests.post(url + "/options", json={"sd_model_checkpoint": "x"}).status_code == 404
        assert requests.get(url + "/sd-models").json()[0]["hash"] == "8888888888"  # auth is ignored
        got = requests.post(url + "/txt2img", json={"prompt": "x", "width": 64, "height": 64, "steps": 2,
                                                     "sampler_name": "Euler a", "scheduler": "karras"})
        info = _info(got)
        assert info["version"] == "stable-diffusion.cpp" and info["sampler_name"] == "euler_a"
        assert info["extra_generation_params"] == {"Schedule type": "karras"}
        assert base64.b64decode(got.json()["images"][0])[:8] == b"\x89PNG\r\n\x1a\n"
        bad = requests.post(url + "/txt2img", json={"prompt": "x", "lora": [{"path": "nope.safetensors"}]})
        assert (bad.status_code, bad.json()) == (400, {"error": "invalid lora path: nope.safetensors"})


def test_a1111_differences():
    with StandInWebUI("a1111") as webui:
        url = webui.base_url + API
        assert requests.get(url + "/sd-modules").status_code == 404
        assert [v["model_name"] for v in requests.get(url + "/sd-vae").json()][:1] == ["vae-ft-mse-840000-ema-pruned.safetensors"]
        got = requests.post(url + "/options", json={"sd_model_checkpoint": "nope"})
        assert got.json() == {"error": "RuntimeError", "detail": "", "body": "", "errors": "model 'nope' not found"}
        assert requests.post(url + "/options", json={"sd_model_checkpoint": "rand-b"}).json() is None
        assert webui.model_loads == 1  # A1111 loads synchronously
