"""The stand-in WebUI answers like the real recorded Forge exchanges (tests/fixtures/forge/), and its
other flavours differ as API.md §11 says. Fast: the whole file runs in about a second."""

from __future__ import annotations

import base64
import io
import json
import re
import threading
import time
from pathlib import Path

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
        assert models[0]["title"] == "rand-a [38b3a15ec8]" and models[0]["type"] == "safetensors"
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


# ---- real recordings of every flavour (tests/fixtures/{forge,sdcpp,sdnext}/) ---------------------------------

VOLATILE_INFO = {"subseed", "all_subseeds", "job_timestamp"}  # random or clock-dependent in the recordings


def _fixture(name: str) -> tuple[dict, dict]:
    """(request, response) of a recording named "flavour/name" (the full one, whose images decode)."""
    fixture = load_fixture(name)
    return fixture["request"], fixture["response"]


def _images(body: dict) -> list[Image.Image]:
    return [Image.open(io.BytesIO(base64.b64decode(b))) for b in body["images"]]


def _assert_info_as_recorded(got: requests.Response, response: dict) -> dict:
    """Same keys in the same order, same values but the volatile ones; returns the stand-in's info."""
    info, recorded = _info(got), json.loads(response["json"]["info"])
    assert list(info) == list(recorded)
    assert {k: v for k, v in info.items() if k not in VOLATILE_INFO} == \
        {k: v for k, v in recorded.items() if k not in VOLATILE_INFO}
    return info


def _assert_images_as_recorded(got: requests.Response, response: dict) -> list[Image.Image]:
    """Same count, format and size, read from the image bytes (the only place that tells the real size)."""
    images, recorded = _images(got.json()), _images(response["json"])
    assert [(i.format, i.size) for i in images] == [(i.format, i.size) for i in recorded]
    return images


# ---- Forge and A1111: hires fix and sizes ---------------------------------------------------------------------

RECORDED_RAND_A_SHA256 = "38b3a15ec84beee220e69c6c66e530f573b4bc5d248de81e306c2b432561e9e7"  # the later Forge files


@pytest.fixture
def forge_late():
    """Forge with the rand-a file of the later Forge recordings (hires, sizes, subfolders)."""
    with StandInWebUI("forge", hashes={"rand-a": RECORDED_RAND_A_SHA256}) as webui:
        yield webui


def test_forge_hires_without_hr_additional_modules_is_the_recorded_500(forge_late):
    request, response = _fixture("forge/bad_txt2img_hires_without_hr_additional_modules")
    got = _replay(forge_late.base_url, request)
    assert (got.status_code, got.json()) == (500, response["json"])
    got = _replay(forge_late.base_url, {**request, "json": {**request["json"], "hr_additional_modules": None}})
    assert got.json()["message"] == "argument of type 'NoneType' is not iterable"


@pytest.mark.parametrize("name", ["post_txt2img_hires_with_hr_additional_modules",
                                  "post_txt2img_hires_hr_additional_modules_empty"])
def test_forge_hires_with_hr_additional_modules_answers_as_recorded(forge_late, name):
    request, response = _fixture(f"forge/{name}")
    got = _replay(forge_late.base_url, request)
    assert got.status_code == 200
    info = _assert_info_as_recorded(got, response)
    assert (info["width"], info["height"]) == (64, 64)  # info keeps the first pass ...
    images = _assert_images_as_recorded(got, response)
    assert images[0].size == (96, 96)  # ... while the image is upscaled x1.5
    assert images[0].info["parameters"] == info["infotexts"][0]
    assert got.json()["parameters"] == response["json"]["parameters"]


def test_a1111_ignores_hr_additional_modules_and_upscales():
    request, _ = _fixture("forge/bad_txt2img_hires_without_hr_additional_modules")
    with StandInWebUI("a1111") as webui:
        got = _replay(webui.base_url, request)
    info = _info(got)
    assert got.status_code == 200 and (info["width"], info["height"]) == (64, 64)
    assert _images(got.json())[0].size == (96, 96)
    assert "Hires Module 1" not in info["extra_generation_params"]
    assert info["extra_generation_params"]["Hires upscale"] == 1.5


@pytest.mark.parametrize("flavor", ["forge", "a1111"])
def test_size_not_a_multiple_of_8_is_rounded_down_in_the_image_only(flavor):
    request, response = _fixture("forge/post_txt2img_size_not_multiple_of_8")
    with StandInWebUI(flavor, hashes={"rand-a": RECORDED_RAND_A_SHA256}) as webui:
        got = _replay(webui.base_url, request)
    if flavor == "forge":
        _assert_info_as_recorded(got, response)
    info = _info(got)
    assert (info["width"], info["height"]) == (100, 60) and "Size: 100x60" in info["infotexts"][0]
    assert _images(got.json())[0].size == (96, 56)


# ---- Forge: subfolders and two files with one hash -----------------------------------------------------------

def test_same_file_in_two_folders_lists_as_recorded():
    request, response = _fixture("forge/get_sd_models_same_file_in_two_folders")
    with StandInWebUI.same_file_in_two_folders() as webui:
        assert _replay(webui.base_url, request).json() == response["json"]
        url = webui.base_url + API
        for name in ("bad_options_subfolder_name_without_extension", "post_options_subfolder_title"):
            request, response = _fixture(f"forge/{name}")
            got = _replay(webui.base_url, request)
            assert (got.status_code, got.json()) == (response["status"], response["json"])
        recorded = _fixture("forge/get_options_after_subfolder_switch")[1]["json"]
        assert requests.get(url + "/options").json()["sd_model_checkpoint"] == recorded["sd_model_checkpoint"]
        generated = requests.post(url + "/txt2img", json={"prompt": "x", "width": 64, "height": 64, "steps": 2})
        assert _info(generated)["sd_model_name"] == "rand-b" and webui.loaded_model == "rand-b"
        assert requests.get(url + "/options").json()["sd_checkpoint_hash"] == recorded["sd_checkpoint_hash"]
        # The shared short hash names the file registered last, as A1111's alias dict does.
        by_hash = requests.post(url + "/txt2img", json={"prompt": "x", "width": 64, "height": 64, "steps": 2,
                                                        "override_settings": {"sd_model_checkpoint": "38b3a15ec8"}})
        assert _info(by_hash)["sd_model_name"] == "rand-b"


def test_subfolder_models_are_named_like_each_server():
    with StandInWebUI("a1111", models=["rand-a", "sub/x"], unhashed=[]) as webui:
        model = requests.get(webui.base_url + API + "/sd-models").json()[1]
        assert (model["title"][:19], model["model_name"]) == ("sub/x.safetensors [", "sub_x")
        assert model["filename"].endswith("/models/Stable-diffusion/sub/x.safetensors")
    with StandInWebUI("sdnext", models=["rand-a", "sub/x"]) as webui:
        model = requests.get(webui.base_url + API + "/sd-models").json()[1]
        assert (model["title"][:7], model["model_name"]) == ("sub/x [", "sub/x")


# ---- stable-diffusion.cpp (tests/fixtures/sdcpp/) --------------------------------------------------------------

SDCPP_DIR = Path(__file__).resolve().parent / "fixtures" / "sdcpp"
SDCPP_RECORDINGS = sorted(p.stem for p in SDCPP_DIR.glob("*.json") if not p.stem.endswith("_short"))


@pytest.fixture(scope="module")
def sdcpp():
    with StandInWebUI("sdcpp") as webui:
        yield webui


@pytest.mark.parametrize("name", SDCPP_RECORDINGS)
def test_sdcpp_answers_every_recording_alike(sdcpp, name):
    """Status and body of each recorded exchange; generations: the whole info (seeded, so deterministic),
    the parameters echo, and the images' format, size and infotext chunk."""
    request, response = _fixture(f"sdcpp/{name}")
    got = _replay(sdcpp.base_url, request)
    assert got.status_code == response["status"]
    if not response.get("json") and response["headers"].get("content-length") == "0":
        assert got.content == b"" and "content-type" not in got.headers  # cpp-httplib's bare 404
        return
    body = got.json()
    if "images" not in response["json"]:
        assert body == response["json"]
        return
    assert list(body) == list(response["json"]) == ["images", "info", "parameters"]
    assert body["parameters"] == response["json"]["parameters"]
    assert got.json()["info"] == response["json"]["info"]  # byte for byte, infotexts included
    for image, infotext in zip(_assert_images_as_recorded(got, response), _info(got)["infotexts"]):
        assert image.info["parameters"] == infotext


def test_sdcpp_lacks_every_other_route():
    with StandInWebUI("sdcpp") as webui:
        url = webui.base_url
        for method, path in [("GET", "/skip"), ("POST", "/skip"), ("POST", "/refresh-checkpoints"),
                             ("POST", "/refresh-loras"), ("GET", "/sd-vae"), ("GET", "/sd-modules"),
                             ("POST", "/png-info"), ("POST", "/interrogate"), ("GET", "/embeddings"),
                             ("GET", "/scripts"), ("GET", "/txt2img"), ("POST", "/sd-models"),
                             ("GET", "/does-not-exist"), ("POST", "/reload-checkpoint")]:
            got = requests.request(method, url + API + path, json={} if method == "POST" else None)
            assert (got.status_code, got.content) == (404, b""), path
        for path in ("/docs", "/openapi.json"):
            assert (requests.get(url + path).status_code, requests.get(url + path).content) == (404, b"")


def test_sdcpp_resolves_samplers_and_schedulers_like_get_sdapi_sample_method(sdcpp):
    url = sdcpp.base_url + API + "/txt2img"
    cases = [({"sampler_name": "euler_a"}, "euler_a"), ({"sampler_name": "Euler a"}, "euler_a"),
             ({"sampler_name": "K_EULER_A"}, "euler_a"), ({"sampler_name": "DPM++ 2M"}, "dpm++2m"),
             ({"sampler_name": "DDIM"}, "ddim_trailing"), ({"sampler_name": "dpm++ 2m sde gpu"}, "dpm++2m_sde_bt"),
             ({"sampler_name": "Euler_A"}, "NONE"), ({"sampler_name": "default"}, "NONE"),
             ({"sampler_name": "DPM++ 2M Karras"}, "NONE"), ({"sampler_name": "lms"}, "lms")]
    for fields, expected in cases:
        info = _info(requests.post(url, json={"prompt": "x", "width": 64, "height": 64, "steps": 1, **fields}))
        assert info["sampler_name"] == expected, fields
    for scheduler, applied in [("karras", "karras"), ("Karras", None), ("default", None), ("exponential", "exponential")]:
        info = _info(requests.post(url, json={"prompt": "x", "width": 64, "height": 64, "steps": 1,
                                              "scheduler": scheduler}))
        assert info.get("extra_generation_params") == ({"Schedule type": applied} if applied else None), scheduler


def test_sdcpp_hires_reads_hr_steps_and_rounds_up_to_64(sdcpp):
    url = sdcpp.base_url + API + "/txt2img"
    body = {"prompt": "x", "width": 64, "height": 64, "steps": 2, "seed": 1, "enable_hr": True, "hr_scale": 1.5,
            "hr_upscaler": "Latent (nearest)", "hr_second_pass_steps": 7, "denoising_strength": 0.4}
    got = requests.post(url, json=body)
    infotext = _info(got)["infotexts"][0]
    assert "Hires steps: 0," in infotext and "Hires upscale: Latent (nearest)," in infotext  # not second_pass
    assert _images(got.json())[0].size == (128, 128)  # 96x96 rounded up to 64
    got = requests.post(url, json={**body, "hr_steps": 3, "hr_resize_x": 200, "hr_resize_y": 130})
    assert "Hires steps: 3, " in _info(got)["infotexts"][0] and _images(got.json())[0].size == (256, 192)
    assert (_info(got)["width"], _info(got)["height"]) == (64, 64)
    bad = requests.post(url, json={**body, "hr_upscaler": "R-ESRGAN 4x+"})
    assert (bad.status_code, bad.json()) == (400, {"error": "invalid params"})


def test_sdcpp_clamps_steps_and_batch_and_ignores_n_iter_and_overrides(sdcpp):
    got = requests.post(sdcpp.base_url + API + "/txt2img", json={
        "prompt": "x", "width": 64, "height": 64, "steps": 500, "seed": 10, "batch_size": 20, "n_iter": 3,
        "override_settings": {"sd_model_checkpoint": "rand-b", "CLIP_stop_at_last_layers": 2}})
    info = _info(got)
    assert info["steps"] == 100 and info["all_seeds"] == list(range(10, 18)) and len(got.json()["images"]) == 8
    assert info["sd_model_name"] == "rand-a.safetensors" and "clip_skip" not in info
    assert _info(requests.post(sdcpp.base_url + API + "/txt2img",
                               json={"prompt": "x", "width": 64, "height": 64, "steps": 0}))["steps"] == 1


def test_sdcpp_infotext_parses_like_a_real_one(sdcpp):
    """A1111's infotext parser (parse_generation_parameters' regex) reads the stand-in's like the recorded ones."""
    pair = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')

    def parse(text: str) -> dict[str, str]:
        *head, last = text.split("\n")
        return {k: v for k, v in pair.findall(last.split(", SDCPP: ")[0])} | {"prompt": head[0]}

    recorded = parse(json.loads(_fixture("sdcpp/post_txt2img_sampler_scheduler")[1]["json"]["info"])["infotexts"][0])
    got = _info(requests.post(sdcpp.base_url + API + "/txt2img", json={
        "prompt": "a cat", "negative_prompt": "dog", "width": 96, "height": 64, "steps": 3, "seed": 5,
        "sampler_name": "heun", "scheduler": "exponential", "clip_skip": 2, "cfg_scale": 4.5}))["infotexts"][0]
    parsed = parse(got)
    assert set(recorded) <= set(parsed)
    assert (parsed["prompt"], parsed["Steps"], parsed["Sampler"], parsed["Seed"], parsed["Size"]) == \
        ("a cat", "3", "heun exponential", "5", "96x64")
    assert (parsed["CFG scale"], parsed["Clip skip"], parsed["Model"]) == ("4.500000", "2", "rand-a.safetensors")
    assert got.split("\n")[1] == "Negative prompt: dog"
    assert json.loads(got.split(", SDCPP: ", 1)[1])["sampling"]["scheduler"] == "exponential"


def test_sdcpp_handles_one_request_at_a_time():
    with StandInWebUI("sdcpp", generation_delay=0.1) as webui:
        body = {"prompt": "x", "width": 64, "height": 64, "steps": 1}
        started = time.monotonic()
        threads = [threading.Thread(target=requests.post, args=(webui.base_url + API + "/txt2img",),
                                    kwargs={"json": body}) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert time.monotonic() - started >= 0.3


# ---- SD.Next (tests/fixtures/sdnext/) --------------------------------------------------------------------------

@pytest.fixture
def sdnext():
    """SD.Next with the recorded models: rand-a loaded, sub/rand-b beside it."""
    with StandInWebUI("sdnext", models=["rand-a", "sub/rand-b"]) as webui:
        yield webui


@pytest.mark.parametrize("name", ["get_sd_models", "get_samplers", "get_upscalers", "get_version", "get_schedulers",
                                  "get_latent_upscale_modes", "post_txt2img_legacy_combined_sampler"])
def test_sdnext_lists_and_errors_equal_the_recording(sdnext, name):
    request, response = _fixture(f"sdnext/{name}")
    got = _replay(sdnext.base_url, request)
    assert (got.status_code, got.json()) == (response["status"], response["json"])


def test_sdnext_model_switch_reproduces_the_recorded_sequence(sdnext):
    """POST /options only stores the name: the generations keep rand-a until reload-checkpoint."""
    url = sdnext.base_url + API
    switch, switched = _fixture("sdnext/post_options_switch_to_b")
    assert _replay(sdnext.base_url, switch).json() == {"updated": [{"sd_model_checkpoint": True}]}  # first time
    assert sdnext.loaded_model == "rand-a" and sdnext.model_loads == 1  # loaded at start-up, not switched

    assert _replay(sdnext.base_url, switch).json() == switched["json"]  # the recorded one: unchanged -> false
    request, response = _fixture("sdnext/post_txt2img_right_after_switch")  # override == options: skipped
    got = _replay(sdnext.base_url, request)
    assert _assert_info_as_recorded(got, response)["sd_model_hash"] == "38b3a15ec8"  # still rand-a
    _assert_images_as_recorded(got, response)
    request, response = _fixture("sdnext/get_options_after_switch")
    assert _replay(sdnext.base_url, request).json() == response["json"]  # names rand-b, hash of rand-a
    request, response = _fixture("sdnext/post_txt2img_next_call")
    _assert_info_as_recorded(_replay(sdnext.base_url, request), response)
    assert sdnext.model_loads == 1

    assert requests.post(url + "/reload-checkpoint").json() == {}
    assert sdnext.loaded_model == "rand-b" and sdnext.model_loads == 2
    got = _replay(sdnext.base_url, request)
    assert _info(got)["sd_model_hash"] == "7ba778b605" and "Model: rand-b, Model hash: 7ba778b605" in \
        _info(got)["infotexts"][0]
    assert requests.get(url + "/options").json()["sd_checkpoint_hash"].startswith("7ba778b605")
    back, response = _fixture("sdnext/post_options_switch_back_to_a")
    assert _replay(sdnext.base_url, back).json() == response["json"] and sdnext.loaded_model == "rand-b"


def test_sdnext_override_settings_checkpoint(sdnext):
    url = sdnext.base_url + API
    body = {"prompt": "x", "width": 64, "height": 64, "steps": 1}

    def generate(checkpoint: str, **fields) -> str:
        got = requests.post(url + "/txt2img", json={**body, "override_settings": {"sd_model_checkpoint": checkpoint},
                                                    **fields})
        return _info(got)["sd_model_hash"]

    for name in ("sub/rand-b", "sub/rand-b [7ba778b605]", "7ba778b605",
                 "/srv/sdnext/models/Stable-diffusion/sub/rand-b.safetensors"):
        loads = sdnext.model_loads
        assert generate(name) == "7ba778b605", name  # one of SD.Next's own names: applied ...
        assert sdnext.model_loads == loads + 2 and sdnext.loaded_model == "rand-a"  # ... then restored
    assert generate("sub/rand-b.safetensors [7ba778b605]") == "38b3a15ec8"  # A1111-style title: unknown
    assert generate("nope") == "38b3a15ec8"
    assert requests.get(url + "/options").json()["sd_model_checkpoint"] == "rand-a [38b3a15ec8]"

    assert generate("sub/rand-b", override_settings_restore_afterwards=False) == "7ba778b605"
    assert requests.get(url + "/options").json()["sd_model_checkpoint"] == "sub/rand-b"
    assert sdnext.loaded_model == "rand-b"
    # Skipped when it equals the options' value without its extension: the loaded model stays.
    requests.post(url + "/options", json={"sd_model_checkpoint": "rand-a.safetensors"})
    assert generate("rand-a") == "7ba778b605"


def test_sdnext_options_store_even_an_unknown_model(sdnext):
    url = sdnext.base_url + API
    got = requests.post(url + "/options", json={"sd_model_checkpoint": "no-such-model"})
    assert (got.status_code, got.json()) == (200, {"updated": [{"sd_model_checkpoint": True}]})
    options = requests.get(url + "/options").json()
    assert options["sd_model_checkpoint"] == "no-such-model"
    assert options["sd_checkpoint_hash"] == RECORDED_RAND_A_SHA256 and sdnext.loaded_model == "rand-a"
    assert requests.post(url + "/reload-checkpoint").json() == {} and sdnext.loaded_model == "rand-a"


def test_sdnext_sizes_hires_and_sigma(sdnext):
    request, response = _fixture("sdnext/post_txt2img_size_not_multiple_of_8")
    got = _replay(sdnext.base_url, request)
    info = _assert_info_as_recorded(got, response)
    assert (info["width"], info["height"]) == (96, 56)  # SD.Next's info says the rounded size ...
    assert _assert_images_as_recorded(got, response)[0].size == (96, 56)  # ... and so does the JPEG
    assert got.json()["parameters"]["width"] == 100

    request, response = _fixture("sdnext/post_txt2img_hires_latent")  # "Latent" is not in its list
    got = _replay(sdnext.base_url, request)
    _assert_info_as_recorded(got, response)
    assert _assert_images_as_recorded(got, response)[0].size == (64, 64)  # accepted, not upscaled
    got = _replay(sdnext.base_url, {**request, "json": {**request["json"], "hr_upscaler": "Latent Nearest"}})
    assert _images(got.json())[0].size == (96, 96) and (_info(got)["width"], _info(got)["height"]) == (64, 64)

    url = sdnext.base_url + API + "/txt2img"
    body = {"prompt": "x", "width": 64, "height": 64, "steps": 1, "scheduler": "Karras"}
    plain = _info(requests.post(url, json=body))["infotexts"][0]
    assert "Sampler sigma" not in plain and "Karras" not in plain  # the scheduler field is dropped
    karras = _info(requests.post(url, json={**body, "override_settings": {"schedulers_sigma": "karras"}}))
    assert "Sampler sigma: karras" in karras["infotexts"][0]
    bogus = _info(requests.post(url, json={**body, "override_settings": {"schedulers_sigma": "bogus"}}))
    assert "Sampler sigma" not in bogus["infotexts"][0]


def test_jpeg_images_carry_the_infotext_in_exif_like_the_recording(sdnext):
    request, response = _fixture("sdnext/post_txt2img_next_call")

    def user_comment(image: Image.Image) -> str:
        raw = image.getexif().get_ifd(0x8769)[0x9286]
        assert raw.startswith(b"UNICODE\x00")
        return raw[8:].decode("utf-16-be")

    got = _replay(sdnext.base_url, request)
    recorded = _images(response["json"])[0]
    assert user_comment(_images(got.json())[0]) == _info(got)["infotexts"][0]
    assert user_comment(recorded) == json.loads(response["json"]["info"])["infotexts"][0]


def test_command_line_serves_two_files_with_one_hash():
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-m", "tests.standin.webui", "--flavor", "forge", "--port", "0",
                                "--same-file-in-two-folders"], stderr=subprocess.PIPE, text=True,
                               cwd=Path(__file__).resolve().parent.parent)
    try:
        url = process.stderr.readline().strip().rsplit(" ", 1)[-1]
        models = requests.get(url + API + "/sd-models", timeout=10).json()
        assert models == _fixture("forge/get_sd_models_same_file_in_two_folders")[1]["json"]
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_sdnext_silent_200s_from_its_readme(sdnext):
    url = sdnext.base_url + API
    got = requests.post(url + "/txt2img", json={"prompt": "x", "width": 0, "height": 64, "steps": 1})
    assert got.status_code == 200 and _images(got.json())[0].size == (1024, 64)
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32)).save(buffer, "PNG")
    got = requests.post(url + "/extra-single-image", json={"image": base64.b64encode(buffer.getvalue()).decode(),
                                                            "upscaler_1": "R-ESRGAN 4x+", "upscaling_resize": 2})
    assert got.status_code == 200 and _images({"images": [got.json()["image"]]})[0].size == (32, 32)
