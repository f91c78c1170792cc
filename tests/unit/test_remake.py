"""'Make it again': txt2img's generation_info, read before any HTTP call, under the explicit fields."""

from __future__ import annotations

import json

import pytest

from sdwebui.errors import InvalidInput
from sdwebui.infotext import parse_infotext
from sdwebui.remake import read_generation_info, txt2img_parameters
from sdwebui.remake import with_generation_info
from sdwebui.settings import read_sampling
from tests.fixtures.load import load_fixture

FORGE_INFO = load_fixture("forge/post_png_info")["response"]["json"]["info"]
LORA_INFOTEXT = json.loads(load_fixture("forge/post_txt2img_with_lora")["response"]["json"]["info"])["infotexts"][0]


def png_info_json(text: str = LORA_INFOTEXT) -> dict:
    return {"found": True, "source": "PNG text chunk", **parse_infotext(text).to_json()}


def test_png_info_json_becomes_the_sampling_settings():
    settings = read_sampling(with_generation_info({"generation_info": png_info_json()}))
    assert (settings.prompt, settings.seed, settings.steps, settings.cfg_scale) == ("a red apple", 1234, 2, 7.0)
    assert (settings.width, settings.height, settings.sampler, settings.model) == (64, 64, "Euler", "rand-a")
    assert settings.loras == "rand-lora:0.8"
    assert settings.scheduler == ""  # "Automatic" is the sampler's default: left to the server


@pytest.mark.parametrize("form", ["dict", "json text", "list of one", "list as text", "python repr", "infotext"])
def test_every_form_a_workflow_or_llm_may_send(form):
    data = png_info_json(FORGE_INFO)
    value = {"dict": data, "json text": json.dumps(data), "list of one": [data], "list as text": json.dumps([data]),
             "python repr": str([data]), "infotext": FORGE_INFO}[form]
    settings = read_sampling(with_generation_info({"generation_info": value}))
    assert (settings.prompt, settings.seed, settings.width, settings.sampler) == ("a red apple", 1234, 64, "Euler")


def test_explicit_fields_win_and_the_forms_seed_default_does_not():
    params = {"generation_info": png_info_json(), "prompt": "a green pear", "steps": 20, "seed": -1,
              "sampler_name": "DDIM", "model_name": "rand-b", "loras": ""}
    settings = read_sampling(with_generation_info(params))
    assert (settings.prompt, settings.steps, settings.seed) == ("a green pear", 20, 1234)
    assert (settings.sampler, settings.model, settings.loras) == ("DDIM", "rand-b", "rand-lora:0.8")
    assert read_sampling(with_generation_info({**params, "seed": 99})).seed == 99


def test_the_size_the_webui_really_made_is_used():
    """Forge records 100x60 but makes 96x56 (forge/post_txt2img_size_not_multiple_of_8); 56 is below the plugin's 64."""
    info = json.loads(load_fixture("forge/post_txt2img_size_not_multiple_of_8")["response"]["json"]["info"])
    settings = read_sampling(with_generation_info({"generation_info": info["infotexts"][0]}))
    assert (settings.width, settings.height) == (96, 64)
    assert txt2img_parameters({"width": 4000, "height": 517}) == {"width": 2048, "height": 512}


def test_sdcpp_names_are_carried_over():
    info = json.loads(load_fixture("sdcpp/post_txt2img_sampler_scheduler")["response"]["json"]["info"])
    params = txt2img_parameters(read_generation_info(info["infotexts"][0]))
    assert (params["sampler"], params["scheduler"], params["model"]) == ("euler_a", "karras", "rand-a.safetensors")


def test_without_generation_info_nothing_changes():
    params = {"prompt": "x", "seed": -1}
    assert with_generation_info(params) is params
    assert with_generation_info({**params, "generation_info": "  "})["seed"] == -1


@pytest.mark.parametrize(("value", "message"), [
    ('{"prompt": "a", "seed": 12', "generation_info is not valid JSON"),
    ("[1, 2]", "generation_info must be one JSON object; got list"),
    ("just some words", "neither JSON nor a WebUI infotext"),
    ({"found": False, "source": ""}, "carries no generation parameters"),
    ({"prompt": "a", "loras": 5}, "generation_info.loras must be a list"),
])
def test_unusable_generation_info_is_one_sentence(value, message):
    with pytest.raises(InvalidInput) as caught:
        read_sampling(with_generation_info({"generation_info": value}))
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_bad_values_inside_are_checked_like_typed_ones():
    with pytest.raises(InvalidInput, match="steps must be between 1 and 150; got 999"):
        read_sampling(with_generation_info({"generation_info": {"prompt": "a", "steps": 999}}))
