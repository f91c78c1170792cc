"""Scale-out: the plugin behind a real nginx that load-balances three WebUIs with different active models.

A load balancer sends each HTTP request to whichever backend is next, so the plugin's
``POST /options`` (a global switch on one backend) may land on a different WebUI than the
``txt2img`` that follows. The plugin must therefore carry the model in every request's
``override_settings`` and check ``info.sd_model_name``; this test proves it does, through the
Debian ``nginx`` binary (``scripts/ensure_nginx.sh`` installs it; a missing nginx fails, never skips).
"""

from __future__ import annotations

import io
import json
import urllib.request

from PIL import Image

from tests.harness.nginx import Nginx
from tests.standin.webui import StandInWebUI

PROVIDER = "sd_webui"
MODELS = ("rand-a", "rand-b")
CALLS = 20
TXT2IMG = "/sdapi/v1/txt2img"


def _set_active_checkpoint(server: StandInWebUI, title: str) -> None:
    """What a user switching the model in that WebUI's own UI does: a global options change."""
    request = urllib.request.Request(
        server.base_url + "/sdapi/v1/options",
        data=json.dumps({"sd_model_checkpoint": title}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def _stem(checkpoint: str) -> str:
    """'rand-b.safetensors [2a30d74d7c]' -> 'rand-b'."""
    return checkpoint.split(" [")[0].removesuffix(".safetensors")


def test_round_robin_over_three_webuis_every_image_comes_from_the_model_asked_for(plugin):
    # Three WebUIs: with two, round robin's strict alternation happens to send each call's POST /options and
    # generation (two requests apart, with the queue check between them) to the same WebUI.
    with StandInWebUI("forge", generation_delay=0.02) as webui_a, \
            StandInWebUI("forge", generation_delay=0.02) as webui_b, \
            StandInWebUI("forge", generation_delay=0.02) as webui_c:
        _set_active_checkpoint(webui_b, "rand-b.safetensors")
        assert [_stem(w.active_checkpoint) for w in (webui_a, webui_b, webui_c)] == ["rand-a", "rand-b", "rand-a"]
        backends = {webui_a.port: webui_a, webui_b.port: webui_b, webui_c.port: webui_c}

        with Nginx([webui_a.base_url, webui_b.base_url, webui_c.base_url]) as proxy:
            asked: dict[str, str] = {}  # prompt -> model asked for; the prompt ties backend records to calls
            for i in range(CALLS):
                model = MODELS[i % 2]
                prompt = f"scale-out call {i:02d}"
                asked[prompt] = model
                result = plugin.invoke_tool(
                    PROVIDER, "txt2img", {"base_url": proxy.base_url},
                    {"prompt": prompt, "width": 64, "height": 64, "steps": 2, "model_name": model},
                    timeout=60,
                )
                assert result.error is None, f"call {i} ({model}) failed: {result.error}"
                assert result.jsons and result.jsons[0]["model"].startswith(f"{model}.safetensors"), (
                    f"call {i} asked for {model} but info.sd_model_name is {result.jsons[0].get('model')!r}")
                assert len(result.blobs) == 1 and result.blobs[0].mime_type == "image/png"
                assert Image.open(io.BytesIO(result.blobs[0].data)).size == (64, 64)
            assert proxy.alive(), proxy.error_log()
        access_log = proxy.access_log()  # read after nginx stopped: every line is flushed

        # The load really was spread: every WebUI generated, and between them exactly the 20 calls.
        generated = {port: webui.requests_to("POST", TXT2IMG) for port, webui in backends.items()}
        assert all(generated.values()), {port: len(r) for port, r in generated.items()}
        assert sorted(r.json["prompt"] for records in generated.values() for r in records) == sorted(asked)

        # Every generation request carried its own model and kept it (no restore to a stale global).
        for port, records in generated.items():
            for record in records:
                overrides = record.json.get("override_settings") or {}
                assert _stem(overrides.get("sd_model_checkpoint", "")) == asked[record.json["prompt"]], (port, record.json)
                assert record.json.get("override_settings_restore_afterwards") is False, (port, record.json)

        # Replay each WebUI's own request log to know its global checkpoint when each txt2img arrived.
        # Behind round-robin the plugin's POST /options and the txt2img that follows reach different
        # WebUIs, so generations do arrive at a WebUI set to the other model: only override_settings
        # made those right (and the plugin checked info.sd_model_name on each).
        arrived_on_other_model = 0
        for webui in backends.values():
            active = "rand-a"  # all start on their first model; B's switch to rand-b is in its own log
            for record in webui.requests:
                if record.method == "POST" and record.path == "/sdapi/v1/options":
                    active = _stem(record.json.get("sd_model_checkpoint", active))
                elif record.method == "POST" and record.path == TXT2IMG:
                    wanted = asked[record.json["prompt"]]
                    arrived_on_other_model += active != wanted
                    active = wanted  # restore off: the override becomes the WebUI's checkpoint
        assert arrived_on_other_model > 0, "no generation reached a WebUI set to the other model"

        # nginx's own log agrees: every upstream answered txt2img, all with 200.
        txt2img_log = [entry for entry in access_log if entry["request"].startswith(f"POST {TXT2IMG} ")]
        assert len(txt2img_log) == CALLS
        assert {entry["status"] for entry in txt2img_log} == {"200"}
        assert {entry["upstream_addr"] for entry in txt2img_log} == {f"127.0.0.1:{port}" for port in backends}
