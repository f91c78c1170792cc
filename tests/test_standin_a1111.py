"""The stand-in's ``a1111`` flavour against the real AUTOMATIC1111 1.10.1 recordings (tests/fixtures/a1111/).

Each test replays a recorded request and compares the stand-in's answer with the recorded one: whole bodies for
lists and errors; for generations the whole ``info`` but the random/clock values, the ``parameters`` echo and the
images' count, format and size (read from the bytes). Also Forge's ControlNet ran/skipped pair
(tests/fixtures/forge/webui_mode/).
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time

import pytest
import requests
from PIL import Image

from tests.fixtures.load import load_fixture
from tests.standin.webui import StandInWebUI

RECORDED_MODELS = ["rand-a", "sub/rand-b"]  # get_sd_models.json
RECORDED_CONTROLNET = ["None", "control_v11p_sd15_openpose [d299a4f5]"]  # controlnet/get_model_list.json (+ "None")
VOLATILE_INFO = {"subseed", "all_subseeds", "job_timestamp"}


def _fixture(name: str) -> tuple[dict, dict]:
    fixture = load_fixture(f"a1111/{name}")
    return fixture["request"], fixture["response"]


def _replay(base_url: str, request: dict, **kwargs) -> requests.Response:
    if "raw_body" in request:
        kwargs["data"] = request["raw_body"].encode()
        kwargs["headers"] = {"Content-Type": "application/json"}
    elif request.get("json") is not None:
        kwargs["json"] = request["json"]
    return requests.request(request["method"], base_url + request["path"], timeout=10, **kwargs)


def _info(body: dict) -> dict:
    return json.loads(body["info"])


def _sizes(body: dict) -> list[tuple[str, tuple[int, int]]]:
    images = [Image.open(io.BytesIO(base64.b64decode(b))) for b in body["images"]]
    return [(i.format, i.size) for i in images]


def _a1111(**kwargs) -> StandInWebUI:
    webui = StandInWebUI("a1111", models=RECORDED_MODELS, controlnet=True, adetailer=True, **kwargs)
    webui.controlnet_models = RECORDED_CONTROLNET
    webui.offline = True  # the recorded machine had no network
    return webui


@pytest.fixture
def a1111():
    with _a1111() as webui:
        yield webui


def _assert_generation_as_recorded(got: requests.Response, response: dict) -> dict:
    assert got.status_code == response["status"] == 200
    body, recorded = got.json(), response["json"]
    info, recorded_info = _info(body), _info(recorded)
    assert list(info) == list(recorded_info)
    assert {k: v for k, v in info.items() if k not in VOLATILE_INFO} == \
        {k: v for k, v in recorded_info.items() if k not in VOLATILE_INFO}
    assert body["parameters"] == recorded["parameters"]
    assert _sizes(body) == _sizes(recorded)
    return info


# ---- lists and fixed answers ------------------------------------------------------------------------------------

SAME_BODY = [
    "get_cmd_flags", "get_embeddings", "get_extensions", "get_face_restorers", "get_internal_ping",
    "get_internal_sysinfo", "get_latent_upscale_modes", "get_loras", "get_memory", "get_samplers", "get_schedulers",
    "get_script_info_with_extensions", "get_scripts_with_extensions", "get_upscalers", "get_version",
    "get_sd_modules", "bad_unknown_endpoint", "bad_txt2img_wrong_method", "post_refresh_checkpoints",
    "post_refresh_loras", "post_skip_idle", "post_interrupt_idle", "post_internal_progress_unknown_task",
    "get_internal_pending_tasks_during_job", "get_sd_models",
    "bad_options_unknown_checkpoint", "bad_options_subfolder_name_without_extension", "bad_options_unknown_key",
    "bad_txt2img_empty_body", "bad_txt2img_malformed_json", "bad_txt2img_width_string",
    "bad_img2img_no_init_images", "bad_extra_single_image_unknown_upscaler",
    "post_png_info", "post_png_info_data_url", "post_png_info_no_parameters",
    "post_interrogate_clip_offline", "post_interrogate_deepdanbooru_offline",
    "controlnet/get_version", "controlnet/get_settings", "controlnet/get_model_list",
    "controlnet/get_model_list_update", "controlnet/post_detect_openpose_offline",
    "adetailer/get_version",
]


@pytest.mark.parametrize("name", SAME_BODY)
def test_answers_the_recorded_status_and_body(name):
    request, response = _fixture(name)
    with _a1111(unhashed=[]) as webui:  # get_sd_models.json: both files hashed by then
        got = _replay(webui.base_url, request)
    assert got.status_code == response["status"]
    assert got.json() == response["json"]


def test_options_are_the_recorded_keys_and_values():
    request, response = _fixture("get_options")
    with _a1111() as webui:
        requests.post(webui.base_url + "/sdapi/v1/txt2img", json={"prompt": "x", "width": 64, "height": 64, "steps": 1})
        assert _replay(webui.base_url, request).json() == response["json"]  # rand-a loaded, its hash


def test_scripts_list_the_extensions_only_when_installed():
    request, response = _fixture("get_scripts")
    with StandInWebUI("a1111") as webui:
        got = _replay(webui.base_url, request).json()
    recorded = response["json"]["txt2img"]
    assert got["txt2img"] == [t for t in recorded if t not in ("adetailer", "controlnet", "controlnet m2m")]


def test_the_plugins_catalog_never_asks_for_cmd_flags(a1111):
    """cmd-flags answers 200 with every launch flag (api_auth included on a real server): never call it."""
    from sdwebui.catalog import Catalog, overview
    from sdwebui.client import WebUIClient
    from sdwebui.deadline import Deadline

    overview(Catalog(WebUIClient(a1111.base_url)), Deadline(10))
    assert a1111.requests_to("GET", "/sdapi/v1/")  # the catalog did ask the WebUI
    assert a1111.cmd_flags_requests() == []


# ---- generations --------------------------------------------------------------------------------------------------

FRESH_GENERATIONS = [  # each recorded with rand-a loaded
    "post_txt2img", "post_txt2img_again", "bad_txt2img_unknown_sampler", "bad_txt2img_unknown_scheduler",
    "bad_txt2img_override_unknown_checkpoint", "post_txt2img_size_100x60", "post_txt2img_with_lora",
    "post_txt2img_with_unknown_lora", "txt2img_width_numeric_string", "post_txt2img_hires_with_hr_additional_modules",
    "post_txt2img_hires_without_hr_additional_modules", "post_img2img", "post_img2img_inpaint",
    "post_img2img_no_size_96x64_input", "post_txt2img_long_job_with_task_id",
]


@pytest.mark.parametrize("name", FRESH_GENERATIONS)
def test_generation_answers_as_recorded(a1111, name):
    request, response = _fixture(name)
    info = _assert_generation_as_recorded(_replay(a1111.base_url, request), response)
    if name == "bad_txt2img_unknown_sampler":
        assert (info["sampler_name"], info["extra_generation_params"].get("Schedule type")) == ("DPM++ 2M", "Karras")
    if name == "bad_txt2img_unknown_scheduler":
        assert "Schedule type: Automatic" in info["infotexts"][0]
    if name == "post_img2img_no_size_96x64_input":
        assert _sizes(response["json"]) == [("PNG", (512, 512))]


def test_nans_fault_answers_the_recorded_500(a1111):
    request, response = _fixture("bad_txt2img_lora_nans_in_unet")
    a1111.inject("nans")
    got = _replay(a1111.base_url, request)
    assert (got.status_code, got.json()) == (response["status"], response["json"])
    assert _replay(a1111.base_url, request).status_code == 200  # one-off, as the recorded flakiness


@pytest.mark.parametrize("name", ["post_extra_single_image", "post_extra_single_image_r_esrgan_offline"])
def test_extra_single_image_resizes_as_recorded(a1111, name):
    request, response = _fixture(name)
    got = _replay(a1111.base_url, request).json()
    assert got["html_info"] == response["json"]["html_info"]
    assert _sizes({"images": [got["image"]]}) == _sizes({"images": [response["json"]["image"]]}) == [("PNG", (192, 128))]


# ---- model switches and override_settings ------------------------------------------------------------------------

def _checkpoint(options: dict) -> tuple[str, str]:
    return options["sd_model_checkpoint"], options["sd_checkpoint_hash"]


def test_options_switch_loads_at_once_and_override_restore_leaves_options_lying():
    with _a1111(unhashed=[]) as webui:  # recorded after the top-level sequence: both files hashed
        _override_sequence(webui)


def _override_sequence(a1111: StandInWebUI) -> None:
    url = a1111.base_url
    sequence = ["override/post_options_switch_to_b", "override/get_options_before_override",
                "override/post_txt2img_override_a_restore_afterwards", "override/get_options_after_override_restore",
                "override/post_txt2img_plain_after_override_restore", "override/get_options_after_plain",
                "override/post_txt2img_override_a_keep", "override/get_options_after_override_keep",
                "override/post_options_back_to_a"]
    for name in sequence:
        request, response = _fixture(name)
        got = _replay(url, request)
        assert got.status_code == response["status"], name
        if name.endswith("switch_to_b"):
            assert a1111.loaded_model == "rand-b" and got.json() is None  # loaded before answering
        elif "/get_options" in name:
            assert _checkpoint(got.json()) == _checkpoint(response["json"]), name
        elif "txt2img" in name:
            info, recorded = _info(got.json()), _info(response["json"])
            assert (info["sd_model_name"], info["sd_model_hash"]) == (recorded["sd_model_name"], recorded["sd_model_hash"])
            assert info["infotexts"] == recorded["infotexts"], name
    restore = _fixture("override/get_options_after_override_restore")[1]["json"]
    assert restore["sd_model_checkpoint"].startswith("sub/rand-b") and restore["sd_checkpoint_hash"].startswith("3f9547ae2d")


SWITCH_SEQUENCE = ["post_txt2img", "post_options_switch_to_b", "get_options_after_switch_to_b",
                   "post_txt2img_after_switch_to_b", "get_sd_models_after_switch_to_b",
                   "post_txt2img_override_checkpoint_a", "get_options_after_override"]
# Recorded later, with rand-a loaded and named by its title (the recording order between them is not kept).
FINAL_SEQUENCE = ["post_txt2img", "bad_txt2img_override_unknown_checkpoint", "get_options_after_bad_override",
                  "post_options_switch_to_a_by_model_name", "get_options_final", "get_sd_models_final"]


@pytest.mark.parametrize("sequence", [SWITCH_SEQUENCE, FINAL_SEQUENCE], ids=["switch", "final"])
def test_top_level_switch_and_override_sequences(sequence):
    with _a1111(unhashed=[] if sequence is FINAL_SEQUENCE else None) as webui:
        _replay_sequence(webui, sequence)


def test_unknown_checkpoint_leaves_options_unchanged(a1111):
    before = requests.get(a1111.base_url + "/sdapi/v1/options").json()
    request, response = _fixture("bad_options_unknown_checkpoint")
    got = _replay(a1111.base_url, request)
    assert (got.status_code, got.json()) == (response["status"], response["json"])
    assert requests.get(a1111.base_url + "/sdapi/v1/options").json() == before and a1111.model_loads == 0


def _replay_sequence(a1111: StandInWebUI, sequence: list[str]) -> None:
    for name in sequence:
        request, response = _fixture(name)
        got = _replay(a1111.base_url, request)
        assert got.status_code == response["status"], name
        if name.startswith("get_"):
            assert got.json() == response["json"], name
        elif "txt2img" in name:
            info, recorded = _info(got.json()), _info(response["json"])
            assert (info["sd_model_name"], info["sd_model_hash"]) == (recorded["sd_model_name"], recorded["sd_model_hash"]), name


# ---- progress and task ids ---------------------------------------------------------------------------------------

def test_progress_and_internal_progress_during_and_after_a_forced_task_id():
    request, response = _fixture("post_txt2img_long_job_with_task_id")
    with _a1111(generation_delay=1.5) as webui:
        url = webui.base_url
        idle = requests.get(url + "/sdapi/v1/progress").json()
        assert set(idle) == set(_fixture("get_progress_idle")[1]["json"])
        answer = {}
        job = threading.Thread(target=lambda: answer.update(got=_replay(url, request)))
        job.start()
        deadline = time.monotonic() + 5
        while requests.get(url + "/sdapi/v1/progress").json()["state"]["job"] == "" and time.monotonic() < deadline:
            time.sleep(0.01)
        during, recorded_during = requests.get(url + "/sdapi/v1/progress").json(), _fixture("get_progress_during_job")[1]["json"]
        assert list(during) == list(recorded_during) and list(during["state"]) == list(recorded_during["state"])
        assert (during["state"]["job"], during["state"]["job_count"]) == ("scripts_txt2img", 1) and during["eta_relative"] > 0
        ask, recorded = _fixture("post_internal_progress_during_job")
        got = _replay(url, ask).json()
        assert list(got) == list(recorded["json"])
        assert {k: got[k] for k in ("active", "queued", "completed", "textinfo", "live_preview", "id_live_preview")} == \
            {k: recorded["json"][k] for k in ("active", "queued", "completed", "textinfo", "live_preview", "id_live_preview")}
        assert 0.0 <= got["progress"] < 1.0
        pending_request, pending = _fixture("get_internal_pending_tasks_during_job")
        assert _replay(url, pending_request).json() == pending["json"]  # the running job is not pending
        job.join(10)
        ask, recorded = _fixture("post_internal_progress_after_job")
        assert _replay(url, ask).json() == recorded["json"]
        after, recorded_after = requests.get(url + "/sdapi/v1/progress").json(), _fixture("get_progress_after_job")[1]["json"]
        assert {k: v for k, v in after["state"].items() if k != "job_timestamp"} == \
            {k: v for k, v in recorded_after["state"].items() if k != "job_timestamp"}
    _assert_generation_as_recorded(answer["got"], response)


# ---- ControlNet and ADetailer ------------------------------------------------------------------------------------

CONTROLNET_GENERATIONS = [
    "post_txt2img_controlnet_save_detected_map_ran", "post_txt2img_controlnet_save_detected_map_skipped_preprocessor_needs_download",
    "post_txt2img_unit_module_none", "post_txt2img_unit_save_detected_map", "post_txt2img_unit_canny",
    "post_txt2img_unit_input_image_key", "post_txt2img_unit_model_name_without_hash", "post_txt2img_unit_disabled",
    "bad_txt2img_unit_unknown_model", "bad_txt2img_unit_openpose_preprocessor_offline", "post_img2img_unit_module_none",
]


@pytest.mark.parametrize("name", CONTROLNET_GENERATIONS)
def test_controlnet_units_answer_as_recorded(a1111, name):
    """A unit that ran appends its map; one skipped (unknown model, preprocessor that needs a download) does not,
    while the infotext still lists ``ControlNet 0``."""
    request, response = _fixture(f"controlnet/{name}")
    _assert_generation_as_recorded(_replay(a1111.base_url, request), response)


def test_controlnet_map_tells_whether_the_unit_ran(a1111):
    ran = _fixture("controlnet/post_txt2img_controlnet_save_detected_map_ran")[1]["json"]
    skipped = _fixture("controlnet/post_txt2img_controlnet_save_detected_map_skipped_preprocessor_needs_download")[1]["json"]
    assert (len(ran["images"]), len(skipped["images"])) == (2, 1)
    assert "ControlNet 0" in _info(ran)["extra_generation_params"] and "ControlNet 0" in _info(skipped)["extra_generation_params"]
    a1111.offline = False  # with network the same openpose unit runs and returns its map
    request, _ = _fixture("controlnet/post_txt2img_controlnet_save_detected_map_skipped_preprocessor_needs_download")
    assert len(_replay(a1111.base_url, request).json()["images"]) == 2


def test_controlnet_detect_canny_as_recorded(a1111):
    request, response = _fixture("controlnet/post_detect_canny")
    got = _replay(a1111.base_url, request).json()
    assert got["info"] == response["json"]["info"] and _sizes(got) == _sizes(response["json"])


@pytest.mark.parametrize("name", ["post_txt2img_face_yolov8n", "bad_txt2img_unknown_model", "post_txt2img_low_confidence"])
def test_adetailer_infotext_as_recorded(a1111, name):
    """ADetailer lists its entries whenever it was asked to run, even with nothing detected or an unknown model;
    with ad_confidence 0 nothing at all. It never adds an image."""
    request, response = _fixture(f"adetailer/{name}")
    info = _assert_generation_as_recorded(_replay(a1111.base_url, request), response)
    assert ("ADetailer model" in info["extra_generation_params"]) == (name != "post_txt2img_low_confidence")


@pytest.mark.parametrize("name", ["post_txt2img_controlnet_save_detected_map_ran",
                                  "post_txt2img_controlnet_save_detected_map_skipped_preprocessor_needs_download"])
def test_forge_controlnet_pair_as_recorded(name):
    fixture = load_fixture(f"forge/webui_mode/{name}")
    with StandInWebUI("forge", controlnet=True) as webui:
        webui.offline = True
        got = _replay(webui.base_url, fixture["request"])
    body, recorded = got.json(), fixture["response"]["json"]
    assert got.status_code == 200 and _sizes(body) == _sizes(recorded)
    assert _info(body)["extra_generation_params"] == _info(recorded)["extra_generation_params"]
