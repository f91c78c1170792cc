"""Tool parameters are checked before any HTTP call, each failure in one sentence."""

from __future__ import annotations

import math

import pytest

from sdwebui.errors import InvalidInput
from sdwebui.settings import PRESETS, read_sampling


def test_defaults_suit_sd15():
    s = read_sampling({"prompt": "a cat"})
    assert (s.width, s.height, s.steps, s.cfg_scale, s.seed, s.batch_size) == (512, 512, 20, 7.0, -1, 1)
    assert s.sampler == "" and s.hires is None


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"prompt": ""}, "prompt is empty"),
        ({"prompt": "   "}, "prompt is empty"),
        ({"prompt": "x", "width": 0}, "width must be between 64 and 2048; got 0"),
        ({"prompt": "x", "width": -512}, "width must be between 64 and 2048"),
        ({"prompt": "x", "width": 100000}, "width must be between 64 and 2048"),
        ({"prompt": "x", "width": 500}, "width must be a multiple of 8; got 500 .try 496 or 504"),
        ({"prompt": "x", "height": "abc"}, "height must be a number; got 'abc'"),
        ({"prompt": "x", "height": float("nan")}, "height must be a finite number"),
        ({"prompt": "x", "steps": "nan"}, "steps must be a finite number"),
        ({"prompt": "x", "steps": float("inf")}, "steps must be a finite number"),
        ({"prompt": "x", "steps": 20.5}, "steps must be a whole number"),
        ({"prompt": "x", "steps": 0}, "steps must be between 1 and 150"),
        ({"prompt": "x", "steps": True}, "steps must be a number"),
        ({"prompt": "x", "cfg_scale": 99}, "cfg_scale must be between 1 and 30"),
        ({"prompt": "x", "seed": -2}, "seed must be between -1 and 4294967295"),
        ({"prompt": "x", "batch_size": 9}, "batch_size must be between 1 and 8"),
        ({"prompt": "x", "clip_skip": 13}, "clip_skip must be between 1 and 12"),
        ({"prompt": "x", "preset": "ultra"}, "preset must be one of"),
        ({"prompt": "x", "enable_hr": "maybe"}, "enable_hr must be true or false"),
        ({"prompt": "x", "enable_hr": True, "hr_scale": 9}, "hr_scale must be between 1 and 4"),
        ({"prompt": "x", "enable_hr": True, "denoising_strength": 1.5}, "denoising_strength must be between 0 and 1"),
        ({"prompt": ["a", "list"]}, "prompt must be text"),
    ],
)
def test_bad_values_are_rejected_with_a_clear_sentence(params, message):
    with pytest.raises(InvalidInput, match=message):
        read_sampling(params)


@pytest.mark.parametrize("value", [768, 768.0, "768", " 768 "])
def test_numbers_may_arrive_as_int_float_or_text(value):
    assert read_sampling({"prompt": "x", "width": value}).width == 768


def test_empty_strings_mean_not_given():
    s = read_sampling({"prompt": "x", "width": "", "steps": None, "seed": ""})
    assert (s.width, s.steps, s.seed) == (512, 20, -1)


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_fill_what_was_not_given(name):
    p = PRESETS[name]
    s = read_sampling({"prompt": "x", "preset": name})
    assert (s.steps, s.cfg_scale, s.sampler, s.width, s.height) == (p.steps, p.cfg_scale, p.sampler, p.width, p.height)
    assert s.scheduler == (p.scheduler or "")


def test_explicit_values_override_the_preset():
    s = read_sampling({"prompt": "x", "preset": "quality", "steps": 12, "width": 640, "sampler_name": "Euler"})
    assert (s.steps, s.width, s.height, s.cfg_scale, s.sampler) == (12, 640, 768, 10.0, "Euler")


def test_the_text_field_wins_over_the_dropdown():
    s = read_sampling({"prompt": "x", "model": "rand-a", "model_name": "rand-b", "sampler": "Euler", "sampler_name": ""})
    assert (s.model, s.sampler) == ("rand-b", "Euler")


def test_lora_dropdown_joins_the_lora_field():
    s = read_sampling({"prompt": "x", "loras": "a:0.5", "lora": "rand-lora", "lora_weight": 0.7})
    assert s.loras == "a:0.5, rand-lora:0.7"


def test_hires_defaults():
    h = read_sampling({"prompt": "x", "enable_hr": "true"}).hires
    assert (h.scale, h.upscaler, h.second_pass_steps, h.denoising_strength) == (2.0, "", 0, 0.5)  # "": the server's latent default
    assert not math.isnan(h.scale)
