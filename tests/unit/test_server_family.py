"""Each member of the WebUI family gets the payload its API expects (stand-in shaped on each server's code and recordings)."""

from __future__ import annotations

import pytest

from sdwebui import errors
from sdwebui.catalog import Catalog
from sdwebui.client import WebUIClient
from sdwebui.deadline import Deadline
from sdwebui.generation import Generation
from sdwebui.settings import read_sampling
from tests.standin.webui import StandInWebUI


def generate(server: StandInWebUI, params: dict, default_model: str = ""):
    generation = Generation(WebUIClient(server.base_url), default_model=default_model)
    return generation.txt2img(read_sampling({"width": 64, "height": 64, "steps": 2, **params}), Deadline(30))


def sent(server: StandInWebUI) -> dict:
    return server.requests_to("POST", "/sdapi/v1/txt2img")[-1].json


@pytest.mark.parametrize(("flavor", "has_schedulers"), [("a1111", True), ("forge", True), ("sdnext", True), ("sdcpp", True)])
def test_detects_each_server_once_per_base_url(flavor, has_schedulers):
    with StandInWebUI(flavor) as server:
        client = WebUIClient(server.base_url)
        first = Catalog(client).server(Deadline(10))
        again = Catalog(WebUIClient(server.base_url)).server(Deadline(10))
        assert (first.flavor, first.has_schedulers) == (flavor, has_schedulers)
        assert again == first
        assert len(server.requests_to("GET", "/sdapi/v1/version")) == 1
        assert not server.requests_to("GET", "/sdapi/v1/cmd-flags")


def test_a1111_switches_and_reports_errors_in_errors():
    with StandInWebUI("a1111") as server:
        result = generate(server, {"prompt": "x", "model_name": "rand-b", "sampler_name": "Euler a", "scheduler_name": "Karras"})
        body = sent(server)
        assert (body["sampler_name"], body["scheduler"]) == ("Euler a", "karras")
        assert body["override_settings"]["sd_model_checkpoint"].startswith("rand-b")
        assert result.summary()["model"] == "rand-b.safetensors" and result.warnings == []
        server.inject("oom")
        with pytest.raises(errors.ServerError, match="CUDA out of memory"):
            generate(server, {"prompt": "x"})


def test_sdnext_gets_no_scheduler_jpeg_comes_back_and_clip_skip_is_a_field():
    with StandInWebUI("sdnext") as server:
        result = generate(server, {"prompt": "x", "sampler_name": "Euler a", "clip_skip": 2, "model_name": "rand-b"})
        body = sent(server)
        assert "scheduler" not in body and body["clip_skip"] == 2
        assert "CLIP_stop_at_last_layers" not in body.get("override_settings", {})
        assert result.images[0].mime_type == "image/jpeg" and result.images[0].filename.endswith(".jpg")
        title = body["override_settings"]["sd_model_checkpoint"]
        assert title.startswith("rand-b") and ".safetensors" not in title  # SD.Next titles carry no extension
        assert len(server.requests_to("POST", "/sdapi/v1/reload-checkpoint")) == 1  # its POST /options only stores
        assert server.loaded_model == "rand-b" and result.summary()["model"] == title
        generate(server, {"prompt": "x", "scheduler_name": "karras"})
        assert "scheduler" not in sent(server) and sent(server)["override_settings"]["schedulers_sigma"] == "karras"


def test_sdnext_legacy_names_are_mapped_or_refused_before_its_404():
    with StandInWebUI("sdnext") as server:
        result = generate(server, {"prompt": "x", "sampler_name": "DPM++ 2M Karras"})  # it would answer 404 to this name
        body = sent(server)
        assert body["sampler_name"] == "DPM++ 2M" and body["override_settings"]["schedulers_sigma"] == "karras"
        assert result.warnings == []
        with pytest.raises(errors.NotFound, match="no sampler named 'DPM\\+\\+ 2S a Karras'. Closest: "):
            generate(server, {"prompt": "x", "sampler_name": "DPM++ 2S a Karras"})  # it has no DPM++ 2S a
        assert len(server.requests_to("POST", "/sdapi/v1/txt2img")) == 1


def test_sdcpp_takes_loras_as_an_array_and_native_names():
    with StandInWebUI("sdcpp") as server:
        lora = Catalog(WebUIClient(server.base_url)).loras(Deadline(5))[0]
        generate(server, {"prompt": "a fox", "sampler_name": "Euler a", "scheduler_name": "Karras", "loras": f"{lora.name}:0.6", "clip_skip": 2})
        body = sent(server)
        assert body["prompt"] == "a fox" and body["lora"] == [{"path": lora.path, "multiplier": 0.6}]
        assert (body["sampler_name"], body["scheduler"], body["clip_skip"]) == ("euler_a", "karras", 2)
        assert "override_settings" not in body
        assert not server.requests_to("POST", "/sdapi/v1/options")


def test_sdcpp_cannot_switch_models_and_says_so():
    with StandInWebUI("sdcpp") as server:
        with pytest.raises(errors.Unsupported, match="runs the one model it was started with .* cannot switch to 'rand-b'"):
            generate(server, {"prompt": "x", "model_name": "rand-b"})
        only = Catalog(WebUIClient(server.base_url)).models(Deadline(5))[0]
        generate(server, {"prompt": "x", "model_name": only.title})  # its own model is fine
        assert not server.requests_to("POST", "/sdapi/v1/options")


def test_an_ignored_options_switch_is_made_good_by_the_requests_own_override():
    with StandInWebUI("a1111") as server:
        server.inject("model_switch_ignored", path="POST /sdapi/v1/options")  # 200, but the load "failed"
        result = generate(server, {"prompt": "x", "model_name": "rand-b"})
        assert result.summary()["model"] == "rand-b.safetensors" and server.loaded_model.startswith("rand-b")


def test_a_switch_that_never_happens_is_an_error():
    with StandInWebUI("a1111") as server:
        server.inject("model_switch_ignored", path="POST /sdapi/v1/options")
        server.inject("model_switch_ignored", path="POST /sdapi/v1/txt2img")
        with pytest.raises(errors.ServerError, match="Asked for model 'rand-b.*' but the WebUI generated with 'rand-a"):
            generate(server, {"prompt": "x", "model_name": "rand-b"})


def test_an_override_silently_ignored_is_caught_from_info():
    """rand-b is active and asked for, but the WebUI generates with rand-a anyway: info tells, and it is an error."""
    with StandInWebUI("a1111") as server:
        generate(server, {"prompt": "x", "model_name": "rand-b"})
        server.inject("model_switch_ignored", path="POST /sdapi/v1/txt2img")
        client = WebUIClient(server.base_url)
        client.set_options({"sd_model_checkpoint": "rand-a"}, Deadline(5))  # another app switched it back...
        stale = Generation(client, default_model="rand-b")
        stale.client.options = lambda deadline: server_options_saying(server, "rand-b")  # ...after our GET /options
        with pytest.raises(errors.ServerError, match="Asked for model 'rand-b.* generated with 'rand-a"):
            stale.txt2img(read_sampling({"prompt": "x", "width": 64, "height": 64, "steps": 2}), Deadline(30))


def server_options_saying(server: StandInWebUI, checkpoint: str):
    from sdwebui.models import Options

    return Options(sd_model_checkpoint=checkpoint, samples_format="png")
