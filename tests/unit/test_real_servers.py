"""What real Forge, stable-diffusion.cpp and SD.Next servers showed, replayed from their recordings.

Each mock below answers with the recorded bodies of tests/fixtures/<server>/, so these tests
check the plugin against what those servers really said, not against the stand-in.
"""

from __future__ import annotations

import base64
import io
import json

import pytest
import responses
from PIL import Image

from sdwebui import errors
from sdwebui.client import WebUIClient
from sdwebui.deadline import Deadline
from sdwebui.generation import Generation, Img2ImgInputs
from sdwebui.settings import UpscaleSettings, read_img2img_controls, read_sampling, read_upscale
from sdwebui.upscaling import upscale
from tests.conftest import API, BASE, b64, fixture_json, png_bytes
from tests.standin.webui import StandInWebUI
from tests.fixtures.load import load_fixture

# Every field stable-diffusion.cpp's server reads from a txt2img/img2img body (routes_sdapi.cpp,
# build_sdapi_img_gen_request at the recorded commit). Anything else it silently ignores.
SDCPP_READS = {"prompt", "negative_prompt", "width", "height", "steps", "cfg_scale", "seed", "batch_size", "clip_skip",
               "sampler_name", "scheduler", "enable_hr", "hr_scale", "hr_resize_x", "hr_resize_y", "hr_steps",
               "denoising_strength", "hr_upscaler", "lora", "init_images", "mask", "inpainting_mask_invert", "extra_images"}


def recorded(name: str) -> dict:
    return load_fixture(name)["response"]["json"]


def image_of(body: dict, index: int = 0) -> bytes:
    return base64.b64decode(body["images"][index])


def size_of(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as img:
        return img.size


class Recorded:
    """A `responses` mock of one real server, answering with its recordings."""

    def __init__(self, rsps: responses.RequestsMock, server: str, lists: dict[str, str | None]) -> None:
        self.rsps = rsps
        for route, fixture in lists.items():
            if fixture is None:
                rsps.get(f"{API}/{route}", body=b"", status=404)  # sd.cpp: 404 with an empty body
            else:
                answer = load_fixture(f"{server}/{fixture}")["response"]
                rsps.get(f"{API}/{route}", json=answer["json"], status=answer["status"])

    def answer(self, route: str, body: dict | None = None, status: int = 200, *, when=None) -> None:
        """POST /route answers ``body``; with ``when(sent) -> (status, body)`` the answer depends on the request."""
        def reply(request):
            sent = json.loads(request.body)
            code, answer = when(sent) if when else (status, body)
            return code, {}, json.dumps(answer) if answer is not None else ""
        self.rsps.add_callback(responses.POST, f"{API}/{route}", callback=reply)

    def sent(self, route: str, index: int = -1) -> dict:
        calls = [c for c in self.rsps.calls if c.request.method == "POST" and c.request.url == f"{API}/{route}"]
        return json.loads(calls[index].request.body)

    def posted(self, route: str) -> int:
        return len([c for c in self.rsps.calls if c.request.method == "POST" and c.request.url == f"{API}/{route}"])


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def sdcpp(rsps):
    return Recorded(rsps, "sdcpp", {
        "options": "get_options", "version": None, "sd-models": "get_sd_models", "samplers": "get_samplers",
        "schedulers": "get_schedulers", "loras": "get_loras", "upscalers": "get_upscalers",
        "latent-upscale-modes": "get_latent_upscale_modes", "progress": None,
    })


@pytest.fixture
def sdnext(rsps):
    return Recorded(rsps, "sdnext", {
        "options": "get_options", "version": "get_version", "sd-models": "get_sd_models", "samplers": "get_samplers",
        "schedulers": "get_schedulers", "loras": "get_loras", "upscalers": "get_upscalers",
        "latent-upscale-modes": "get_latent_upscale_modes",
    })


@pytest.fixture
def forge(rsps):
    mock = Recorded(rsps, "forge", {
        "options": "get_options", "sd-models": "get_sd_models", "samplers": "get_samplers", "schedulers": "get_schedulers",
        "loras": "get_loras", "upscalers": "get_upscalers", "latent-upscale-modes": "get_latent_upscale_modes",
        "sd-modules": "get_sd_modules",
    })
    rsps.get(f"{API}/version", json={"detail": "Not Found"}, status=404)
    return mock


def generate(params: dict, *, default_model: str = "", img2img: Img2ImgInputs | None = None):
    generation = Generation(WebUIClient(BASE), default_model=default_model)
    size = {} if img2img is not None else {"width": 64, "height": 64}  # img2img follows its input
    settings = read_sampling({**size, "steps": 2, **params}, prompt_required=img2img is None)
    if img2img is not None:
        return generation.img2img(settings, img2img, Deadline(30))
    return generation.txt2img(settings, Deadline(30))


def img2img_inputs(width: int, height: int, params: dict | None = None, mask: bool = False) -> Img2ImgInputs:
    image = base64.b64encode(png_bytes(width, height)).decode()
    return Img2ImgInputs(init_image=image, controls=read_img2img_controls(params or {}), input_size=(width, height),
                         mask=image if mask else None)


# ---- Forge: hires fix needs hr_additional_modules ---------------------------------------------------------------

def forge_hires_rule(sent: dict) -> tuple[int, dict]:
    """Forge's real answer: 500 TypeError without hr_additional_modules, the recorded image with it."""
    if sent.get("enable_hr") and not isinstance(sent.get("hr_additional_modules"), list):
        return 500, recorded("forge/bad_txt2img_hires_without_hr_additional_modules")
    return 200, recorded("forge/post_txt2img_hires_with_hr_additional_modules")


def test_forge_hires_fix_sends_hr_additional_modules_and_reports_the_upscaled_size(forge):
    forge.answer("txt2img", when=forge_hires_rule)
    result = generate({"prompt": "a red apple", "seed": 1234, "enable_hr": True, "hr_scale": 1.5, "hr_second_pass_steps": 1})
    sent = forge.sent("txt2img")
    assert sent["hr_additional_modules"] == ["Use same choices"]
    assert (sent["hr_upscaler"], sent["hr_second_pass_steps"], sent["denoising_strength"]) == ("Latent", 1, 0.5)
    assert (result.info.width, result.info.height) == (64, 64)  # info keeps the first-pass size...
    summary = result.summary()
    assert (summary["width"], summary["height"]) == (96, 96)  # ...the image is 96x96, and that is what is reported
    assert summary["images"][0]["width"] == 96 and result.warnings == []


def test_forge_reports_the_model_info_names_by_its_title(forge):
    forge.answer("txt2img", recorded("forge/post_txt2img"))
    result = generate({"prompt": "a red apple"})
    assert result.summary()["model"] == "rand-a.safetensors [17b6bb621c]"


# ---- sizes: the bytes are the truth ------------------------------------------------------------------------------

def test_a_size_the_server_changed_is_reported_from_the_image_with_a_warning(forge):
    forge.answer("txt2img", recorded("sdcpp/post_txt2img_size_rounded_up_to_64"))  # a 128x128 image for 64x64
    result = generate({"prompt": "a red apple"})
    assert (result.summary()["width"], result.summary()["height"]) == (128, 128)
    assert result.warnings == ["The Forge made 128x128 images instead of 64x64 (it changed the size); "
                               "the sizes reported are the images' own."]


def test_a_size_rounded_to_the_servers_multiple_is_explained():
    from sdwebui import sizes

    assert "(it makes sizes in multiples of 64)" in sizes.describe_difference("x", 64, (96, 72), (128, 128))
    assert "(it makes sizes in multiples of 8)" in sizes.describe_difference("x", 8, (780, 780), (776, 776))


def test_sdcpp_is_asked_for_multiples_of_64_and_the_warning_says_so(sdcpp):
    sdcpp.answer("txt2img", recorded("sdcpp/post_txt2img"))
    result = generate({"prompt": "a red apple", "width": 1000, "height": 600})
    sent = sdcpp.sent("txt2img")
    assert (sent["width"], sent["height"]) == (960, 576)  # 5:3 kept exactly
    assert "only makes sizes in multiples of 64, so 960x576 was asked for instead of 1000x600" in result.warnings[0]


def test_sdcpp_img2img_keeps_the_input_aspect_as_closely_as_multiples_of_64_allow(sdcpp):
    body = recorded("sdcpp/post_img2img")
    sdcpp.answer("img2img", body)
    result = generate({"prompt": "oil painting"}, img2img=img2img_inputs(96, 64))
    sent = sdcpp.sent("img2img")
    assert (sent["width"], sent["height"]) == (192, 128)  # 3:2 like the input; sd.cpp on its own makes 128x64
    assert any("192x128 was asked for instead of 96x64" in w for w in result.warnings)
    assert size_of(image_of(body)) == (128, 64) and result.images[0].width == 128  # the recorded 2:1 answer, as it is


def test_sdnext_hires_that_did_not_upscale_is_named(sdnext):
    sdnext.rsps.post(f"{API}/options", json={"updated": [{"sd_model_checkpoint": True}]})
    sdnext.answer("txt2img", recorded("sdnext/post_txt2img_hires_latent"))
    result = generate({"prompt": "a red apple", "enable_hr": True, "hr_scale": 1.5})
    assert "hires fix did not upscale" in result.warnings[0] and result.summary()["width"] == 64


# ---- stable-diffusion.cpp: only what it honours ------------------------------------------------------------------

def test_sdcpp_gets_only_fields_it_reads(sdcpp):
    sdcpp.answer("txt2img", recorded("sdcpp/post_txt2img_hires"))
    lora = fixture_json("sdcpp/get_loras")[0]
    generate({"prompt": "a red apple", "seed": 1234, "sampler_name": "DPM++ 2M Karras", "loras": f"{lora['name']}:0.8",
              "clip_skip": 2, "enable_hr": True, "hr_scale": 2, "hr_second_pass_steps": 1})
    sent = sdcpp.sent("txt2img")
    assert set(sent) <= SDCPP_READS, set(sent) - SDCPP_READS
    assert (sent["sampler_name"], sent["scheduler"]) == ("dpm++2m", "karras")  # the combined name split into its native names
    assert sent["hr_steps"] == 1 and sent["lora"] == [{"path": "rand-lora.safetensors", "multiplier": 0.8}]
    assert "<lora:" not in sent["prompt"]


@pytest.mark.parametrize(("asked", "native"), [("DDIM", "ddim_trailing"), ("Euler a", "euler_a"), ("k_dpmpp_2m", "dpm++2m")])
def test_sdcpp_webui_sampler_names_become_its_native_names(sdcpp, asked, native):
    sdcpp.answer("txt2img", recorded("sdcpp/post_txt2img"))
    generate({"prompt": "a red apple", "sampler_name": asked})
    assert sdcpp.sent("txt2img")["sampler_name"] == native


@pytest.mark.parametrize(("params", "message"), [
    ({"prompt": "x", "steps": 101}, "at most 100 steps"),
    ({"prompt": "x", "scheduler_name": "Turbo"}, "no scheduler named 'Turbo'"),
])
def test_sdcpp_refuses_before_sending_what_it_would_silently_ignore(sdcpp, params, message):
    with pytest.raises(errors.WebUIError, match=message):
        generate(params)
    assert sdcpp.posted("txt2img") == 0


def test_sdcpp_img2img_refuses_controls_it_does_not_have_and_needs_a_prompt(sdcpp):
    with pytest.raises(errors.Unsupported, match="does not support mask blur, inpaint area and would ignore them"):
        generate({"prompt": "x"}, img2img=img2img_inputs(64, 64, {"mask_blur": 8, "inpaint_area": "only_masked"}, mask=True))
    with pytest.raises(errors.InvalidInput, match="needs a prompt"):
        generate({"prompt": ""}, img2img=img2img_inputs(64, 64))
    assert sdcpp.posted("img2img") == 0


def test_sdcpp_inpainting_sends_the_mask_and_nothing_it_ignores(sdcpp):
    sdcpp.answer("img2img", recorded("sdcpp/post_img2img_inpaint"))
    generate({"prompt": "oil painting"}, img2img=img2img_inputs(64, 64, {"invert_mask": True}, mask=True))
    sent = sdcpp.sent("img2img")
    assert set(sent) <= SDCPP_READS and sent["inpainting_mask_invert"] == 1 and sent["mask"]


def test_sdcpp_cannot_upscale_and_says_so_before_sending(sdcpp):
    with pytest.raises(errors.Unsupported, match=r"stable-diffusion.cpp server cannot upscale .*AUTOMATIC1111, Forge or SD.Next"):
        upscale(WebUIClient(BASE), "aGk=", UpscaleSettings(upscaler="Lanczos"), Deadline(10))
    assert sdcpp.posted("extra-single-image") == 0


def test_a_route_a_known_server_lacks_is_not_called_the_api_being_off(sdcpp):
    from sdwebui.catalog import Catalog

    client = WebUIClient(BASE)
    Catalog(client).server(Deadline(10))
    sdcpp.rsps.post(f"{API}/png-info", body=b"", status=404)
    with pytest.raises(errors.Unsupported, match=r"stable-diffusion.cpp server .* has no POST /sdapi/v1/png-info") as raised:
        client.post("png-info", {"image": "x"}, deadline=Deadline(5))
    assert "--api" not in str(raised.value)


# ---- SD.Next: its names, its hires default, its model switching -------------------------------------------------

def test_sdnext_legacy_combined_name_becomes_sampler_and_sigma_setting(sdnext):
    sdnext.answer("txt2img", recorded("sdnext/post_txt2img_next_call"))
    generate({"prompt": "a red apple", "sampler_name": "DPM++ 2M Karras"})
    sent = sdnext.sent("txt2img")
    assert sent["sampler_name"] == "DPM++ 2M" and "scheduler" not in sent
    assert sent["override_settings"]["schedulers_sigma"] == "karras"


def test_sdnext_hires_default_upscaler_is_one_it_lists(sdnext):
    sdnext.answer("txt2img", recorded("sdnext/post_txt2img_hires_latent"))
    generate({"prompt": "a red apple", "enable_hr": True})
    assert sdnext.sent("txt2img")["hr_upscaler"] == "Latent Nearest"  # it has no plain "Latent"


def test_sdnext_loaded_model_comes_from_its_hash_not_from_options(sdnext):
    """Recorded: options name sub/rand-b, but rand-a is loaded (sd_checkpoint_hash) and info says rand-a."""
    sdnext.answer("txt2img", recorded("sdnext/post_txt2img_next_call"))
    result = generate({"prompt": "a red apple"})
    assert fixture_json("sdnext/get_options")["sd_model_checkpoint"] == "sub/rand-b [7ba778b605]"
    assert result.summary()["model"] == "rand-a [38b3a15ec8]"


def test_sdnext_switch_posts_options_then_reloads_the_checkpoint(sdnext):
    """Its POST /options only stores the setting in API mode: /reload-checkpoint loads the model."""
    sdnext.rsps.post(f"{API}/options", json=recorded("sdnext/post_options_switch_to_b"))
    sdnext.rsps.post(f"{API}/reload-checkpoint", json={})
    after = recorded("sdnext/post_txt2img_next_call")
    info = json.loads(after["info"])
    info["sd_model_hash"] = "7ba778b605"  # what it answers once rand-b is really loaded
    sdnext.answer("txt2img", {**after, "info": json.dumps(info)})
    result = generate({"prompt": "a red apple", "model_name": "sub/rand-b"})
    assert sdnext.sent("options") == {"sd_model_checkpoint": "sub/rand-b [7ba778b605]"}
    assert sdnext.posted("reload-checkpoint") == 1 and result.model_switched
    assert result.summary()["model"] == "sub/rand-b [7ba778b605]"


def test_sdnext_switch_that_did_not_happen_is_an_error_not_a_wrong_image(sdnext):
    sdnext.rsps.post(f"{API}/options", json=recorded("sdnext/post_options_switch_to_b"))
    sdnext.rsps.post(f"{API}/reload-checkpoint", json={})
    sdnext.answer("txt2img", recorded("sdnext/post_txt2img_right_after_switch"))  # still rand-a's hash
    with pytest.raises(errors.ServerError, match=r"Asked for model 'sub/rand-b \[7ba778b605\]' but the WebUI generated with 'rand-a \[38b3a15ec8\]'"):
        generate({"prompt": "a red apple", "model_name": "sub/rand-b"})


def test_the_scheduler_dropdown_is_never_an_empty_list(sdnext):
    from sdwebui.catalog import Catalog
    from tools.webui_tool import OPTION_SOURCES

    options = OPTION_SOURCES["scheduler"](Catalog(WebUIClient(BASE)), Deadline(10))
    assert [o.value for o in options] == ["default", "karras", "exponential", "polyexponential"]
    assert "SD.Next has no separate scheduler" in options[1].label.en_us


def test_a_server_without_schedulers_says_so_in_the_dropdown(forge, rsps):
    from sdwebui.catalog import Catalog
    from tools.webui_tool import OPTION_SOURCES

    rsps.replace(responses.GET, f"{API}/schedulers", json={"detail": "Not Found"}, status=404)  # A1111 before 1.9
    [option] = OPTION_SOURCES["scheduler"](Catalog(WebUIClient(BASE)), Deadline(10))
    assert option.value == "automatic" and "has no separate scheduler" in option.label.en_us
    forge.answer("txt2img", recorded("forge/post_txt2img"))
    generate({"prompt": "a red apple", "scheduler_name": option.value})  # choosing it asks for none
    assert "scheduler" not in forge.sent("txt2img")


def test_list_resources_names_the_model_sdnext_really_has_loaded(sdnext):
    from sdwebui.catalog import Catalog, overview

    result = overview(Catalog(WebUIClient(BASE)), Deadline(10), ["models", "schedulers"])
    assert result["server"] == "SD.Next" and result["active_model"] == "rand-a [38b3a15ec8]"  # options say sub/rand-b
    assert result["schedulers"] == ["default", "karras", "exponential", "polyexponential"]


@pytest.mark.parametrize(("asked", "fitted"), [
    ((96, 64), (192, 128)),    # 3:2 kept exactly; sd.cpp on its own would make 128x64
    ((1000, 600), (960, 576)),  # 5:3 kept exactly, a little smaller
    ((600, 800), (576, 768)),
    ((1920, 1080), (1920, 1088)),
    ((768, 512), (768, 512)),   # already multiples of 64: unchanged
])
def test_sizes_for_sdcpp_keep_the_aspect(asked, fitted):
    from sdwebui import sizes

    assert sizes.fit_to_multiple(*asked, 64) == fitted


def test_an_empty_list_becomes_one_option_that_says_so_and_chooses_nothing(forge, rsps):
    from sdwebui.settings import read_loras, read_sampling
    from tools.txt2img import Txt2ImgTool

    rsps.replace(responses.GET, f"{API}/loras", json=[])
    tool = Txt2ImgTool.__new__(Txt2ImgTool)
    tool.runtime = type("Runtime", (), {"credentials": {"base_url": BASE}})()
    [option] = tool._fetch_parameter_options("lora")
    assert "lists no LoRAs" in option.label.en_us
    assert read_loras({"lora": option.value}) == "" and read_sampling({"prompt": "x", "lora": option.value}).loras == ""
    assert tool._fetch_parameter_options("sampler")  # a list the server has stays as it is


def test_an_older_sdnext_without_reload_checkpoint_still_switches_and_info_decides(sdnext):
    """Before /reload-checkpoint existed (or with its UI hook), SD.Next's POST /options itself loads the model."""
    sdnext.rsps.post(f"{API}/options", json=recorded("sdnext/post_options_switch_to_b"))
    sdnext.rsps.post(f"{API}/reload-checkpoint", json={"detail": "Not Found"}, status=404)
    after = recorded("sdnext/post_txt2img_next_call")
    sdnext.answer("txt2img", {**after, "info": after["info"].replace("38b3a15ec8", "7ba778b605")})
    result = generate({"prompt": "a red apple", "model_name": "sub/rand-b"})
    assert result.summary()["model"] == "sub/rand-b [7ba778b605]"


def test_a_route_missing_on_a_webui_suggests_updating_it_not_switching_to_it(sdnext):
    from sdwebui.catalog import Catalog

    client = WebUIClient(BASE)
    Catalog(client).server(Deadline(10))
    sdnext.rsps.post(f"{API}/png-info", json={"detail": "Not Found"}, status=404)
    with pytest.raises(errors.Unsupported) as raised:
        client.post("png-info", {"image": "x"}, deadline=Deadline(5))
    assert str(raised.value).endswith("so it cannot do this; update the SD.Next, or use another WebUI of the family that has it.")


# ---- SD.Next 058a7f0 (2026): tests/fixtures/sdnext/058a7f0/ ---------------------------------------------------------

@pytest.fixture
def sdnext_2026(rsps):
    return Recorded(rsps, "sdnext/058a7f0", {
        "options": "get_options", "version": "get_version", "sd-models": "get_sd_models", "samplers": "get_samplers",
        "schedulers": "get_schedulers", "loras": "get_loras", "upscalers": "get_upscalers",
        "latent-upscale-modes": "get_latent_upscale_modes", "progress": "get_progress",
    })


def test_current_sdnext_takes_a_combined_sampler_name_although_its_options_lack_schedulers_sigma(sdnext_2026):
    """Its GET /options returns only changed settings (34 keys): the sigma setting is not among them."""
    sdnext_2026.answer("txt2img", recorded("sdnext/058a7f0/post_txt2img"))
    generate({"prompt": "a red apple", "sampler_name": "DPM++ 2M Karras"})
    sent = sdnext_2026.sent("txt2img")
    assert sent["sampler_name"] == "DPM++ 2M"
    assert sent["schedulers_sigma"] == "karras" and sent["override_settings"]["schedulers_sigma"] == "karras"


def test_current_sdnext_hires_fix_sends_resize_mode_and_a_non_latent_upscaler(sdnext_2026):
    """Recorded: without hr_resize_mode nothing is upscaled; hr_resize_mode 1 + Resize Lanczos gives 128x128 for 64x64 x2."""
    answer = recorded("sdnext/058a7f0/post_txt2img_hires_resize_lanczos_resize_mode_1")
    sdnext_2026.answer("txt2img", answer)
    result = generate({"prompt": "a red apple", "enable_hr": True, "hr_scale": 2})
    sent = sdnext_2026.sent("txt2img")
    assert (sent["hr_resize_mode"], sent["hr_force"], sent["hr_upscaler"]) == (1, True, "Resize Lanczos")
    assert (result.images[0].width, result.images[0].height) == (128, 128)
    assert not [w for w in result.warnings if "hires" in w.lower() or "size" in w.lower()]
    with pytest.raises(errors.Unsupported, match="latent hires upscaler"):
        generate({"prompt": "a red apple", "enable_hr": True, "hr_scale": 2, "hr_upscaler": "Latent Nearest"})


def test_an_empty_answer_after_sdnext_unloaded_its_model_is_explained(sdnext_2026):
    """Recorded: after POST /options with an unknown name SD.Next has no model and answers 200 with images: []."""
    sdnext_2026.answer("txt2img", recorded("sdnext/058a7f0/post_txt2img_after_unknown_model_no_model_loaded"))
    with pytest.raises(errors.MalformedResponse, match="it has no model loaded.*choose a listed model"):
        generate({"prompt": "a red apple"})


def test_an_unknown_model_name_never_reaches_sdnext(sdnext_2026):
    with pytest.raises(errors.NotFound):
        generate({"prompt": "a red apple", "model_name": "no-such-model"})
    assert sdnext_2026.posted("options") == 0 and sdnext_2026.posted("txt2img") == 0


def test_current_sdnext_upscale_failure_is_one_plain_sentence(sdnext_2026, rsps):
    answer = load_fixture("sdnext/058a7f0/post_extra_single_image_resize_lanczos")["response"]
    rsps.post(f"{API}/extra-single-image", json=answer["json"], status=answer["status"])
    with pytest.raises(errors.ServerError) as caught:
        upscale(WebUIClient(BASE), b64(png_bytes(32, 32)), read_upscale({"upscaler": "Resize Lanczos", "scale": 2}), Deadline(10))
    assert str(caught.value).startswith("This SD.Next version's upscale route")
    assert "validation error" not in str(caught.value)


def test_a1111_nans_failure_says_what_it_means_and_what_to_do():
    """a1111/bad_txt2img_lora_nans_in_unet.json: 500 NansException."""
    with StandInWebUI("a1111") as webui:
        webui.inject("nans")
        with pytest.raises(errors.ServerError) as caught:
            Generation(WebUIClient(webui.base_url)).txt2img(read_sampling({"prompt": "x", "width": 64, "height": 64, "steps": 2}), Deadline(30))
    message = str(caught.value)
    assert "produced NaNs" in message and "--no-half-vae" in message and "another seed" in message
