"""The plugin run as Dify runs it (python -m main, JSON lines over stdio) against a stand-in WebUI on 127.0.0.1."""

from __future__ import annotations

import io
import socket

from PIL import Image

from tests.standin.webui import StandInWebUI

PROVIDER = "sd_webui"


def creds(server: StandInWebUI, **extra) -> dict:
    return {"base_url": server.base_url, **extra}


def test_validate_credentials_accepts_a_working_webui(plugin, standin):
    result = plugin.validate_credentials(PROVIDER, creds(standin, default_model="rand-a"))
    assert result.error is None and result.messages == [{"result": True}]
    assert standin.requests_to("GET", "/sdapi/v1/sd-models")


def test_validate_credentials_explains_a_refused_localhost(plugin):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = plugin.validate_credentials(PROVIDER, {"base_url": f"http://127.0.0.1:{port}"})
    assert result.error["error_type"] == "ToolProviderCredentialValidationError"
    assert "Connection refused" in result.error["message"] and "host.docker.internal" in result.error["message"]


def test_validate_credentials_names_wrong_auth_without_echoing_it(plugin):
    with StandInWebUI("forge", auth=("user", "secret")) as server:
        result = plugin.validate_credentials(PROVIDER, creds(server, username="user", password="not-the-secret"))
    assert "Incorrect username or password" in result.error["message"]
    assert "not-the-secret" not in str(result.raw_lines)


def test_txt2img_returns_the_webuis_image_bytes_as_a_blob(plugin, standin):
    result = plugin.invoke_tool(PROVIDER, "txt2img", creds(standin, default_model="rand-a"),
                                {"prompt": "a red apple", "width": 64, "height": 64, "steps": 2, "seed": 1234})
    assert result.error is None, result.error
    assert [b.data for b in result.blobs] == standin.last_images
    assert result.blobs[0].mime_type == "image/png" and result.blobs[0].filename == "sd-1234.png"
    assert result.jsons[0]["seeds"] == [1234] and result.jsons[0]["model"] == "rand-a.safetensors [17b6bb621c]"
    assert result.variables["seed"] == 1234 and (result.variables["width"], result.variables["height"]) == (64, 64)
    assert result.texts[-1].startswith("Generated 1 image with rand-a.safetensors [17b6bb621c], seed 1234, 64x64.")
    assert standin.requests_to("POST", "/sdapi/v1/options") == []  # rand-a was already active


def test_txt2img_switches_model_once_and_every_image_comes_back(plugin, standin):
    params = {"prompt": "x", "width": 64, "height": 64, "steps": 2, "batch_size": 3, "model_name": "rand-b"}
    first = plugin.invoke_tool(PROVIDER, "txt2img", creds(standin), params)
    second = plugin.invoke_tool(PROVIDER, "txt2img", creds(standin), params)
    assert first.error is None and second.error is None
    assert len(first.blobs) == 3 and [b.data for b in second.blobs] == standin.last_images
    assert len(set(first.jsons[0]["seeds"])) == 3
    assert [r.json for r in standin.requests_to("POST", "/sdapi/v1/options")] == [{"sd_model_checkpoint": "rand-b.safetensors"}]
    assert standin.model_loads == 1  # Forge loads lazily: rand-b once, at the first generation, then it stays
    assert first.jsons[0]["model"] == "rand-b.safetensors"  # its title: not hashed yet when the list was read


def test_errors_come_back_as_one_sentence(plugin, standin):
    result = plugin.invoke_tool(PROVIDER, "txt2img", creds(standin), {"prompt": "x", "model_name": "rand-q"})
    assert result.error["error_type"] == "InvokeBadRequestError"
    assert result.error["message"].startswith("The WebUI has no model named 'rand-q'. Closest available:")
    assert standin.requests_to("POST", "/sdapi/v1/txt2img") == []


def test_fetch_parameter_options_through_stdio(plugin, standin):
    models = plugin.fetch_parameter_options(PROVIDER, "txt2img", "model", creds(standin))
    assert [o["value"] for o in models.messages[0]["options"]] == ["rand-a.safetensors [17b6bb621c]", "rand-b.safetensors"]
    samplers = plugin.fetch_parameter_options(PROVIDER, "txt2img", "sampler", creds(standin))
    assert "Euler a" in [o["value"] for o in samplers.messages[0]["options"]]
    upscalers = plugin.fetch_parameter_options(PROVIDER, "upscale", "upscaler", creds(standin))
    assert "Lanczos" in [o["value"] for o in upscalers.messages[0]["options"]]


def _png(width: int, height: int, color=(10, 120, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="PNG")
    return out.getvalue()


def test_img2img_sends_the_file_the_webui_way_and_follows_its_size(plugin, standin, files):
    source = _png(100, 60)
    result = plugin.invoke_tool(PROVIDER, "img2img", creds(standin),
                                {"image": files.add(source), "prompt": "a blue sky", "steps": 2, "denoising_strength": 0.4})
    assert result.error is None, result.error
    sent = standin.requests_to("POST", "/sdapi/v1/img2img")[-1]
    assert sent.init_images == [source]  # raw base64 of the very bytes Dify served
    assert not sent.json["init_images"][0].startswith("data:")
    assert (sent.json["width"], sent.json["height"], sent.json["denoising_strength"]) == (104, 64, 0.4)
    assert [b.data for b in result.blobs] == standin.last_images


def test_inpaint_sends_the_mask_and_explicit_area(plugin, standin, files):
    mask = _png(64, 64, (255, 255, 255))
    result = plugin.invoke_tool(PROVIDER, "img2img", creds(standin),
                                {"image": files.add(_png(64, 64)), "mask": files.add(mask), "prompt": "a cat", "steps": 2})
    assert result.error is None, result.error
    sent = standin.requests_to("POST", "/sdapi/v1/img2img")[-1]
    assert sent.mask == mask
    assert {k: sent.json[k] for k in ("inpaint_full_res", "inpainting_fill", "mask_blur", "inpainting_mask_invert")} == {
        "inpaint_full_res": False, "inpainting_fill": 1, "mask_blur": 4, "inpainting_mask_invert": 0}


def test_upscale_after_txt2img(plugin, standin, files):
    generated = plugin.invoke_tool(PROVIDER, "txt2img", creds(standin), {"prompt": "x", "width": 64, "height": 64, "steps": 2})
    image = files.add(generated.blobs[0].data, filename=generated.blobs[0].filename)
    result = plugin.invoke_tool(PROVIDER, "upscale", creds(standin), {"image": image, "upscaler_name": "lanczos", "scale": 2})
    assert result.error is None, result.error
    assert result.blobs[0].data == standin.last_images[0]
    assert result.jsons[0]["width"] == 128 and result.variables["upscaler"] == "Lanczos"


def test_bad_files_are_refused_before_generating(plugin, standin, files):
    not_an_image = files.add(b"%PDF-1.4 not an image", filename="doc.pdf", mime_type="application/pdf")
    result = plugin.invoke_tool(PROVIDER, "img2img", creds(standin), {"image": not_an_image, "prompt": "x"})
    assert result.error["error_type"] == "InvokeBadRequestError" and "not a PNG, JPEG" in result.error["message"]
    empty = plugin.invoke_tool(PROVIDER, "img2img", creds(standin), {"image": files.add(b""), "prompt": "x"})
    assert "empty" in empty.error["message"]
    assert standin.requests_to("POST", "/sdapi/v1/img2img") == []


def test_list_resources_for_an_agent(plugin, standin):
    result = plugin.invoke_tool(PROVIDER, "list_resources", creds(standin), {})
    resources = result.jsons[0]
    assert resources["server"] == "Forge" and resources["loras"] == ["rand-lora"]
    assert "DPM++ 2M" in resources["samplers"] and "karras" in resources["schedulers"]
    assert not standin.requests_to("GET", "/sdapi/v1/cmd-flags")


def test_plugin_never_writes_stray_or_oversized_lines(plugin):
    assert plugin.non_json_lines == []
    assert plugin.max_line_bytes < 5 * 1024 * 1024
    assert plugin.alive() and len(plugin.heartbeats) >= 1


def _stream_lines(result) -> list[tuple[int, dict]]:
    """(raw line index, stream message) for each streamed message, blob chunks included."""
    import json

    found = []
    for index, raw in enumerate(result.raw_lines):
        payload = (json.loads(raw).get("data") or {})
        if payload.get("type") == "stream":
            found.append((index, payload.get("data") or {}))
    return found


def _outputs(result) -> list:
    """What a workflow gets: blobs, json (less the elapsed time), variables and texts, in order."""
    out = []
    for message in result.messages:
        kind = message.get("type")
        if kind == "log":
            continue
        if kind == "blob":
            out.append(("blob", message["blob_obj"].data, message["meta"]))
        elif kind == "json":
            body = dict(message["message"]["json_object"])
            body.pop("elapsed_s")
            out.append(("json", body))
        else:
            out.append((kind, message["message"]))
    return out


def test_progress_log_messages_stream_while_a_slow_job_runs_and_outputs_stay_the_same(plugin):
    params = {"prompt": "a red apple", "width": 64, "height": 64, "steps": 20, "seed": 77}
    with StandInWebUI("forge", generation_delay=3) as server:
        on = plugin.invoke_tool(PROVIDER, "txt2img", creds(server, default_model="rand-a"), params)
        off = plugin.invoke_tool(PROVIDER, "txt2img", creds(server, default_model="rand-a", progress_messages="off"), params)
    assert on.error is None and off.error is None, (on.error, off.error)
    streamed = _stream_lines(on)
    logs = [(index, data["message"]) for index, data in streamed if data.get("type") == "log"]
    first_blob = next(index for index, data in streamed if data.get("type") == "blob_chunk")
    statuses = [log["status"] for _, log in logs]
    assert statuses[0] == "start" and statuses[-1] == "success" and statuses.count("start") >= 2, statuses
    assert len({log["id"] for _, log in logs}) == 1  # one entry, updated by id
    assert logs[0][1]["data"] == {"stage": "started", "line": "Generating 1 image, 64x64, 20 steps"}
    updates = [log["data"] for _, log in logs[1:-1]]
    assert all(u["stage"] in ("sampling", "finishing") and u["line"] for u in updates), updates
    assert any(u.get("steps") == 20 and 0 < u.get("step", 0) < 20 for u in updates), updates  # steps advanced
    assert logs[-1][1]["data"]["images"] == 1 and logs[-1][1]["data"]["size"] == "64x64"
    assert logs[-1][1]["data"]["seconds"] >= 3
    # Streamed while the job ran: the first update reached us well before the images did.
    assert on.arrived[logs[1][0]] < on.arrived[first_blob] - 0.5
    assert all(index < first_blob for index, _ in logs)
    assert [m for m in off.messages if m.get("type") == "log"] == []
    assert _outputs(on) == _outputs(off)
