"""The X-SD-Model routing header: on every request of a call once the model is known, stable, ASCII-safe."""

from __future__ import annotations

import json

import responses

from sdwebui.client import WebUIClient
from sdwebui.deadline import Deadline
from sdwebui.generation import Generation
from sdwebui.routing import ROUTE_HEADER, route_key
from sdwebui.settings import read_sampling
from tests.conftest import API, BASE, fixture_json, generation_body, png_bytes


def run(webui, params, default_model=""):
    return Generation(WebUIClient(BASE), default_model=default_model).txt2img(read_sampling(params), Deadline(30))


def headers_of(webui, method, route):
    return [c.request.headers.get(ROUTE_HEADER) for c in webui.calls(method, route)]


def test_the_key_drops_the_hash_a_webui_adds_after_the_first_load():
    assert route_key("rand-b.safetensors") == route_key("rand-b.safetensors [2a30d74d7c]") == "rand-b.safetensors"
    assert route_key("sub/x.safetensors [6ce0161689]") == "sub/x.safetensors"
    assert route_key(None) == route_key("") == ""


def test_the_key_is_ascii_even_for_a_non_ascii_title():
    key = route_key("写真/モデル é.safetensors [17b6bb621c]")
    assert key.isascii() and "\r" not in key and "\n" not in key
    assert key == "%E5%86%99%E7%9C%9F/%E3%83%A2%E3%83%87%E3%83%AB %C3%A9.safetensors"
    assert route_key("a\r\nX-Evil: 1") == "a%0D%0AX-Evil: 1"


def test_every_request_after_resolution_carries_the_model_options_and_generation_alike(webui):
    webui.answer_txt2img(generation_body([png_bytes()], sd_model_name="rand-b"))
    run(webui, {"prompt": "a red apple", "model_name": "rand-b"})
    assert headers_of(webui, "GET", "sd-models") == [None]  # the one request sent before the model is known
    assert headers_of(webui, "GET", "options") == ["rand-b.safetensors"]
    assert headers_of(webui, "POST", "options") == ["rand-b.safetensors"]
    assert headers_of(webui, "POST", "txt2img") == ["rand-b.safetensors"]


def test_the_default_model_routes_too(webui):
    webui.answer_txt2img()
    run(webui, {"prompt": "x"}, default_model="17b6bb621c")  # the short hash resolves to rand-a's title
    assert headers_of(webui, "POST", "txt2img") == ["rand-a.safetensors"]


def test_with_no_model_asked_the_rest_of_the_call_follows_the_active_model(webui):
    webui.answer_txt2img()
    run(webui, {"prompt": "x"})
    assert headers_of(webui, "GET", "options") == [None]  # nothing known yet: the balancer picks
    assert headers_of(webui, "POST", "txt2img") == ["rand-a.safetensors"]
    assert "override_settings" not in webui.sent_json("txt2img")


@responses.activate
def test_no_credentials_ever_travel_in_the_header():
    responses.get(API + "/sd-models", json=fixture_json("get_sd_models"))
    client = WebUIClient("http://alice:s3cret@webui.test:7860")
    client.route_by_model("rand-a.safetensors [17b6bb621c]")
    client.sd_models(Deadline(5))
    sent = responses.calls[0].request.headers
    assert sent[ROUTE_HEADER] == "rand-a.safetensors" and "s3cret" not in json.dumps(dict(sent)).replace(sent["Authorization"], "")
    client.route_by_model(None)
    client.sd_models(Deadline(5))
    assert ROUTE_HEADER not in responses.calls[1].request.headers
