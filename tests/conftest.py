"""Shared test helpers: a `responses` mock of one WebUI, shaped on the recorded Forge exchanges."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import pytest
import responses

from sdwebui.catalog import clear_cache
from tests.fixtures.load import load_fixture

BASE = "http://webui.test:7860"
API = BASE + "/sdapi/v1"


@pytest.fixture(autouse=True)
def _fresh_catalog_cache():
    clear_cache()
    yield
    clear_cache()


def fixture_json(name: str) -> Any:
    return load_fixture(name)["response"]["json"]


def png_bytes(width: int = 8, height: int = 8, color=(200, 30, 30), fmt: str = "PNG") -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format=fmt)
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def generation_body(images: list[bytes], *, seeds: list[int] | None = None, index_of_first_image: int = 0, **info: Any) -> dict:
    """A txt2img/img2img answer in the recorded shape, with our own images and info fields."""
    recorded = fixture_json("post_txt2img")
    parsed = json.loads(recorded["info"])
    parsed.update(all_seeds=seeds if seeds is not None else [1234 + i for i in range(len(images) - index_of_first_image)])
    parsed.update(index_of_first_image=index_of_first_image, **info)
    return {"images": [b64(i) for i in images], "parameters": recorded["parameters"], "info": json.dumps(parsed)}


class MockWebUI:
    """Registers the recorded Forge answers on `responses` for one base URL."""

    def __init__(self, rsps: responses.RequestsMock, active: str = "rand-a.safetensors") -> None:
        self.rsps = rsps
        self.options = dict(fixture_json("get_options"), sd_model_checkpoint=active)
        rsps.get(API + "/sd-models", json=fixture_json("get_sd_models"))
        rsps.add_callback(responses.GET, API + "/options", callback=lambda req: (200, {}, json.dumps(self.options)))
        rsps.add_callback(responses.POST, API + "/options", callback=self._post_options)
        rsps.get(API + "/version", json={"detail": "Not Found"}, status=404)
        rsps.get(API + "/sd-modules", json=fixture_json("get_sd_modules"))
        rsps.get(API + "/schedulers", json=fixture_json("get_schedulers"))
        rsps.get(API + "/samplers", json=fixture_json("get_samplers"))
        rsps.get(API + "/loras", json=fixture_json("get_loras"))
        rsps.get(API + "/upscalers", json=fixture_json("get_upscalers"))
        rsps.get(API + "/latent-upscale-modes", json=fixture_json("get_latent_upscale_modes"))
        rsps.post(API + "/interrupt", json={})

    def _post_options(self, request):
        self.options.update(json.loads(request.body))
        return 200, {}, "null"

    def answer_txt2img(self, body: Any = None, status: int = 200, route: str = "txt2img", **kwargs: Any) -> None:
        if body is None:  # the size asked for by default, as a real server would make it
            body = generation_body([png_bytes(512, 512)], seeds=[1234])
        self.rsps.post(f"{API}/{route}", json=body, status=status, **kwargs)

    def calls(self, method: str, route: str) -> list:
        return [c for c in self.rsps.calls if c.request.method == method and c.request.url.split("?")[0] == f"{API}/{route}"]

    def sent_json(self, route: str, index: int = -1) -> dict:
        return json.loads(self.calls("POST", route)[index].request.body)


@pytest.fixture
def webui():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield MockWebUI(rsps)
