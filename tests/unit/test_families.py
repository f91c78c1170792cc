"""sdwebui.families: detection (metadata, modules, names), sizes per aspect, warnings, Forge's Flux modules."""

from __future__ import annotations

import json
import math

import pytest

from sdwebui import families as fam
from tests.fixtures.load import load_fixture


def _answer(name: str) -> dict:
    return load_fixture(name)["response"]["json"]


# ---- metadata ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("server", ["a1111", "forge"])
def test_the_recorded_metadata_answer_names_sdxl(server):
    answer = _answer(f"{server}/sdxl/get_metadata_after_ui_render_item_stem_juggernautXL_rand")
    assert isinstance(answer["metadata"], str)  # a JSON object encoded as a string: parsed twice
    assert fam.parse_metadata(answer)["modelspec.architecture"] == "stable-diffusion-xl-v1-base"
    assert fam.from_metadata(answer) == (fam.SDXL, fam.FROM_METADATA)


@pytest.mark.parametrize("server", ["a1111", "forge"])
@pytest.mark.parametrize("name", ["get_metadata_item_stem_juggernautXL_rand",             # before the UI rendered
                                  "get_metadata_item_stem_juggernautXL_rand_after_load",
                                  "get_metadata_after_ui_render_item_title_juggernautXL_rand",  # title: no match
                                  "get_metadata_after_ui_render_item_filename_juggernautXL_rand",
                                  "get_metadata_after_ui_render_item_stem_plainmodel_rand",     # SDXL, no metadata
                                  "get_metadata_after_ui_render_item_stem_rand_a"])
def test_an_empty_recorded_answer_means_unknown_not_sd15(server, name):
    answer = _answer(f"{server}/sdxl/{name}")
    assert answer == {}
    assert fam.from_metadata(answer) == (fam.UNKNOWN, fam.NOT_FOUND)


@pytest.mark.parametrize("meta, expected", [
    ({"modelspec.architecture": "stable-diffusion-v1"}, "sd15"),
    ({"modelspec.architecture": "stable-diffusion-xl-v1-base"}, "sdxl"),
    ({"modelspec.architecture": "stable-diffusion-xl-v1-base", "modelspec.title": "Pony Diffusion V6 XL"}, "pony"),
    ({"modelspec.architecture": "flux-1-dev"}, "flux_dev"),
    ({"modelspec.architecture": "flux-1-schnell"}, "flux_schnell"),
    ({"modelspec.architecture": "flux-1-dev/lora"}, "flux_dev"),
    ({"modelspec.architecture": "stable-diffusion-3.5-large"}, "sd35"),
    ({"modelspec.architecture": "stable-diffusion-3-medium"}, "sd35"),
    ({"modelspec.architecture": "stable-diffusion-xl-v1-refiner"}, "unknown"),
    ({"ss_base_model_version": "sdxl_base_v1-0"}, "sdxl"),
    ({"ss_base_model_version": "sd_v1"}, "sd15"),
    ({"ss_base_model_version": "flux1"}, "flux_dev"),
    ({"ss_base_model_version": "flux1_schnell"}, "flux_schnell"),
    ({"ss_base_model_version": "sd3"}, "sd35"),
    ({"ss_base_model_version": "sd_v2"}, "unknown"),
    ({"modelspec.title": "something"}, "unknown"),
])
def test_metadata_keys(meta, expected):
    as_answer = {"metadata": json.dumps(meta, indent=4)}  # the form get_metadata answers
    assert fam.from_metadata(as_answer)[0].name == expected
    assert fam.from_metadata(meta)[0].name == expected


@pytest.mark.parametrize("junk", [None, "text", [], {"metadata": "{not json"}, {"metadata": 5}])
def test_unreadable_metadata_is_unknown(junk):
    assert fam.from_metadata(junk)[0] is fam.UNKNOWN


# ---- modules -----------------------------------------------------------------------------------------------------

def test_modules_hint():
    flux = ["/srv/m/VAE/ae.safetensors", "/srv/m/text_encoder/clip_l.safetensors",
            "/srv/m/text_encoder/t5xxl_fp16.safetensors"]
    assert fam.from_modules(flux) == (fam.FLUX_DEV, fam.FROM_MODULES)
    assert fam.from_modules(["clip_l.safetensors", "clip_g.safetensors", "t5xxl_fp8_e4m3fn.safetensors"])[0] is fam.SD35
    assert fam.from_modules(["ae.safetensors"])[0] is fam.FLUX_DEV
    assert fam.from_modules(_answer("forge/sdxl/get_sd_modules"))[0] is fam.UNKNOWN  # recorded: []
    assert fam.from_modules(["sdxl_vae.safetensors"])[0] is fam.UNKNOWN
    assert fam.from_modules(None)[0] is fam.UNKNOWN


# ---- names -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("title, expected", [
    ("juggernautXL_rand.safetensors [c364ef78c9]", "sdxl"),   # the recorded SDXL title
    ("plainmodel_rand.safetensors [cac519af1d]", "unknown"),  # the recorded SDXL file the API cannot tell
    ("rand-a.safetensors [17b6bb621c]", "unknown"),
    ("sub/rand-b.safetensors", "unknown"),
    ("sd_xl_base_1.0.safetensors", "sdxl"),
    ("RealVisXL_V5.0.safetensors", "sdxl"),
    ("juggernautXLv9", "sdxl"),
    ("zavychromaxl_v80.safetensors", "sdxl"),
    ("illustriousXL_v01.safetensors", "sdxl"),
    ("noobaiXLNAIXL_vPred10Version.safetensors", "sdxl"),
    ("animagine-xl-3.1.safetensors", "sdxl"),
    ("ponyDiffusionV6XL_v6StartWithThisOne.safetensors", "pony"),
    ("autismmixSDXL_autismmixPony.safetensors", "pony"),
    ("flux1-dev-fp8.safetensors", "flux_dev"),
    ("flux1-dev-bnb-nf4-v2.safetensors", "flux_dev"),
    ("flux1-schnell.safetensors", "flux_schnell"),
    ("FLUX.1-schnell-Q4_K_S.gguf", "flux_schnell"),
    ("sd3.5_large.safetensors", "sd35"),
    ("sd3_5_medium.safetensors", "sd35"),
    ("sd3.5_large_turbo", "sd35"),
    ("v1-5-pruned-emaonly.safetensors", "sd15"),
    ("sd15_base", "sd15"),
    ("dreamshaper_8.safetensors", "unknown"),
    # "xl" inside ordinary words is no SDXL hint
    ("pixlr_style.safetensors", "unknown"),
    ("axle_grease", "unknown"),
    ("foxlight_v2", "unknown"),
    ("XLabs_something", "unknown"),
    ("", "unknown"),
])
def test_from_name(title, expected):
    found, source = fam.from_name(title)
    assert found.name == expected
    assert source == (fam.NOT_FOUND if expected == "unknown" else fam.FROM_NAME)


# ---- combined ----------------------------------------------------------------------------------------------------

def test_detect_prefers_metadata_and_refines_it_by_name():
    sdxl_meta = _answer("forge/sdxl/get_metadata_after_ui_render_item_stem_juggernautXL_rand")
    assert fam.detect("juggernautXL_rand.safetensors [c364ef78c9]", sdxl_meta) == (fam.SDXL, fam.FROM_METADATA)
    # the file says SDXL, whatever its name says about another family
    assert fam.detect("flux1-dev.safetensors", sdxl_meta) == (fam.SDXL, fam.FROM_METADATA)
    found, source = fam.detect("ponyRealism.safetensors", sdxl_meta)
    assert found is fam.PONY and "metadata" in source and "name" in source
    found, _ = fam.detect("my-flux1-schnell", {"modelspec.architecture": "flux-1"})
    assert found is fam.FLUX_SCHNELL


def test_detect_falls_back_to_name_then_modules():
    empty = _answer("a1111/sdxl/get_metadata_item_stem_juggernautXL_rand")  # {} before the UI rendered
    assert fam.detect("juggernautXL_rand", empty) == (fam.SDXL, fam.FROM_NAME)
    assert fam.detect("plainmodel_rand", empty, ["ae.safetensors", "t5xxl_fp16.safetensors"]) == (
        fam.FLUX_DEV, fam.FROM_MODULES)
    assert fam.detect("plainmodel_rand", empty, []) == (fam.UNKNOWN, fam.NOT_FOUND)


# ---- the table ---------------------------------------------------------------------------------------------------

def test_defaults_match_forges_recorded_ui_presets():
    """Forge's per-family UI defaults, as the recorded /options carry them (forge/sdxl/get_options_before.json)."""
    options = _answer("forge/sdxl/get_options_before")
    assert fam.SD15.cfg == options["sd_t2i_cfg"] == options["sd_t2i_hr_cfg"] == fam.SD15.hires.cfg
    assert fam.SDXL.cfg == options["xl_t2i_cfg"] == options["xl_t2i_hr_cfg"] == fam.SDXL.hires.cfg
    assert fam.FLUX_DEV.cfg == options["flux_t2i_cfg"] == fam.FLUX_DEV.hires.cfg
    assert fam.FLUX_DEV.distilled_cfg == options["flux_t2i_d_cfg"]
    assert options["forge_preset"] == "sd"  # the UI preset, not the model: recorded with SDXL loaded too


def test_every_family_is_complete():
    for f in fam.FAMILIES.values():
        assert set(f.presets) == {"fast", "quality", "artistic"}, f.name
        assert f.width % 8 == 0 and f.height % 8 == 0
        for preset in f.presets.values():
            assert preset.width % 8 == 0 and preset.height % 8 == 0 and preset.steps > 0
        if f.architecture == "flux":
            assert f.cfg == 1.0 and f.sampler == "Euler" and f.scheduler == "simple"
    assert fam.PONY.clip_skip == 2 and fam.PONY.architecture == "sdxl"
    assert fam.FLUX_SCHNELL.steps == 4 and fam.FLUX_DEV.steps == 20
    assert fam.family("flux") is fam.FLUX_DEV and fam.family("nonsense") is fam.UNKNOWN
    with pytest.raises(KeyError):
        fam.SDXL.preset("turbo")


# ---- sizes -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("aspect, sdxl, sd15", [
    ("square", (1024, 1024), (512, 512)),
    ("1:1", (1024, 1024), (512, 512)),
    ("portrait", (832, 1216), (512, 768)),
    ("2:3", (832, 1216), (512, 768)),
    ("landscape", (1216, 832), (768, 512)),
    ("3:2", (1216, 832), (768, 512)),
    ("3:4", (896, 1152), (512, 704)),
    ("4:3", (1152, 896), (704, 512)),
    ("wide", (1344, 768), (896, 512)),
    ("16:9", (1344, 768), (896, 512)),
    ("tall", (768, 1344), (512, 896)),
    ("9:16", (768, 1344), (512, 896)),
    ("21:9", (1536, 640), (1024, 512)),
    ("9:21", (640, 1536), (512, 1024)),
])
def test_size_for(aspect, sdxl, sd15):
    assert fam.size_for(fam.SDXL, aspect) == sdxl
    assert fam.size_for("pony", aspect) == sdxl
    assert fam.size_for(fam.SD15, aspect) == sd15
    for name in ("flux_dev", "flux_schnell", "sd35"):
        w, h = fam.size_for(name, aspect)
        assert w % 64 == 0 and h % 64 == 0 and 0.85e6 < w * h < 1.1e6, (name, aspect)


def test_every_named_aspect_keeps_its_orientation():
    for aspect, (rw, rh) in fam.ASPECT_RATIOS.items():
        for f in fam.FAMILIES.values():
            w, h = fam.size_for(f, aspect)
            assert (w > h) == (rw > rh) and (w == h) == (rw == rh), (f.name, aspect)
            assert abs(math.log((w / h) / (rw / rh))) < 0.25, (f.name, aspect)


def test_size_for_takes_any_ratio_and_refuses_nonsense():
    assert fam.size_for(fam.SDXL, "5:7") == (832, 1216)
    assert fam.size_for(fam.SDXL, " 16 : 9 ") == (1344, 768)
    for bad in ("", "banana", "0:1", "1:0"):
        with pytest.raises(ValueError, match="aspect ratio"):
            fam.size_for(fam.SDXL, bad)


# ---- warnings ----------------------------------------------------------------------------------------------------

def test_conflicts():
    (small,) = fam.conflicts(fam.SDXL, 512, 512, 7)
    assert small.startswith("512x512 on an SDXL checkpoint") and "1024x1024" in small
    assert fam.conflicts(fam.SDXL, 1024, 1024, 5) == []
    assert fam.conflicts(fam.SDXL, 832, 1216, 7) == []
    (big,) = fam.conflicts(fam.SD15, 1024, 1024, 7)
    assert big.startswith("1024x1024 on an SD 1.5 checkpoint") and "hires fix" in big
    assert fam.conflicts(fam.SD15, 512, 768, 7) == []
    flux = fam.conflicts(fam.FLUX_DEV, 1024, 1024, 7)
    assert len(flux) == 1 and flux[0].startswith("CFG 7 on a Flux checkpoint")
    assert fam.conflicts(fam.FLUX_DEV, 1024, 1024, 1) == []
    assert any("multiples of 16" in n for n in fam.conflicts(fam.FLUX_SCHNELL, 1000, 1000, 1))
    assert fam.conflicts(fam.UNKNOWN, 64, 64, 30) == []
    for note in fam.conflicts(fam.SDXL, 100, 100, 20):
        assert note.endswith(".") and "\n" not in note


# ---- Forge's Flux modules ----------------------------------------------------------------------------------------

FLUX_FILES = ["/srv/stable-diffusion-webui/models/VAE/ae.safetensors",
              "/srv/stable-diffusion-webui/models/text_encoder/clip_l.safetensors",
              "/srv/stable-diffusion-webui/models/text_encoder/t5xxl_fp8_e4m3fn.safetensors",
              "/srv/stable-diffusion-webui/models/text_encoder/t5xxl_fp16.safetensors"]


def test_forge_flux_modules_picks_vae_clip_and_t5():
    assert fam.forge_flux_modules(FLUX_FILES) == [FLUX_FILES[0], FLUX_FILES[1], FLUX_FILES[3]]  # fp16 T5 first
    names = ["t5xxl_fp8_e4m3fn.safetensors", "clip_l.safetensors", "ae.safetensors"]
    assert fam.forge_flux_modules(names) == ["ae.safetensors", "clip_l.safetensors", "t5xxl_fp8_e4m3fn.safetensors"]
    assert fam.flux_modules_missing(FLUX_FILES) == ""


def test_forge_flux_modules_without_text_encoders():
    assert fam.forge_flux_modules(_answer("forge/sdxl/get_sd_modules")) is None  # recorded: []
    assert fam.forge_flux_modules(["ae.safetensors", "clip_l.safetensors"]) is None
    sentence = fam.flux_modules_missing(["ae.safetensors"])
    assert "no clip_l text encoder and no t5xxl text encoder" in sentence and "You do not have CLIP state dict!" in sentence
    assert sentence.count("\n") == 0


def test_an_sdxl_vae_is_not_taken_for_flux():
    modules = ["sdxl_vae.safetensors", "vae-ft-mse-840000-ema-pruned.safetensors", "clip_l.safetensors",
               "t5xxl_fp16.safetensors"]
    assert fam.forge_flux_modules(modules) == ["clip_l.safetensors", "t5xxl_fp16.safetensors"]
    assert "no Flux VAE" in fam.flux_modules_missing(modules)
