"""Describe image, Read generation info and 'make it again', run as Dify runs the plugin (python -m main over stdio)."""

from __future__ import annotations

import base64
import json
import socket

import pytest

from tests.fixtures.load import load_fixture
from tests.standin.webui import StandInWebUI

PROVIDER = "sd_webui"


def creds(server: StandInWebUI | str, **extra) -> dict:
    return {"base_url": server if isinstance(server, str) else server.base_url, **extra}


def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def recorded_image(name: str) -> bytes:
    body = load_fixture(name)["response"]["json"]
    return base64.b64decode(body["images"][0])


# ---- Read generation info ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("fixture", "expected"), [
    ("forge/post_txt2img_with_lora", {"prompt": "a red apple", "seed": 1234, "steps": 2, "sampler": "Euler",
                                      "scheduler": "Automatic", "cfg_scale": 7.0, "width": 64, "height": 64,
                                      "model": "rand-a", "loras": [{"name": "rand-lora", "weight": 0.8}]}),
    ("sdcpp/post_txt2img_sampler_scheduler", {"prompt": "a red apple", "seed": 1234, "steps": 2, "sampler": "euler_a",
                                              "scheduler": "karras", "cfg_scale": 7.0, "width": 64, "height": 64,
                                              "model": "rand-a.safetensors", "loras": []}),
    ("sdnext/post_txt2img_next_call", {"prompt": "a red apple", "seed": 1234, "steps": 2, "sampler": "UniPC",
                                       "scheduler": None, "cfg_scale": 6.0, "width": 64, "height": 64, "model": "rand-a",
                                       "loras": []}),
])
def test_png_info_reads_real_images_without_any_server(plugin, files, fixture, expected):
    """The images real Forge, sd.cpp and SD.Next servers returned (the bytes the plugin hands to Dify)."""
    data = recorded_image(fixture)
    mime = "image/jpeg" if data.startswith(b"\xff\xd8") else "image/png"
    result = plugin.invoke_tool(PROVIDER, "png_info", creds(dead_url()), {"image": files.add(data, mime_type=mime)})
    assert result.error is None, result.error
    summary = result.jsons[0]
    assert {key: summary[key] for key in expected} == expected
    assert summary["found"] is True and summary["infotext"].startswith("a red apple")
    assert {key: result.variables[key] for key in expected} == expected
    assert result.texts[-1].startswith("Prompt: a red apple\nSettings: steps 2, sampler ")


def test_png_info_says_plainly_when_an_image_carries_nothing(plugin, standin, files):
    from tests.conftest import png_bytes

    result = plugin.invoke_tool(PROVIDER, "png_info", creds(standin), {"image": files.add(png_bytes(16, 16))})
    assert result.error is None, result.error
    assert result.texts == ["This image carries no generation parameters (no infotext in its metadata)."]
    assert result.variables["found"] is False
    assert len(standin.requests_to("POST", "/sdapi/v1/png-info")) == 1  # nothing local, so the server was asked


# ---- Make it again ---------------------------------------------------------------------------------------------

FIRST = {"prompt": "a red apple, still life", "negative_prompt": "blurry", "width": 96, "height": 64, "steps": 3,
         "cfg_scale": 6.5, "seed": 4321}


@pytest.mark.parametrize(("flavor", "extra", "sent"), [
    ("forge", {"sampler_name": "DPM++ 2M", "scheduler_name": "karras", "model_name": "rand-b", "loras": "rand-lora:0.6"},
     (96, 64, "DPM++ 2M")),
    # sd.cpp is asked for multiples of 64 that keep the aspect; its infotext records that size.
    ("sdcpp", {"sampler_name": "euler", "loras": "rand-lora:0.6"}, (192, 128, "euler")),
])
def test_round_trip_txt2img_png_info_txt2img_makes_the_same_request(plugin, files, flavor, extra, sent):
    with StandInWebUI(flavor) as webui:
        first = plugin.invoke_tool(PROVIDER, "txt2img", creds(webui), {**FIRST, **extra})
        assert first.error is None, first.error
        image = files.add(first.blobs[0].data, filename=first.blobs[0].filename)
        info = plugin.invoke_tool(PROVIDER, "png_info", creds(webui), {"image": image})
        assert info.error is None, info.error
        # A workflow wires png_info's json output (an array of one object) into generation_info, as text.
        again = plugin.invoke_tool(PROVIDER, "txt2img", creds(webui), {"generation_info": json.dumps(info.jsons), "seed": -1})
        assert again.error is None, again.error
        first_sent, again_sent = (r.json for r in webui.requests_to("POST", "/sdapi/v1/txt2img"))
    keys = ("prompt", "negative_prompt", "seed", "width", "height", "steps", "cfg_scale", "sampler_name", "scheduler",
            "lora", "override_settings")
    assert {k: again_sent.get(k) for k in keys} == {k: first_sent.get(k) for k in keys}
    assert (again_sent["seed"], again_sent["width"], again_sent["height"], again_sent["sampler_name"]) == (4321, *sent)
    assert again.jsons[0]["seed"] == first.jsons[0]["seed"] == 4321


def test_make_it_again_with_a_change_and_a_model_the_server_lacks(plugin, standin):
    info = {"prompt": "a red apple", "seed": 5, "width": 64, "height": 64, "steps": 2, "sampler": "Euler", "model": "rand-a"}
    varied = plugin.invoke_tool(PROVIDER, "txt2img", creds(standin), {"generation_info": info, "prompt": "a green apple"})
    assert varied.error is None, varied.error
    sent = standin.requests_to("POST", "/sdapi/v1/txt2img")[-1].json
    assert (sent["prompt"], sent["seed"], sent["sampler_name"]) == ("a green apple", 5, "Euler")

    missing = plugin.invoke_tool(PROVIDER, "txt2img", creds(standin), {"generation_info": {**info, "model": "rand-z"}})
    assert missing.error["message"].startswith("The WebUI has no model named 'rand-z'.")
    assert len(standin.requests_to("POST", "/sdapi/v1/txt2img")) == 1


def test_invalid_generation_info_is_refused_before_any_request(plugin, standin):
    result = plugin.invoke_tool(PROVIDER, "txt2img", creds(standin), {"generation_info": '{"prompt": "a red apple", '})
    assert result.error["error_type"] == "InvokeBadRequestError"
    assert result.error["message"].startswith("generation_info is not valid JSON")
    assert standin.requests == []


# ---- Describe image ----------------------------------------------------------------------------------------------

def test_interrogate_gives_the_llm_one_line_and_workflows_a_prompt(plugin, standin, files):
    generated = plugin.invoke_tool(PROVIDER, "txt2img", creds(standin), {"prompt": "x", "width": 64, "height": 64, "steps": 2})
    image = files.add(generated.blobs[0].data)
    result = plugin.invoke_tool(PROVIDER, "interrogate", creds(standin), {"image": image, "interrogator": "deepdanbooru"})
    assert result.error is None, result.error
    caption = result.texts[-1]
    assert "theme" in caption and "\n" not in caption
    assert result.variables["prompt"] == caption == result.jsons[0]["prompt"]
    assert result.variables["interrogator"] == "deepdanbooru"
    assert standin.requests_to("POST", "/sdapi/v1/interrogate")[-1].init_images == [generated.blobs[0].data]


def test_interrogate_on_sdcpp_and_with_missing_weights_is_one_sentence(plugin, files):
    from tests.conftest import png_bytes

    image = files.add(png_bytes(16, 16))
    with StandInWebUI("sdcpp") as webui:
        sdcpp = plugin.invoke_tool(PROVIDER, "interrogate", creds(webui), {"image": image})
    assert sdcpp.error["error_type"] == "InvokeBadRequestError"
    assert sdcpp.error["message"].startswith("The stable-diffusion.cpp server cannot describe images")
    with StandInWebUI("a1111") as webui:
        webui.interrogator_weights_missing = True
        broken = plugin.invoke_tool(PROVIDER, "interrogate", creds(webui), {"image": image, "interrogator": "clip"})
    assert broken.error["error_type"] == "InvokeServerUnavailableError"
    assert "interrogator failed" in broken.error["message"] and "Traceback" not in broken.error["message"]
