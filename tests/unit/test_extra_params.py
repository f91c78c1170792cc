"""The extra_params JSON field: only the WebUI's own request fields, never the ones the plugin sets."""

from __future__ import annotations

import pytest

from sdwebui.errors import InvalidInput
from sdwebui.extra_params import IMG2IMG_EXTRA_KEYS, OWNED_KEYS, TXT2IMG_EXTRA_KEYS, read_extra_params
from sdwebui.models import Txt2ImgRequest


def read(value, mode="txt2img"):
    return read_extra_params({"extra_params": value}, mode=mode)


def refused(value, mode="txt2img") -> str:
    with pytest.raises(InvalidInput) as caught:
        read(value, mode)
    return str(caught.value)


def test_allowed_keys_pass_through_as_given():
    assert read('{"subseed": 42, "subseed_strength": 0.3, "tiling": true, "s_churn": 0.5}') == {
        "subseed": 42, "subseed_strength": 0.3, "tiling": True, "s_churn": 0.5}
    assert read({"eta": 0.7}) == {"eta": 0.7}  # a workflow may pass an object as is
    assert read("") == {} and read(None) == {} and read("   ") == {}


def test_invalid_json_is_one_sentence_with_an_example():
    message = refused('{"subseed": 42,}')
    assert message.startswith("extra_params is not valid JSON (") and message.endswith('{"subseed": 42, "subseed_strength": 0.3, "tiling": true}.')


def test_only_an_object_is_accepted():
    assert refused("[1, 2]").endswith("got list.")
    assert refused("42").endswith("got int.")


def test_keys_the_plugin_owns_are_refused_by_name():
    assert refused('{"prompt": "x", "override_settings": {}, "subseed": 1}') == (
        "extra_params may not set prompt, override_settings: the plugin sets them from its own parameters, so use those instead.")
    assert refused('{"alwayson_scripts": {}}').startswith("extra_params may not set alwayson_scripts: the plugin sets it")
    assert refused('{"init_images": ["x"]}', "img2img").startswith("extra_params may not set init_images:")


def test_unknown_keys_are_refused_with_the_allowed_ones():
    message = refused('{"subseeed": 1, "tilling": true}')
    assert message.startswith("extra_params has keys the WebUI's txt2img does not accept: subseeed, tilling; allowed keys are subseed,")
    # hires-only fields are not img2img fields, and img2img's own are not txt2img's
    assert "does not accept: hr_prompt;" in refused('{"hr_prompt": "x"}', "img2img")
    assert "does not accept: image_cfg_scale;" in refused('{"image_cfg_scale": 1.5}')
    assert read('{"image_cfg_scale": 1.5}', "img2img") == {"image_cfg_scale": 1.5}


def test_the_allow_lists_and_the_owned_keys_never_overlap():
    assert not set(OWNED_KEYS) & (set(TXT2IMG_EXTRA_KEYS) | set(IMG2IMG_EXTRA_KEYS))


def test_every_request_field_the_plugin_sets_is_owned():
    """A key the request model carries must never be overridable from JSON."""
    plugin_fields = set(Txt2ImgRequest.model_fields) - {"extra_params"}
    assert plugin_fields <= set(OWNED_KEYS)


def test_extra_params_are_merged_into_the_body_but_never_over_it():
    request = Txt2ImgRequest(prompt="p", width=64, height=64, steps=2, cfg_scale=7, extra_params={"subseed": 5})
    body = request.to_json()
    assert body["subseed"] == 5 and body["prompt"] == "p" and "extra_params" not in body
