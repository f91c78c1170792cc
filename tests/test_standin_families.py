"""The stand-in's checkpoint metadata, Forge modules and Flux-without-modules answers (tests/standin/families.py)
against the recordings in tests/fixtures/{a1111,forge}/sdxl/."""

from __future__ import annotations

import pathlib

import pytest
import requests

from sdwebui import families
from tests.fixtures.load import FIXTURES_DIR, load_fixture
from tests.standin.families import FLUX_MODULES
from tests.standin.webui import StandInWebUI

TINY = {"prompt": "a red fox in the snow", "width": 64, "height": 64, "steps": 2, "seed": 1}


def recorded_metadata_exchanges(flavor: str) -> list[str]:
    return sorted(p.stem for p in pathlib.Path(FIXTURES_DIR, flavor, "sdxl").glob("get_metadata_*.json"))


@pytest.mark.parametrize("flavor", ["a1111", "forge"])
def test_every_recorded_metadata_exchange_is_answered_alike(flavor):
    names = recorded_metadata_exchanges(flavor)
    assert len(names) >= 14  # before and after the UI rendered, stem / title / file name / subfolder
    with StandInWebUI.sdxl_recorded(flavor) as webui:
        # the recordings' order: every "item_*" exchange before the UI rendered, then the "after_ui_render" ones
        for rendered in (False, True):
            if rendered:
                webui.render_extra_networks()
            for name in names:
                if ("after_ui_render" in name) != rendered:
                    continue
                recorded = load_fixture(f"{flavor}/sdxl/{name}")
                answer = requests.get(webui.base_url + recorded["request"]["path"], timeout=10)
                assert answer.status_code == recorded["response"]["status"], name
                assert answer.headers["content-type"] == recorded["response"]["headers"]["content-type"], name
                assert answer.json() == recorded["response"]["json"], name


@pytest.mark.parametrize("flavor", ["a1111", "forge"])
def test_the_plugin_reads_the_family_from_the_stand_ins_answer(flavor):
    with StandInWebUI.sdxl_recorded(flavor) as webui:
        url = webui.base_url + "/sd_extra_networks/metadata?page=checkpoints&item="
        before = requests.get(url + "juggernautXL_rand", timeout=10).json()
        webui.render_extra_networks()
        after = requests.get(url + "juggernautXL_rand", timeout=10).json()
        plain = requests.get(url + "plainmodel_rand", timeout=10).json()
    assert families.detect("plainmodel_rand.safetensors", before)[0] is families.UNKNOWN
    assert families.detect("plainmodel_rand.safetensors", after) == (families.SDXL, families.FROM_METADATA)
    assert families.detect("plainmodel_rand.safetensors", plain)[0] is families.UNKNOWN


def test_a_subfolder_checkpoint_is_asked_by_its_bare_stem():
    with StandInWebUI("forge", models=["rand-a", "sub/flux1-dev"]) as webui:
        webui.set_checkpoint_family("sub/flux1-dev", "flux_dev")
        webui.render_extra_networks()
        url = webui.base_url + "/sd_extra_networks/metadata?page=checkpoints&item="
        assert requests.get(url + "sub/flux1-dev", timeout=10).json() == {}
        by_stem = requests.get(url + "flux1-dev", timeout=10).json()
        other_page = requests.get(webui.base_url + "/sd_extra_networks/metadata?page=lora&item=flux1-dev").json()
    assert families.from_metadata(by_stem)[0] is families.FLUX_DEV
    assert other_page == {}


def test_the_metadata_route_is_outside_api_auth_and_needs_the_ui():
    with StandInWebUI.sdxl_recorded("forge", auth=("user", "secret")) as webui:
        url = webui.base_url + "/sd_extra_networks/metadata?page=checkpoints&item=juggernautXL_rand"
        assert requests.get(url, timeout=10).status_code == 200
        assert requests.get(webui.base_url + "/sdapi/v1/sd-models", timeout=10).status_code == 401
        webui.extra_networks_ui = False  # --nowebui
        assert requests.get(url, timeout=10).status_code == 404
    for flavor in ("sdnext", "sdcpp"):
        with StandInWebUI(flavor) as webui:
            assert requests.get(webui.base_url + "/sd_extra_networks/metadata", timeout=10).status_code == 404


def test_sd_modules_as_recorded_or_with_flux_files():
    recorded = load_fixture("forge/sdxl/get_sd_modules")["response"]
    with StandInWebUI("forge") as webui:
        webui.set_sd_modules([])
        empty = requests.get(webui.base_url + "/sdapi/v1/sd-modules", timeout=10)
        webui.set_sd_modules(FLUX_MODULES)
        listed = requests.get(webui.base_url + "/sdapi/v1/sd-modules", timeout=10).json()
    assert (empty.status_code, empty.json()) == (recorded["status"], recorded["json"])
    assert [m["model_name"] for m in listed] == FLUX_MODULES
    assert all(set(m) == {"model_name", "filename"} and m["filename"].endswith("/" + m["model_name"]) for m in listed)
    assert families.forge_flux_modules([m["filename"] for m in listed]) == [m["filename"] for m in listed]


def flux_webui(**kwargs) -> StandInWebUI:
    webui = StandInWebUI("forge", models=["rand-a", "flux1-dev"], **kwargs)
    webui.set_checkpoint_family("flux1-dev", "flux_dev")
    webui.set_sd_modules(FLUX_MODULES)
    return webui


def generate(webui: StandInWebUI, **overrides) -> requests.Response:
    body = {**TINY, "override_settings": {"sd_model_checkpoint": "flux1-dev", **overrides}}
    return requests.post(webui.base_url + "/sdapi/v1/txt2img", json=body, timeout=30)


def test_flux_without_text_encoders_fails_like_forges_loader():
    shape = load_fixture("forge/sdxl/bad_post_txt2img_sdxl_64x64_first_vaeapprox_sdxl_download_offline")["response"]
    with flux_webui() as webui:
        requests.post(webui.base_url + "/sdapi/v1/txt2img", json=TINY, timeout=30)  # rand-a loaded
        answers = {
            "none": generate(webui),
            "vae only": generate(webui, forge_additional_modules=["ae.safetensors"]),
            "no vae": generate(webui, forge_additional_modules=["clip_l.safetensors", "t5xxl_fp16.safetensors"]),
            "unlisted": generate(webui, forge_additional_modules=["ae.safetensors", "clip_l.safetensors",
                                                                  "t5xxl_fp8_e4m3fn.safetensors"]),
        }
        loaded_after_failure = webui.loaded_model
        ok = generate(webui, forge_additional_modules=FLUX_MODULES)
        loaded_after_success = webui.loaded_model
    messages = {k: (a.status_code, a.json()["message"]) for k, a in answers.items()}
    assert messages == {"none": (500, "You do not have CLIP state dict!"),
                        "vae only": (500, "You do not have CLIP state dict!"),
                        "no vae": (500, "You do not have VAE state dict!"),
                        "unlisted": (500, "You do not have T5 state dict!")}
    assert all(set(a.json()) == set(shape["json"]) and a.json()["error"] == "AssertionError" for a in answers.values())
    assert loaded_after_failure is None
    assert ok.status_code == 200 and loaded_after_success == "flux1-dev"


def test_flux_modules_set_through_options_or_built_in():
    with flux_webui() as webui:
        paths = [m["filename"] for m in requests.get(webui.base_url + "/sdapi/v1/sd-modules", timeout=10).json()]
        assert requests.post(webui.base_url + "/sdapi/v1/options",
                             json={"forge_additional_modules": paths}, timeout=10).status_code == 200
        assert generate(webui).status_code == 200
    with StandInWebUI("forge", models=["flux1-dev-bnb-nf4-v2"]) as webui:
        webui.set_checkpoint_family("flux1-dev-bnb-nf4-v2", "flux_dev", bundled=True)
        webui.set_sd_modules([])
        assert requests.post(webui.base_url + "/sdapi/v1/txt2img", json=TINY, timeout=30).status_code == 200


def test_a1111_and_sdxl_checkpoints_need_no_modules():
    with StandInWebUI.sdxl_recorded("forge") as webui:
        webui.set_sd_modules([])
        body = {**TINY, "override_settings": {"sd_model_checkpoint": "juggernautXL_rand"}}
        assert requests.post(webui.base_url + "/sdapi/v1/txt2img", json=body, timeout=30).status_code == 200
    with StandInWebUI("a1111", models=["rand-a", "flux1-dev"]) as webui:
        webui.set_checkpoint_family("flux1-dev", "flux_dev")
        assert generate(webui).status_code == 200  # not imitated: A1111 1.10 cannot run Flux at all


def test_set_checkpoint_family_refuses_an_unknown_checkpoint():
    webui = StandInWebUI("forge")
    with pytest.raises(ValueError, match="no checkpoint"):
        webui.set_checkpoint_family("nope", "sdxl")
    webui.set_checkpoint_family("rand-b", "pony")
    assert webui.checkpoint_family("rand-b") == "pony" and webui.checkpoint_family("rand-a") is None
