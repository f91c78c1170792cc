"""The txt2img flow against recorded Forge shapes: model switching, payload, images, silent fallbacks."""

from __future__ import annotations

import json

import pytest

from sdwebui import errors
from sdwebui.client import WebUIClient
from sdwebui.deadline import Deadline
from sdwebui.generation import Generation
from sdwebui.settings import read_sampling
from tests.conftest import API, BASE, fixture_json, generation_body, png_bytes


def run(webui, params, default_model=""):
    generation = Generation(WebUIClient(BASE), default_model=default_model)
    return generation.txt2img(read_sampling(params), Deadline(30))


def test_no_options_post_when_the_model_is_already_active(webui):
    webui.answer_txt2img()
    run(webui, {"prompt": "a red apple"}, default_model="rand-a")
    assert webui.calls("POST", "options") == []
    body = webui.sent_json("txt2img")
    assert body["override_settings"] == {"sd_model_checkpoint": "rand-a.safetensors [17b6bb621c]"}
    assert body["override_settings_restore_afterwards"] is False


def test_switches_by_title_only_when_another_model_is_active(webui):
    webui.answer_txt2img(generation_body([png_bytes()], sd_model_name="rand-b"))
    result = run(webui, {"prompt": "a red apple", "model_name": "rand-b"})
    assert [json.loads(c.request.body) for c in webui.calls("POST", "options")] == [{"sd_model_checkpoint": "rand-b.safetensors"}]
    assert len(webui.calls("GET", "options")) == 1  # no confirming GET: behind a load balancer it could reach another WebUI
    assert result.model_switched
    assert webui.sent_json("txt2img")["override_settings"]["sd_model_checkpoint"] == "rand-b.safetensors"


def test_payload_is_explicit(webui):
    webui.answer_txt2img()
    run(webui, {"prompt": "cat", "negative_prompt": "dog", "width": 640, "height": 384, "steps": 12, "cfg_scale": 5.5, "seed": 7, "batch_size": 1})
    body = webui.sent_json("txt2img")
    expected = {"prompt": "cat", "negative_prompt": "dog", "width": 640, "height": 384, "steps": 12, "cfg_scale": 5.5,
                "seed": 7, "batch_size": 1, "n_iter": 1, "send_images": True, "save_images": False}
    assert {k: body[k] for k in expected} == expected
    assert "sampler_name" not in body and "enable_hr" not in body and "override_settings" not in body


def test_every_image_from_index_of_first_image_with_its_seed(webui):
    grid, a, b = png_bytes(16, 16, (0, 0, 0)), png_bytes(color=(1, 2, 3)), png_bytes(color=(4, 5, 6))
    webui.answer_txt2img(generation_body([grid, a, b], seeds=[11, 12], index_of_first_image=1))
    result = run(webui, {"prompt": "x", "batch_size": 2})
    assert [i.data for i in result.images] == [a, b]
    assert [i.filename for i in result.images] == ["sd-11.png", "sd-12.png"]


def test_mime_type_comes_from_the_bytes(webui):
    jpeg = png_bytes(fmt="JPEG")
    webui.answer_txt2img(generation_body([jpeg], seeds=[5]))
    image = run(webui, {"prompt": "x"}).images[0]
    assert (image.mime_type, image.filename) == ("image/jpeg", "sd-5.jpg")


@pytest.mark.parametrize(
    ("images", "message"),
    [([], "without any image"), (["not base64!!"], "not valid base64"), (["aGVsbG8gd29ybGQ="], "not a PNG, JPEG or WebP")],
)
def test_unusable_images_are_errors(webui, images, message):
    body = generation_body([png_bytes()])
    body["images"] = images
    webui.answer_txt2img(body)
    with pytest.raises(errors.MalformedResponse, match=message):
        run(webui, {"prompt": "x"})


def test_a_model_switch_that_silently_failed_is_an_error(webui):
    webui.answer_txt2img(generation_body([png_bytes()], sd_model_name="rand-a"))
    with pytest.raises(errors.ServerError, match="Asked for model 'rand-b.safetensors' but the WebUI generated with 'rand-a"):
        run(webui, {"prompt": "x", "model_name": "rand-b"})


def test_unknown_model_lists_the_closest_before_generating(webui):
    with pytest.raises(errors.NotFound, match="no model named 'rand-z'"):
        run(webui, {"prompt": "x", "model_name": "rand-z"})
    assert webui.calls("POST", "txt2img") == []


def test_sampler_and_scheduler_are_checked_and_sent_as_the_server_names_them(webui):
    webui.answer_txt2img()
    run(webui, {"prompt": "x", "sampler_name": "dpm++ 2m", "scheduler_name": "Karras"})
    body = webui.sent_json("txt2img")
    assert (body["sampler_name"], body["scheduler"]) == ("DPM++ 2M", "karras")


def test_legacy_combined_sampler_names_are_split(webui):
    webui.answer_txt2img()
    run(webui, {"prompt": "x", "sampler_name": "DPM++ 2M Karras"})
    body = webui.sent_json("txt2img")
    assert (body["sampler_name"], body["scheduler"]) == ("DPM++ 2M", "karras")


def test_unknown_sampler_is_refused_instead_of_silently_replaced(webui):
    with pytest.raises(errors.NotFound, match="no sampler named 'NoSuchSampler'"):
        run(webui, {"prompt": "x", "sampler_name": "NoSuchSampler"})


def test_a_silent_sampler_fallback_becomes_a_warning(webui):
    recorded = fixture_json("bad_txt2img_unknown_sampler_short")
    info = json.loads(recorded["info"])
    webui.answer_txt2img(generation_body([png_bytes(512, 512)], sampler_name=info["sampler_name"], infotexts=info["infotexts"]))
    result = run(webui, {"prompt": "x", "sampler_name": "Euler"})
    assert result.warnings == ["The WebUI used sampler 'DPM++ 2M' instead of 'Euler'."]
    assert result.summary()["warnings"] == result.warnings


def test_loras_become_prompt_tags_and_are_checked_in_info(webui):
    recorded = json.loads(fixture_json("post_txt2img_with_lora_short")["info"])
    webui.answer_txt2img(generation_body([png_bytes(512, 512)], extra_generation_params=recorded["extra_generation_params"], infotexts=recorded["infotexts"]))
    result = run(webui, {"prompt": "a red apple", "loras": "rand-lora:0.8"})
    assert webui.sent_json("txt2img")["prompt"] == "a red apple <lora:rand-lora:0.8>"
    assert result.warnings == []


def test_a_lora_missing_from_info_is_a_warning(webui):
    webui.answer_txt2img()
    result = run(webui, {"prompt": "a red apple", "loras": "rand-lora"})
    assert result.warnings == ["LoRA 'rand-lora' does not appear in the generation info, so it was probably not applied."]


def test_a_silent_scheduler_fallback_becomes_a_warning(webui):
    recorded = json.loads(fixture_json("bad_txt2img_unknown_scheduler_short")["info"])  # asked karras-like, got Automatic
    webui.answer_txt2img(generation_body([png_bytes(512, 512)], infotexts=recorded["infotexts"]))
    result = run(webui, {"prompt": "x", "scheduler_name": "karras"})
    assert result.warnings == ["The WebUI used scheduler 'Automatic' instead of 'karras'."]


def test_unknown_lora_is_refused(webui):
    with pytest.raises(errors.NotFound, match="no LoRA named 'nope'.*rand-lora"):
        run(webui, {"prompt": "x", "loras": "nope:0.5"})


def test_hires_fix_always_sends_denoising_strength(webui):
    webui.answer_txt2img()
    run(webui, {"prompt": "x", "enable_hr": True, "hr_upscaler_name": "latent", "hr_scale": 1.5})
    body = webui.sent_json("txt2img")
    assert {k: body[k] for k in ("enable_hr", "hr_scale", "hr_upscaler", "hr_second_pass_steps", "denoising_strength")} == {
        "enable_hr": True, "hr_scale": 1.5, "hr_upscaler": "Latent", "hr_second_pass_steps": 0, "denoising_strength": 0.5}


def test_clip_skip_is_an_override_on_forge(webui):
    webui.answer_txt2img()
    run(webui, {"prompt": "x", "clip_skip": 2})
    body = webui.sent_json("txt2img")
    assert body["override_settings"] == {"CLIP_stop_at_last_layers": 2} and "clip_skip" not in body
