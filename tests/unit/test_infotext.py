"""The one infotext parser, on the real infotexts recorded from Forge, stable-diffusion.cpp and SD.Next."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sdwebui.infotext import parse_infotext
from tests.fixtures.load import FIXTURES_DIR, load_fixture


def _recorded_generations() -> list[tuple[str, dict]]:
    """(fixture name, parsed info) of every recorded txt2img/img2img answer that carries infotexts."""
    found = []
    for path in sorted(Path(FIXTURES_DIR).glob("*/post_*.json")):
        if path.stem.endswith("_short"):
            continue
        body = json.loads(path.read_text(encoding="utf-8"))["response"].get("json")
        if isinstance(body, dict) and isinstance(body.get("info"), str) and "infotexts" in body["info"]:
            found.append((f"{path.parent.name}/{path.stem}", json.loads(body["info"])))
    return found


RECORDED = _recorded_generations()


def test_every_family_is_covered():
    assert {name.split("/")[0] for name, _ in RECORDED} == {"forge", "a1111", "sdcpp", "sdnext"}
    assert len(RECORDED) >= 25


@pytest.mark.parametrize(("name", "info"), RECORDED, ids=[name for name, _ in RECORDED])
def test_recorded_infotexts_agree_with_the_servers_own_info(name, info):
    parsed = parse_infotext(info["infotexts"][0])
    assert parsed.found
    assert parsed.seed == info["all_seeds"][0]
    assert parsed.steps == info["steps"]
    assert parsed.cfg_scale == pytest.approx(info["cfg_scale"])
    assert (parsed.width, parsed.height) == (info["width"], info["height"])
    # The prompt comes back without its <lora:...> tags (they are in loras).
    assert parsed.prompt == info["prompt"].split(" <lora:")[0]
    assert parsed.negative_prompt == (info.get("negative_prompt") or "")
    assert parsed.model.removesuffix(".safetensors") in ("rand-a", "rand-b")


def test_forge_infotext_matches_forges_own_png_info_parse():
    """post_png_info.json: Forge parsed the same text; both readings agree field by field."""
    answer = load_fixture("forge/post_png_info")["response"]["json"]
    parsed = parse_infotext(answer["info"])
    server = answer["parameters"]
    assert parsed.prompt == server["Prompt"] and parsed.negative_prompt == server["Negative prompt"]
    assert str(parsed.steps) == server["Steps"] and str(parsed.seed) == server["Seed"]
    assert parsed.sampler == server["Sampler"] and parsed.scheduler == server["Schedule type"]
    assert str(parsed.cfg_scale) == server["CFG scale"]
    assert (str(parsed.width), str(parsed.height)) == (server["Size-1"], server["Size-2"])
    assert parsed.model_hash == server["Model hash"] and parsed.version == server["Version"]
    assert parsed.model == "rand-a"


def test_forge_lora_tags_move_from_the_prompt_to_loras():
    info = json.loads(load_fixture("forge/post_txt2img_with_lora")["response"]["json"]["info"])
    parsed = parse_infotext(info["infotexts"][0])
    assert parsed.prompt == "a red apple"
    assert [(lora.name, lora.weight) for lora in parsed.loras] == [("rand-lora", 0.8)]
    assert parsed.fields["Lora hashes"] == "rand-lora: aa8719060cd6"  # quoted value with a colon, unquoted once
    assert "<lora:rand-lora:0.8>" in parsed.infotext  # the raw text is kept as read


def test_sdcpp_combined_sampler_is_split_and_its_json_tail_does_not_break_the_pairs():
    info = json.loads(load_fixture("sdcpp/post_txt2img_sampler_scheduler")["response"]["json"]["info"])
    parsed = parse_infotext(info["infotexts"][0])
    assert (parsed.sampler, parsed.scheduler) == ("euler_a", "karras")
    assert parsed.cfg_scale == 7.0 and parsed.model == "rand-a.safetensors"
    assert parsed.version == "stable-diffusion.cpp"
    assert "SDCPP" not in parsed.fields and not any("{" in value for value in parsed.fields.values())


def test_sdcpp_default_sampler_none_and_loras_from_its_json():
    info = json.loads(load_fixture("sdcpp/post_txt2img_lora_array")["response"]["json"]["info"])
    parsed = parse_infotext(info["infotexts"][0])
    assert parsed.fields["Sampler"] == "NONE" and parsed.sampler is None
    assert [(lora.name, lora.weight) for lora in parsed.loras] == [("rand-lora", 0.8)]


def test_sdcpp_clip_skip():
    info = json.loads(load_fixture("sdcpp/post_txt2img_clip_skip")["response"]["json"]["info"])
    assert parse_infotext(info["infotexts"][0]).clip_skip == 2


def test_sdnext_empty_negative_line_and_app_name():
    info = json.loads(load_fixture("sdnext/post_txt2img_hires_latent")["response"]["json"]["info"])
    parsed = parse_infotext(info["infotexts"][0])
    assert parsed.negative_prompt == "" and parsed.prompt == "a red apple"
    assert parsed.version == "SD.Next"  # its Version is "unknown"; App names it
    assert parsed.model_hash == "38b3a15ec8" and parsed.fields["Hires steps"] == "1"


def test_multiline_prompts_and_a_quoted_value_with_commas():
    text = ('a castle,\non a hill\nNegative prompt: blurry,\nlowres\n'
            'Steps: 30, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 5.5, Seed: 42, Size: 768x512, '
            'Model: sdxl, TI hashes: "a: 1, b: 2", Clip skip: 2')
    parsed = parse_infotext(text)
    assert parsed.prompt == "a castle,\non a hill" and parsed.negative_prompt == "blurry,\nlowres"
    assert parsed.fields["TI hashes"] == "a: 1, b: 2"
    assert (parsed.steps, parsed.cfg_scale, parsed.seed, parsed.width, parsed.height) == (30, 5.5, 42, 768, 512)
    assert (parsed.sampler, parsed.scheduler, parsed.clip_skip) == ("DPM++ 2M", "Karras", 2)


def test_a_last_line_with_fewer_than_three_pairs_is_still_prompt():
    parsed = parse_infotext("portrait\nstyle: baroque, mood: dark")
    assert parsed.prompt == "portrait\nstyle: baroque, mood: dark" and parsed.fields == {}


@pytest.mark.parametrize("text", ["", "   ", "\n\n", "Steps: x, Seed: y, Size: big, CFG scale: inf", "\x00\xff garbage, : :"])
def test_odd_texts_never_raise(text):
    parsed = parse_infotext(text)
    assert parsed.seed is None and parsed.width is None and parsed.cfg_scale is None
