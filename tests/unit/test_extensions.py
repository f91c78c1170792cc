"""ControlNet, ADetailer, refiner, VAE, styles and extra parameters: reading, checks, and the exact payloads.

Run against the stand-in WebUI with the extensions installed or not (tests/standin/extensions.py, shaped on
Mikubill/sd-webui-controlnet, Forge's sd_forge_controlnet and Bing-su/adetailer).
"""

from __future__ import annotations

import io

import pytest
from PIL import Image

from sdwebui import errors
from sdwebui.catalog import Catalog, overview
from sdwebui.client import WebUIClient
from sdwebui.deadline import Deadline
from sdwebui.extensions import ADetailerSettings, ControlNetUnitSettings, adetailer_args, controlnet_unit, read_extension_settings
from sdwebui.generation import Generation, Img2ImgInputs
from sdwebui.settings import Img2ImgControls, read_sampling
from tests.conftest import b64, png_bytes
from tests.standin.webui import StandInWebUI

CONTROL_IMAGE = b64(png_bytes(32, 32, (10, 200, 10)))
OPENPOSE = "control_v11p_sd15_openpose [cab727d4]"


def never_fetch(name: str, what: str) -> str:
    raise AssertionError(f"{name} was fetched although the settings were refused")


def extras(params: dict, mode: str = "txt2img", image: str = CONTROL_IMAGE):
    return read_extension_settings(params, mode=mode, read_image=lambda name, what: image)


def generate(server: StandInWebUI, params: dict, *, mode: str = "txt2img"):
    sampling = read_sampling({"prompt": "a dancer", "width": 64, "height": 64, "steps": 2, "seed": 7, **params})
    generation = Generation(WebUIClient(server.base_url))
    if mode == "img2img":
        inputs = Img2ImgInputs(init_image=b64(png_bytes(64, 64)), controls=Img2ImgControls(), input_size=(64, 64))
        return generation.img2img(sampling, inputs, Deadline(30), extras(params, "img2img"))
    return generation.txt2img(sampling, Deadline(30), extras(params))


def sent(server: StandInWebUI, route: str = "txt2img") -> dict:
    return server.requests_to("POST", f"/sdapi/v1/{route}")[-1].json


def posts(server: StandInWebUI) -> list:
    return [r for r in server.requests if r.method == "POST"]


CONTROLNET = {"controlnet_image": "file", "controlnet_model": "control_v11p_sd15_openpose"}


# ---- payload shapes --------------------------------------------------------------------------------------------


def test_controlnet_unit_has_the_shape_both_controlnets_read():
    unit = ControlNetUnitSettings(slot=1, image="QUJD", model="m", weight=0.8, guidance_end=0.9, control_mode="My prompt is more important",
                                  resize_mode="Just Resize", pixel_perfect=True)
    assert controlnet_unit(unit, model="m [1]", module="none", save_detected_map=False) == {
        "enabled": True, "image": "QUJD", "module": "none", "model": "m [1]", "weight": 0.8, "guidance_start": 0.0,
        "guidance_end": 0.9, "control_mode": "My prompt is more important", "resize_mode": "Just Resize",
        "pixel_perfect": True, "save_detected_map": False}


def test_adetailer_args_are_enable_skip_then_one_args_object():
    settings = ADetailerSettings(model="x", prompt="detailed face", negative_prompt="blurry", denoising_strength=0.35)
    assert adetailer_args(settings, model="face_yolov8n.pt") == [True, False, {
        "ad_model": "face_yolov8n.pt", "ad_prompt": "detailed face", "ad_negative_prompt": "blurry", "ad_denoising_strength": 0.35}]


@pytest.mark.parametrize(("flavor", "none"), [("a1111", "none"), ("forge", "None")])
def test_txt2img_with_controlnet_and_adetailer_sends_the_exact_alwayson_scripts(flavor, none):
    with StandInWebUI(flavor, controlnet=True, adetailer=True) as server:
        result = generate(server, {**CONTROLNET, "controlnet_module": "NONE", "controlnet_weight": 0.7, "controlnet_pixel_perfect": True,
                                   "adetailer": True, "adetailer_prompt": "detailed face"})
        assert sent(server)["alwayson_scripts"] == {
            "ControlNet": {"args": [{
                "enabled": True, "image": CONTROL_IMAGE, "module": none, "model": OPENPOSE, "weight": 0.7,
                "guidance_start": 0.0, "guidance_end": 1.0, "control_mode": "Balanced", "resize_mode": "Crop and Resize",
                "pixel_perfect": True, "save_detected_map": True}]},
            "ADetailer": {"args": [True, False, {"ad_model": "face_yolov8n.pt", "ad_prompt": "detailed face",
                                                 "ad_negative_prompt": "", "ad_denoising_strength": 0.4}]},
        }
        assert server.errors == [] and server.extension_log == []
        assert result.info.extra_generation_params["ADetailer model"] == "face_yolov8n.pt"
        assert len(result.images) == 1 and result.maps == []


def test_two_units_and_img2img():
    with StandInWebUI("a1111", controlnet=True) as server:
        generate(server, {**CONTROLNET, "controlnet2_image": "file", "controlnet2_model_name": "control_v11f1p_sd15_depth",
                          "controlnet2_module_name": "depth_midas", "controlnet2_control_mode": "controlnet",
                          "controlnet2_guidance_start": 0.2}, mode="img2img")
        units = sent(server, "img2img")["alwayson_scripts"]["ControlNet"]["args"]
    assert [(u["module"], u["model"], u["control_mode"], u["guidance_start"]) for u in units] == [
        ("none", OPENPOSE, "Balanced", 0.0),
        ("depth_midas", "control_v11f1p_sd15_depth [cfd03158]", "ControlNet is more important", 0.2)]


def test_detected_maps_come_back_separately_and_only_when_asked():
    with StandInWebUI("forge", controlnet=True) as server:
        plain = generate(server, {**CONTROLNET, "batch_size": 2})
        assert len(plain.images) == 2 and plain.maps == []
        asked = generate(server, {**CONTROLNET, "batch_size": 2, "controlnet_module": "invert", "controlnet_return_maps": True})
        answer_images = 3  # two generated, then the map
        assert sent(server)["alwayson_scripts"]["ControlNet"]["args"][0]["save_detected_map"] is True
    assert len(asked.images) == 2 and len(asked.maps) == answer_images - 2
    assert [i.data for i in asked.images] == server.last_images
    assert asked.summary()["maps"] == ["controlnet-map-1.png"]
    inverted = Image.open(io.BytesIO(asked.maps[0].data)).convert("RGB").getpixel((0, 0))
    assert inverted == (245, 55, 245)  # the stand-in's 'invert' map of the green control image


def test_a_ready_made_map_with_preprocessor_none_passes_through():
    with StandInWebUI("a1111", controlnet=True) as server:
        result = generate(server, {**CONTROLNET, "controlnet_return_maps": True})
    assert Image.open(io.BytesIO(result.maps[0].data)).convert("RGB").getpixel((5, 5)) == (10, 200, 10)


def test_refiner_vae_styles_and_extra_params_reach_the_request():
    with StandInWebUI("a1111") as server:
        generate(server, {"refiner_name": "rand-b", "refiner_switch_at": 0.7, "vae_name": "sdxl_vae", "style_name": "Cinematic, watercolor",
                          "extra_params": '{"subseed": 3, "subseed_strength": 0.2, "tiling": true}'})
        body = sent(server)
    assert body["refiner_checkpoint"] == "rand-b.safetensors" and body["refiner_switch_at"] == 0.7
    assert body["override_settings"] == {"sd_vae": "sdxl_vae.safetensors"} and body["override_settings_restore_afterwards"] is False
    assert body["styles"] == ["cinematic", "watercolor"]
    assert (body["subseed"], body["subseed_strength"], body["tiling"]) == (3, 0.2, True)


def test_forge_vae_goes_through_forge_additional_modules():
    with StandInWebUI("forge") as server:
        generate(server, {"vae": "vae-ft-mse-840000-ema-pruned.safetensors", "model_name": "rand-b"})
        overrides = sent(server)["override_settings"]
    assert overrides == {"sd_model_checkpoint": "rand-b.safetensors",
                         "forge_additional_modules": ["/srv/stable-diffusion-webui/models/VAE/vae-ft-mse-840000-ema-pruned.safetensors"]}


def test_nothing_asked_costs_no_extra_request():
    with StandInWebUI("forge", controlnet=True, adetailer=True) as server:
        generate(server, {})
        assert "alwayson_scripts" not in sent(server) and "styles" not in sent(server)
        assert not [r for r in server.requests if r.path.startswith(("/controlnet", "/adetailer", "/sdapi/v1/sd-vae"))]


# ---- missing extensions, unknown names: one sentence, nothing posted -----------------------------------------


@pytest.mark.parametrize(("params", "message"), [
    (CONTROLNET, "ControlNet is not installed on this WebUI; install the sd-webui-controlnet extension"),
    ({"adetailer": True}, "ADetailer is not installed on this WebUI; install the ADetailer extension"),
])
def test_a_missing_extension_is_one_sentence_before_anything_is_posted(params, message):
    with StandInWebUI("forge") as server:
        with pytest.raises(errors.Unsupported) as caught:
            generate(server, {**params, "model_name": "rand-b"})  # not even the model switch happens
        assert posts(server) == []
    assert str(caught.value).startswith(message) and str(caught.value).count(". ") == 0


@pytest.mark.parametrize(("params", "message"), [
    ({**CONTROLNET, "controlnet_model": "control_v11p_sd15_openpse"},
     "The WebUI has no ControlNet model (unit 1) named 'control_v11p_sd15_openpse'. Closest: control_v11p_sd15_openpose [cab727d4]"),
    ({**CONTROLNET, "controlnet_module_name": "openpose_ful"},
     "The WebUI has no ControlNet preprocessor (unit 1) named 'openpose_ful'. Closest: openpose_full, openpose"),
    ({"adetailer": True, "adetailer_model_name": "face_yolo8n.pt"},
     "The WebUI has no ADetailer model named 'face_yolo8n.pt'. Closest: face_yolov8n.pt, face_yolov8s.pt"),
    ({"vae_name": "vae-ft-mse"}, "The WebUI has no VAE named 'vae-ft-mse'. Closest: vae-ft-mse-840000-ema-pruned.safetensors"),
    ({"style_name": "cinematc"}, "The WebUI has no prompt style named 'cinematc'. Closest: cinematic"),
    ({"refiner_name": "rand-q"}, "The WebUI has no model named 'rand-q'. Closest available:"),
])
def test_unknown_names_get_the_closest_ones_before_anything_is_posted(params, message):
    with StandInWebUI("a1111", controlnet=True, adetailer=True) as server:
        with pytest.raises(errors.NotFound) as caught:
            generate(server, params)
        assert posts(server) == []
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(("flavor", "params", "message"), [
    ("sdnext", CONTROLNET, "ControlNet is not supported by SD.Next (it has its own control API"),
    ("sdcpp", {"adetailer": True}, "ADetailer is not supported by stable-diffusion.cpp server"),
    ("sdnext", {"refiner_name": "rand-a"}, "The refiner is not supported by SD.Next (it needs A1111 1.6+ or Forge); leave it empty for this server."),
    ("sdcpp", {"vae_name": "x"}, "Choosing a VAE is not supported by stable-diffusion.cpp server"),
    ("sdcpp", {"extra_params": '{"eta": 0.5}'}, "The extra_params field is not supported by stable-diffusion.cpp server (it silently ignores"),
])
def test_servers_without_the_feature_say_so(flavor, params, message):
    with StandInWebUI(flavor) as server:
        with pytest.raises(errors.Unsupported) as caught:
            generate(server, params)
        assert posts(server) == []
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(("params", "message"), [
    ({"controlnet_image": "file"}, "ControlNet unit 1 has a control image but no model;"),
    ({"controlnet2_model": "x"}, "ControlNet unit 2 has a model but no control image;"),
    ({**CONTROLNET, "controlnet_guidance_start": 0.8, "controlnet_guidance_end": 0.5}, "ControlNet unit 1 starts its guidance (0.8) after it ends (0.5);"),
    ({**CONTROLNET, "controlnet_weight": 3}, "controlnet_weight must be between 0 and 2; got 3."),
    ({**CONTROLNET, "controlnet_control_mode": "loud"}, "controlnet_control_mode must be one of: balanced, prompt, controlnet; got 'loud'."),
    ({**CONTROLNET, "extra_params": "{nope"}, "extra_params is not valid JSON"),
])
def test_bad_controls_are_refused_before_any_file_is_fetched(params, message):
    with pytest.raises(errors.InvalidInput) as caught:
        read_extension_settings(params, mode="txt2img", read_image=never_fetch)
    assert str(caught.value).startswith(message)


def test_the_stand_in_rejects_an_unknown_always_on_script_like_a1111():
    with StandInWebUI("a1111") as server:
        import requests

        got = requests.post(server.base_url + "/sdapi/v1/txt2img", json={"prompt": "x", "width": 64, "height": 64, "steps": 1,
                                                                         "alwayson_scripts": {"ControlNet": {"args": []}}})
    assert (got.status_code, got.json()["detail"]) == (422, "always on script ControlNet not found")


def test_a_server_rejection_of_a_unit_is_one_sentence():
    """If the lists changed between the check and the job, the WebUI's own error still comes back as one sentence."""
    with StandInWebUI("a1111", controlnet=True) as server:
        import requests

        # An unknown module (from the extension's source); an unknown model is skipped silently (a1111/controlnet/).
        unit = {"enabled": True, "image": CONTROL_IMAGE, "module": "gone", "model": OPENPOSE}
        got = requests.post(server.base_url + "/sdapi/v1/txt2img", json={"prompt": "x", "width": 64, "height": 64, "steps": 1,
                                                                         "alwayson_scripts": {"controlnet": {"args": [unit]}}})
    assert got.status_code == 500 and "module(gone) not found in supported modules." in got.text


# ---- lists -------------------------------------------------------------------------------------------------------


def test_list_resources_gains_the_extension_lists():
    with StandInWebUI("a1111", controlnet=True, adetailer=True) as server:
        listed = overview(Catalog(WebUIClient(server.base_url)), Deadline(10))
    assert listed["controlnet_models"][0] == "control_v11p_sd15_canny [d14c016b]" and "None" not in listed["controlnet_models"]
    assert listed["controlnet_modules"][:2] == ["none", "canny"]
    assert listed["adetailer_models"][0] == "face_yolov8n.pt"
    assert listed["vaes"] == ["vae-ft-mse-840000-ema-pruned.safetensors", "sdxl_vae.safetensors"]
    assert listed["styles"] == ["cinematic", "watercolor"]


def test_list_resources_says_null_for_what_is_not_installed():
    with StandInWebUI("forge") as server:
        listed = overview(Catalog(WebUIClient(server.base_url)), Deadline(10), ["controlnet_models", "controlnet_modules", "adetailer_models", "vaes"])
    assert listed["controlnet_models"] is None and listed["controlnet_modules"] is None and listed["adetailer_models"] is None
    assert "ae.safetensors" in listed["vaes"]


# ---- an older ControlNet that sends its maps anyway ----------------------------------------------------------------


@pytest.mark.parametrize("return_maps", [False, True])
def test_maps_a_server_sends_anyway_never_become_generated_images(webui, return_maps):
    """The answer is [generated..., maps...]: files take len(all_seeds) images; maps only when asked for."""
    from tests.conftest import BASE, generation_body

    webui.rsps.get(BASE + "/controlnet/model_list", json={"model_list": ["None", OPENPOSE]})
    webui.rsps.get(BASE + "/controlnet/module_list", json={"module_list": ["None", "openpose"]})
    generated, detected = png_bytes(8, 8, (1, 2, 3)), png_bytes(8, 8, (250, 250, 250))
    webui.answer_txt2img(generation_body([generated, detected], seeds=[41]))
    sampling = read_sampling({"prompt": "x"})
    settings = extras({**CONTROLNET, "controlnet_module": "openpose", "controlnet_return_maps": return_maps})
    result = Generation(WebUIClient(BASE)).txt2img(sampling, Deadline(30), settings)
    assert [i.data for i in result.images] == [generated] and result.seeds == [41]
    assert [m.data for m in result.maps] == ([detected] if return_maps else [])


def test_detection_and_lists_are_cached_like_the_other_lists():
    with StandInWebUI("forge", controlnet=True, adetailer=True) as server:
        for _ in range(2):
            generate(server, {**CONTROLNET, "adetailer": True, "style": "cinematic", "vae": "ae.safetensors"})
        gets = [r.path for r in server.requests if r.method == "GET"]
    for route in ("/controlnet/model_list", "/controlnet/module_list", "/adetailer/v1/ad_model", "/sdapi/v1/prompt-styles",
                  "/sdapi/v1/sd-modules"):
        assert gets.count(route) == 1, route


def test_the_stand_in_fails_an_unknown_refiner_and_skips_an_invalid_adetailer_dict_like_the_real_ones():
    import requests

    with StandInWebUI("a1111", adetailer=True) as server:
        url = server.base_url + "/sdapi/v1/txt2img"
        base = {"prompt": "x", "width": 64, "height": 64, "steps": 1}
        refiner = requests.post(url, json={**base, "refiner_checkpoint": "nope"})
        skipped = requests.post(url, json={**base, "alwayson_scripts": {"ADetailer": {"args": [True, False, {"ad_model": "face_yolov8n.pt", "ad_typo": 1}]}}})
        log = list(server.extension_log)
    assert refiner.status_code == 500 and "Could not find checkpoint with name nope" in refiner.text
    assert skipped.status_code == 200 and "ADetailer model" not in skipped.json()["info"]
    assert log == ["[-] ADetailer: invalid arguments, extra fields not permitted: ['ad_typo']"]


# ---- a unit that did not run (fixtures a1111/controlnet/ and forge/webui_mode/ *_save_detected_map_ran / *_skipped_*) ----

@pytest.mark.parametrize("flavor", ["a1111", "forge"])
def test_a_controlnet_unit_that_returned_no_map_is_reported_as_not_run(flavor):
    with StandInWebUI(flavor, controlnet=True) as server:
        server.offline = True  # the openpose preprocessor needs weights it cannot download: the unit is skipped
        skipped = generate(server, {**CONTROLNET, "controlnet_module": "openpose"})
        ran = generate(server, {**CONTROLNET, "controlnet_module": "canny"})
    [warning] = [w for w in skipped.warnings if "ControlNet" in w]
    assert warning.startswith("ControlNet unit 1 (openpose, ") and "probably did not run" in warning
    assert skipped.images and skipped.maps == []  # the image is kept, the map (not asked for) is not returned
    assert not [w for w in ran.warnings if "ControlNet" in w] and ran.maps == []
