"""ControlNet and ADetailer through the stdio runtime, as Dify runs the plugin, with the control image as a Dify file."""

from __future__ import annotations

import base64

import pytest

from tests.conftest import png_bytes
from tests.standin.webui import StandInWebUI

PROVIDER = "sd_webui"
OPENPOSE = "control_v11p_sd15_openpose [cab727d4]"


@pytest.fixture
def extended():
    with StandInWebUI("forge", controlnet=True, adetailer=True) as server:
        yield server


def creds(server: StandInWebUI) -> dict:
    return {"base_url": server.base_url}


def received(server: StandInWebUI) -> dict:
    return server.requests_to("POST", "/sdapi/v1/txt2img")[-1].json


BASE = {"prompt": "a dancer on a stage", "width": 64, "height": 64, "steps": 2, "seed": 99, "batch_size": 2}


def test_txt2img_with_a_controlnet_unit_from_a_dify_file_and_adetailer(plugin, extended, files):
    pose = png_bytes(48, 48, (0, 0, 0))
    params = {**BASE, "controlnet_image": files.add(pose, filename="pose.png"), "controlnet_module_name": "none",
              "controlnet_model_name": "control_v11p_sd15_openpose", "controlnet_weight": 0.8,
              "adetailer": True, "adetailer_model": "face_yolov8n.pt", "adetailer_prompt": "detailed face, smiling",
              "adetailer_negative_prompt": "blurry", "adetailer_denoising_strength": 0.35}
    result = plugin.invoke_tool(PROVIDER, "txt2img", creds(extended), params)
    assert result.error is None, result.error
    scripts = received(extended)["alwayson_scripts"]
    assert base64.b64decode(scripts["ControlNet"]["args"][0]["image"]) == pose  # raw base64 of the Dify file
    assert scripts == {
        "ControlNet": {"args": [{
            "enabled": True, "image": scripts["ControlNet"]["args"][0]["image"], "module": "None", "model": OPENPOSE,
            "weight": 0.8, "guidance_start": 0.0, "guidance_end": 1.0, "control_mode": "Balanced",
            "resize_mode": "Crop and Resize", "pixel_perfect": False, "save_detected_map": True}]},
        "ADetailer": {"args": [True, False, {"ad_model": "face_yolov8n.pt", "ad_prompt": "detailed face, smiling",
                                             "ad_negative_prompt": "blurry", "ad_denoising_strength": 0.35}]},
    }
    assert extended.errors == [] and extended.extension_log == []
    assert [b.data for b in result.blobs] == extended.last_images  # files: the generated images only
    assert [b.filename for b in result.blobs] == ["sd-99.png", "sd-100.png"]
    assert result.variables["maps"] == []
    assert "ADetailer model: face_yolov8n.pt" in result.jsons[0]["infotexts"][0]



def test_detected_maps_are_extra_files_named_in_maps_only_when_asked(plugin, extended, files):
    params = {**BASE, "controlnet_image": files.add(png_bytes(32, 32)), "controlnet_model": OPENPOSE,
              "controlnet_module": "canny", "controlnet_return_maps": True}
    result = plugin.invoke_tool(PROVIDER, "txt2img", creds(extended), params)
    assert result.error is None, result.error
    assert received(extended)["alwayson_scripts"]["ControlNet"]["args"][0]["save_detected_map"] is True
    assert [b.filename for b in result.blobs] == ["sd-99.png", "sd-100.png", "controlnet-map-1.png"]
    assert [b.data for b in result.blobs[:2]] == extended.last_images
    assert result.variables["maps"] == ["controlnet-map-1.png"] and result.jsons[0]["seeds"] == [99, 100]


@pytest.mark.parametrize(("flavor_kwargs", "params", "message"), [
    ({}, {"controlnet_model_name": OPENPOSE, "controlnet_image": "FILE"},
     "ControlNet is not installed on this WebUI; install the sd-webui-controlnet extension (Forge has it built in), "
     "put ControlNet models in models/ControlNet and restart the WebUI, or leave the ControlNet fields empty."),
    ({}, {"adetailer": True},
     "ADetailer is not installed on this WebUI; install the ADetailer extension (Bing-su/adetailer) and restart the WebUI, "
     "or turn ADetailer off."),
    ({"controlnet": True}, {"controlnet_model_name": "openpose_v2", "controlnet_image": "FILE"},
     "The WebUI has no ControlNet model (unit 1) named 'openpose_v2'. Closest: control_v11p_sd15_openpose [cab727d4]."),
])
def test_missing_extensions_and_unknown_models_end_in_one_sentence(plugin, files, flavor_kwargs, params, message):
    with StandInWebUI("forge", **flavor_kwargs) as server:
        if params.get("controlnet_image") == "FILE":
            params = {**params, "controlnet_image": files.add(png_bytes())}
        result = plugin.invoke_tool(PROVIDER, "txt2img", creds(server), {**BASE, **params})
        assert [r for r in server.requests if r.method == "POST"] == []
    assert result.error == {"error_type": "InvokeBadRequestError", "message": message, "args": result.error.get("args")}


@pytest.mark.parametrize(("extra", "message"), [
    ('{"subseed": 1,', "extra_params is not valid JSON ("),
    ('{"override_settings": {"sd_vae": "x"}}', "extra_params may not set override_settings: the plugin sets it from its own parameters"),
    ('{"subseed_strenght": 0.5}', "extra_params has key the WebUI's txt2img does not accept: subseed_strenght; allowed keys are"),
])
def test_bad_extra_params_end_in_one_sentence_before_any_http_call(plugin, extended, extra, message):
    result = plugin.invoke_tool(PROVIDER, "txt2img", creds(extended), {**BASE, "extra_params": extra})
    assert result.error["error_type"] == "InvokeBadRequestError"
    assert result.error["message"].startswith(message)
    assert extended.requests == []


def test_dropdowns_list_the_extensions_models(plugin, extended):
    def values(parameter):
        answer = plugin.fetch_parameter_options(PROVIDER, "txt2img", parameter, creds(extended))
        return [o["value"] for o in answer.messages[0]["options"]]

    assert values("controlnet_model") == ["control_v11p_sd15_canny [d14c016b]", OPENPOSE, "control_v11f1p_sd15_depth [cfd03158]"]
    assert values("controlnet2_module")[:2] == ["None", "canny"]
    assert values("adetailer_model")[0] == "face_yolov8n.pt"
    assert values("vae")[0] == "ae.safetensors" and values("style") == ["cinematic", "watercolor"]
