"""A finished image is kept unless info positively names another listed checkpoint (recorded cases)."""

from __future__ import annotations

import copy
import json

import pytest
import responses

from sdwebui import errors
from sdwebui.client import WebUIClient
from sdwebui.deadline import Deadline
from sdwebui.generation import Generation
from sdwebui.settings import read_sampling
from tests.conftest import API, BASE, fixture_json, generation_body, png_bytes
from tests.fixtures.load import load_fixture


def _unhashed(models: list[dict], index: int) -> list[dict]:
    """The list as a fresh server gives it before its first load of ``models[index]``: no hash, no [hash] in the title."""
    fresh = copy.deepcopy(models)
    fresh[index].update(hash=None, sha256=None, title=fresh[index]["title"].rsplit(" [", 1)[0])
    return fresh


def _serve(rsps, before: list[dict], after: list[dict], options: dict, version: object, status: int) -> None:
    rsps.get(f"{API}/sd-models", json=before)
    rsps.get(f"{API}/sd-models", json=after)  # after the refresh: the server hashed the model on its load
    rsps.get(f"{API}/options", json=options)
    rsps.post(f"{API}/options", json=None)
    rsps.post(f"{API}/reload-checkpoint", status=204)
    rsps.get(f"{API}/version", json=version, status=status)
    rsps.get(f"{API}/sd-modules", json=fixture_json("get_sd_modules"))
    rsps.get(f"{API}/schedulers", json=fixture_json("get_schedulers"))
    rsps.get(f"{API}/progress", json={"detail": "Not Found"}, status=404)


def _run(model: str):
    return Generation(WebUIClient(BASE)).txt2img(read_sampling({"prompt": "x", "model_name": model}), Deadline(30))


def test_forge_naming_a_subfolder_model_by_its_bare_stem_keeps_the_image():
    """forge/webui_mode: info says sd_model_name 'rand-b' for sub/rand-b.safetensors, unhashed in /sd-models until loaded."""
    listed = fixture_json("forge/webui_mode/get_sd_models_subfolder")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        _serve(rsps, _unhashed(listed, 1), listed, fixture_json("get_options"), {"detail": "Not Found"}, 404)
        rsps.post(f"{API}/txt2img", json=generation_body([png_bytes(64, 64)], sd_model_name="rand-b", sd_model_hash="2a30d74d7c"))
        result = _run("sub/rand-b.safetensors")
    assert result.model.startswith("sub/rand-b.safetensors") and len(result.images) == 1


def test_sdnext_reporting_a_hash_its_list_did_not_have_keeps_the_image():
    """sdnext/058a7f0: /sd-models lists hash null until a model was loaded once; info then carries 917136ce6c."""
    listed = fixture_json("sdnext/058a7f0/get_sd_models")
    answer = load_fixture("sdnext/058a7f0/post_txt2img_right_after_switch")["response"]["json"]
    assert json.loads(answer["info"])["sd_model_hash"] == "917136ce6c"
    fresh = _unhashed(listed, 1)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        _serve(rsps, fresh, fresh, fixture_json("sdnext/058a7f0/get_options"), fixture_json("sdnext/058a7f0/get_version"), 200)
        rsps.post(f"{API}/txt2img", json=answer)
        result = _run("sub/rand-b")
    assert result.model == "sub/rand-b" and result.images


def test_info_naming_another_listed_checkpoint_is_still_an_error():
    listed = fixture_json("forge/webui_mode/get_sd_models_subfolder")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        _serve(rsps, listed, listed, fixture_json("get_options"), {"detail": "Not Found"}, 404)
        rsps.post(f"{API}/txt2img", json=generation_body([png_bytes(64, 64)], sd_model_name="rand-a", sd_model_hash="17b6bb621c"))
        with pytest.raises(errors.ServerError, match="generated with 'rand-a.safetensors"):
            _run("sub/rand-b.safetensors")
