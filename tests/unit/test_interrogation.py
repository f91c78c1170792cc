"""Describe image and Read generation info against the stand-in WebUI of each family (in-process, 127.0.0.1)."""

from __future__ import annotations

import io
import json
import time

import pytest
import responses
from PIL import Image

from sdwebui import errors
from sdwebui.client import WebUIClient
from sdwebui.deadline import Deadline
from sdwebui.images import encode_base64
from sdwebui.interrogation import interrogate, resolve_interrogator
from sdwebui.png_info import NO_PARAMETERS, read_image_info
from tests.conftest import API, BASE, MockWebUI, png_bytes
from tests.fixtures.load import load_fixture
from tests.standin.info_routes import SDNEXT_INTERROGATORS, novelai_png
from tests.standin.webui import StandInWebUI


def red_png() -> str:
    return encode_base64(png_bytes(16, 16, (220, 20, 20)))


@pytest.mark.parametrize("flavor", ["forge", "a1111"])
@pytest.mark.parametrize(("model", "expected"), [("clip", "a red abstract painting"), ("deepdanbooru", "red theme")])
def test_a1111_and_forge_describe_with_either_interrogator(flavor, model, expected):
    with StandInWebUI(flavor) as webui:
        result = interrogate(WebUIClient(webui.base_url), red_png(), model, Deadline(10))
        sent = webui.requests_to("POST", "/sdapi/v1/interrogate")[-1].json
    assert expected in result.prompt and "\n" not in result.prompt
    assert sent["model"] == model and not sent["image"].startswith("data:")
    assert result.summary() == {"prompt": result.prompt, "interrogator": model, "server": flavor}


def test_sdnext_uses_its_listed_interrogators_and_clip_means_its_first():
    with StandInWebUI("sdnext") as webui:
        client = WebUIClient(webui.base_url)
        default = interrogate(client, red_png(), "clip", Deadline(10))
        named = interrogate(client, red_png(), "vit-h-14/LAION2B_s32b_b79k", Deadline(10))
        with pytest.raises(errors.NotFound, match="no interrogator named 'deepdanbooru'. Available: ViT-L-14/openai"):
            interrogate(client, red_png(), "deepdanbooru", Deadline(10))
        posted = [r.json["model"] for r in webui.requests_to("POST", "/sdapi/v1/interrogate")]
        listed = webui.requests_to("GET", "/sdapi/v1/interrogate")
    assert (default.interrogator, named.interrogator) == tuple(SDNEXT_INTERROGATORS)
    assert posted == SDNEXT_INTERROGATORS  # the unknown name never reached the server
    assert len(listed) == 1  # its list is read once and cached, like the other lists


def test_sdcpp_cannot_describe_and_says_so_before_sending_the_image():
    with StandInWebUI("sdcpp") as webui:
        with pytest.raises(errors.Unsupported) as caught:
            interrogate(WebUIClient(webui.base_url), red_png(), "clip", Deadline(10))
        assert webui.requests_to("POST", "/sdapi/v1/interrogate") == []
    assert str(caught.value).startswith("The stable-diffusion.cpp server cannot describe images")


def test_missing_interrogator_weights_is_one_sentence():
    with StandInWebUI("a1111") as webui:
        webui.interrogator_weights_missing = True
        with pytest.raises(errors.ServerError) as caught:
            interrogate(WebUIClient(webui.base_url), red_png(), "clip", Deadline(10))
    message = str(caught.value)
    assert message.startswith("The WebUI's 'clip' interrogator failed ([Errno 2] No such file or directory:")
    assert "weights are probably missing" in message and "try deepdanbooru" in message
    assert "Traceback" not in message and "\n" not in message


def test_an_unknown_interrogator_is_refused_before_any_post():
    assert resolve_interrogator("DeepBooru", ["clip", "deepdanbooru"]) == "deepdanbooru"
    with pytest.raises(errors.NotFound, match="no interrogator named 'wd14'. Available: clip, deepdanbooru"):
        resolve_interrogator("wd14", ["clip", "deepdanbooru"])


def test_a_slow_first_load_runs_into_the_deadline_with_a_clear_sentence():
    with StandInWebUI("forge") as webui:
        webui.interrogator_load_delay = 5.0
        client = WebUIClient(webui.base_url)
        client.options(Deadline(5))  # warm the catalog, so only the interrogation itself is timed
        started = time.monotonic()
        with pytest.raises(errors.Timeout) as caught:
            interrogate(client, red_png(), "clip", Deadline(1.5))
        waited = time.monotonic() - started
        assert webui.requests_to("POST", "/sdapi/v1/interrupt") == []  # an interrupt would stop someone's generation
    assert waited < 3.0
    assert "first description loads the 'clip' interrogator" in str(caught.value)


@pytest.fixture
def forge_mock():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield MockWebUI(rsps), rsps


def test_a1111s_error_marker_in_a_200_caption_is_a_failure(forge_mock):
    _, rsps = forge_mock
    rsps.post(API + "/interrogate", json={"caption": "a red square, <error>"})
    with pytest.raises(errors.ServerError, match="'clip' interrogator failed; its model weights are probably missing"):
        interrogate(WebUIClient(BASE), red_png(), "clip", Deadline(5))


# ---- png_info ---------------------------------------------------------------------------------------------------

def test_local_reading_needs_no_server():
    with StandInWebUI("sdcpp") as webui:
        client = WebUIClient(webui.base_url)
        body = {"prompt": "a red apple", "width": 64, "height": 64, "steps": 3, "seed": 77, "sampler_name": "euler"}
        image = json.loads(client.session.post(f"{webui.base_url}/sdapi/v1/txt2img", json=body).text)["images"][0]
        webui.reset()
        from base64 import b64decode

        info = read_image_info(b64decode(image), client=client, deadline=Deadline(5))
        assert webui.requests == []  # nothing sent: the PNG chunk was enough
    p = info.parameters
    assert info.source == "PNG text chunk" and (p.prompt, p.seed, p.steps, p.sampler) == ("a red apple", 77, 3, "euler")


def test_the_server_is_asked_only_when_the_file_has_no_text_it_can_read():
    novelai = novelai_png("a red fox", {"steps": 28, "sampler": "k_euler", "seed": 5, "scale": 11, "uc": "lowres"})
    with StandInWebUI("forge") as webui:
        info = read_image_info(novelai, client=WebUIClient(webui.base_url), deadline=Deadline(5))
        assert len(webui.requests_to("POST", "/sdapi/v1/png-info")) == 1
    p = info.parameters
    assert info.source == "WebUI /png-info"
    assert (p.prompt, p.negative_prompt, p.steps, p.sampler, p.seed, p.cfg_scale) == ("a red fox", "lowres", 28, "Euler", 5, 11.0)


@pytest.mark.parametrize("flavor", ["sdcpp", None])
def test_no_parameters_anywhere_is_a_plain_answer(flavor):
    plain = png_bytes(8, 8)
    if flavor is None:  # nothing listens there: the file itself still says "none"
        info = read_image_info(plain, client=WebUIClient("http://127.0.0.1:9"), deadline=Deadline(2))
    else:
        with StandInWebUI(flavor) as webui:
            info = read_image_info(plain, client=WebUIClient(webui.base_url), deadline=Deadline(5))
    assert not info.found and info.describe() == NO_PARAMETERS and info.summary() == {"found": False, "source": ""}


def test_a_non_image_is_refused():
    with pytest.raises(errors.InvalidInput, match="not a PNG, JPEG or WebP image"):
        read_image_info(b"%PDF-1.4")


def test_describe_gives_the_agent_prompt_and_settings():
    out = io.BytesIO()
    text = "a cat <lora:fur:0.5>\nNegative prompt: dog\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 3, Size: 512x768, Model: sd15"
    from PIL import PngImagePlugin

    pnginfo = PngImagePlugin.PngInfo()
    pnginfo.add_text("parameters", text)
    Image.new("RGB", (4, 4)).save(out, "PNG", pnginfo=pnginfo)
    assert read_image_info(out.getvalue()).describe() == (
        "Prompt: a cat\nNegative prompt: dog\n"
        "Settings: steps 20, sampler Euler a, CFG 7, seed 3, 512x768, model sd15, LoRAs fur:0.5."
    )


def test_a_webui_without_the_route_is_said_plainly(forge_mock):
    _, rsps = forge_mock
    rsps.post(API + "/interrogate", json={"detail": "Not Found"}, status=404)
    with pytest.raises(errors.Unsupported, match=r"The Forge at http://webui.test:7860 has no /interrogate route"):
        interrogate(WebUIClient(BASE), red_png(), "clip", Deadline(5))


def _sdnext_2026(rsps) -> None:
    for path in ("options", "version", "sd-models"):
        rsps.get(f"{API}/{path}", json=load_fixture(f"sdnext/058a7f0/get_{path.replace('-', '_')}")["response"]["json"])


@responses.activate
def test_current_sdnext_describes_through_its_caption_route():
    """058a7f0: /interrogate is gone; POST /caption with an OpenCLIP or tagger backend (shaped from its
    modules/api/caption.py: no recording of it yet)."""
    _sdnext_2026(responses)
    responses.post(f"{API}/caption", json={"backend": "openclip", "caption": "a red square, flat colour"})
    responses.post(f"{API}/interrogate", json={"detail": "Not Found"}, status=404)
    result = interrogate(WebUIClient(BASE), red_png(), "clip", Deadline(10))
    assert result.prompt == "a red square, flat colour"
    responses.replace(responses.POST, f"{API}/caption", json={"backend": "tagger", "tags": "red, simple background"})
    tags = interrogate(WebUIClient(BASE), red_png(), "deepdanbooru", Deadline(10))
    sent = [json.loads(c.request.body) for c in responses.calls if c.request.url.endswith("/caption")]
    assert tags.prompt == "red, simple background"
    assert [(s["backend"], s.get("model")) for s in sent] == [("openclip", None), ("tagger", "deepbooru")]
    assert not [c for c in responses.calls if c.request.url.endswith("/interrogate")]


@responses.activate
def test_a_server_without_the_caption_route_falls_back_to_interrogate():
    _sdnext_2026(responses)
    responses.post(f"{API}/caption", json={"detail": "Not Found"}, status=404)
    responses.post(f"{API}/interrogate", json={"caption": "a red square"})
    assert interrogate(WebUIClient(BASE), red_png(), "clip", Deadline(10)).prompt == "a red square"


@pytest.mark.parametrize("model", ["clip", "deepdanbooru"])
def test_a1111_offline_interrogators_fail_in_one_sentence(model):
    """a1111/post_interrogate_clip_offline (200 "<error>") and ..._deepdanbooru_offline (500 IndexError)."""
    with StandInWebUI("a1111") as webui:
        webui.offline = True
        with pytest.raises(errors.ServerError) as caught:
            interrogate(WebUIClient(webui.base_url), red_png(), model, Deadline(10))
    message = str(caught.value)
    assert f"'{model}' interrogator failed" in message and "weights are probably missing" in message
    assert message.count(". ") <= 2 and len(message) < 400
