"""What real servers do differently, over stdio as Dify runs the plugin, against the stand-in's flavours."""

from __future__ import annotations

import io

from PIL import Image

from tests.standin.webui import StandInWebUI

PROVIDER = "sd_webui"


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 120, 200)).save(out, format="PNG")
    return out.getvalue()


def test_forge_hires_fix_reports_the_upscaled_images_size(plugin, standin):
    result = plugin.invoke_tool(PROVIDER, "txt2img", {"base_url": standin.base_url},
                                {"prompt": "a red apple", "width": 64, "height": 64, "steps": 2, "enable_hr": True, "hr_scale": 2})
    assert result.error is None, result.error
    sent = standin.requests_to("POST", "/sdapi/v1/txt2img")[-1].json
    assert sent["hr_additional_modules"] == ["Use same choices"]
    assert Image.open(io.BytesIO(result.blobs[0].data)).size == (128, 128)
    assert (result.variables["width"], result.variables["height"]) == (128, 128)  # not info's first-pass 64x64
    assert result.variables["warnings"] == [] and "128x128" in result.texts[-1]


def test_sdcpp_upscale_is_refused_plainly(plugin, files):
    with StandInWebUI("sdcpp") as server:
        result = plugin.invoke_tool(PROVIDER, "upscale", {"base_url": server.base_url}, {"image": files.add(_png(64, 64))})
        assert result.error["error_type"] == "InvokeBadRequestError"
        assert result.error["message"].startswith("The stable-diffusion.cpp server cannot upscale")
        assert "--api" not in result.error["message"]
        assert not server.requests_to("POST", "/sdapi/v1/extra-single-image")


def test_sdcpp_img2img_keeps_the_inputs_aspect_in_multiples_of_64(plugin, files):
    with StandInWebUI("sdcpp") as server:
        result = plugin.invoke_tool(PROVIDER, "img2img", {"base_url": server.base_url},
                                    {"image": files.add(_png(96, 64)), "prompt": "oil painting", "steps": 2})
        assert result.error is None, result.error
        sent = server.requests_to("POST", "/sdapi/v1/img2img")[-1].json
        assert (sent["width"], sent["height"]) == (192, 128)
        assert Image.open(io.BytesIO(result.blobs[0].data)).size == (192, 128)
        assert any("multiples of 64, so 192x128 was asked for instead of 96x64" in w for w in result.variables["warnings"])


def test_a_hash_naming_two_identical_checkpoints_is_refused_over_stdio(plugin):
    with StandInWebUI.same_file_in_two_folders("forge") as server:
        result = plugin.invoke_tool(PROVIDER, "txt2img", {"base_url": server.base_url},
                                    {"prompt": "x", "width": 64, "height": 64, "steps": 2, "model_name": "38b3a15ec8"})
        assert result.error["error_type"] == "InvokeBadRequestError"
        assert "fits 2 checkpoints (rand-a.safetensors [38b3a15ec8], sub/rand-b.safetensors [38b3a15ec8])" in result.error["message"]
        assert not server.requests_to("POST", "/sdapi/v1/txt2img")
        by_title = plugin.invoke_tool(PROVIDER, "txt2img", {"base_url": server.base_url},
                                      {"prompt": "x", "width": 64, "height": 64, "steps": 2,
                                       "model_name": "sub/rand-b.safetensors [38b3a15ec8]"})
        assert by_title.error is None, by_title.error
        assert by_title.jsons[0]["model"] == "sub/rand-b.safetensors [38b3a15ec8]"


def test_sdnext_switch_really_loads_the_model_and_reports_it(plugin):
    with StandInWebUI("sdnext", models=["rand-a", "sub/rand-b"]) as server:
        result = plugin.invoke_tool(PROVIDER, "txt2img", {"base_url": server.base_url},
                                    {"prompt": "x", "width": 64, "height": 64, "steps": 2, "model_name": "sub/rand-b"})
        assert result.error is None, result.error
        assert server.requests_to("POST", "/sdapi/v1/reload-checkpoint") and server.loaded_model == "rand-b"
        assert result.jsons[0]["model"].startswith("sub/rand-b [")
        plain = plugin.invoke_tool(PROVIDER, "txt2img", {"base_url": server.base_url},
                                   {"prompt": "x", "width": 64, "height": 64, "steps": 2})
        assert plain.jsons[0]["model"] == result.jsons[0]["model"]  # no model asked: the one info names
