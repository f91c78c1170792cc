"""The Dify side: provider validation messages, tool messages, and the error mapping."""

from __future__ import annotations

import json

import pytest
from dify_plugin.errors.model import InvokeAuthorizationError, InvokeBadRequestError, InvokeConnectionError, InvokeServerUnavailableError
from dify_plugin.errors.tool import ToolProviderCredentialValidationError

from provider.sd_webui import SDWebUIProvider
from tests.conftest import API, BASE, fixture_json, generation_body, load_fixture, png_bytes
from tools.txt2img import Txt2ImgTool

CREDENTIALS = {"base_url": BASE + "/", "default_model": "rand-a"}


def invoke(params, credentials=CREDENTIALS):
    return list(Txt2ImgTool.from_credentials(credentials).invoke(params))


def test_provider_accepts_a_working_webui(webui):
    SDWebUIProvider().validate_credentials(CREDENTIALS)
    assert webui.calls("GET", "sd-models")


def test_provider_unknown_default_model_lists_closest(webui):
    with pytest.raises(ToolProviderCredentialValidationError, match=r"no model named 'rand-x'. Closest available: rand-a.safetensors \[17b6bb621c\], rand-b.safetensors"):
        SDWebUIProvider().validate_credentials({"base_url": BASE, "default_model": "rand-x"})


def test_provider_401_and_no_password_echo(webui):
    rec = load_fixture("auth_get_sd_models_wrong_password")["response"]
    webui.rsps.replace("GET", API + "/sd-models", json=rec["json"], status=401)
    with pytest.raises(ToolProviderCredentialValidationError) as caught:
        SDWebUIProvider().validate_credentials({"base_url": BASE, "username": "user", "password": "hunter2"})
    assert "--api-auth" in str(caught.value) and "hunter2" not in str(caught.value)


def test_provider_bad_timeout(webui):
    with pytest.raises(ToolProviderCredentialValidationError, match="between 10 and 540 seconds"):
        SDWebUIProvider().validate_credentials({"base_url": BASE, "timeout": "9999"})


def test_provider_empty_model_list(webui):
    webui.rsps.replace("GET", API + "/sd-models", json=[])
    with pytest.raises(ToolProviderCredentialValidationError, match="lists no checkpoints"):
        SDWebUIProvider().validate_credentials({"base_url": BASE})


def test_tool_yields_blobs_then_info_then_one_text_line(webui):
    a, b = png_bytes(512, 512, color=(9, 9, 9)), png_bytes(512, 512, color=(8, 8, 8))
    webui.answer_txt2img(generation_body([a, b], seeds=[100, 101]))
    messages = invoke({"prompt": "a red apple", "batch_size": 2})
    logs = [m for m in messages if m.type.value == "log"]
    assert messages[:len(logs)] == logs  # the progress log entry comes first, then the outputs as before
    messages = messages[len(logs):]
    kinds = [m.type.value for m in messages]
    assert kinds[:2] == ["blob", "blob"] and kinds[2] == "json" and kinds[-1] == "text"
    assert [m.message.blob for m in messages[:2]] == [a, b]
    assert [m.meta for m in messages[:2]] == [{"mime_type": "image/png", "filename": "sd-100.png"}, {"mime_type": "image/png", "filename": "sd-101.png"}]
    summary = messages[2].message.json_object
    assert summary["seeds"] == [100, 101] and summary["model"] == "rand-a.safetensors [17b6bb621c]"  # info's model, by title
    variables = {m.message.variable_name: m.message.variable_value for m in messages if m.type.value == "variable"}
    assert variables["seed"] == 100 and variables["seeds"] == [100, 101]
    assert messages[-1].message.text == "Generated 2 images with rand-a.safetensors [17b6bb621c], seeds 100, 101, 512x512."
    assert "iVBOR" not in json.dumps(summary)  # never base64 in JSON


def test_progress_log_is_one_entry_started_then_success_and_off_sends_none(webui):
    webui.answer_txt2img(generation_body([png_bytes(512, 512)], seeds=[5]))
    messages = invoke({"prompt": "x", "width": 512, "height": 512, "steps": 20})
    logs = [m.message for m in messages if m.type.value == "log"]
    assert [log.status.value for log in logs] == ["start", "success"]  # the fake WebUI answers at once: no update
    assert len({log.id for log in logs}) == 1 and logs[0].label == "Stable Diffusion WebUI"
    assert logs[0].data == {"stage": "started", "line": "Generating 1 image, 512x512, 20 steps"}
    assert logs[1].data["images"] == 1 and logs[1].data["size"] == "512x512" and logs[1].data["seconds"] >= 0
    webui.answer_txt2img(generation_body([png_bytes(512, 512)], seeds=[5]))
    off = invoke({"prompt": "x", "width": 512, "height": 512, "steps": 20}, {**CREDENTIALS, "progress_messages": "off"})
    assert [m.type.value for m in off if m.type.value == "log"] == []
    def outputs(ms):  # everything but the log entry and the elapsed time
        dumped = [(m.type.value, m.message.model_dump()) for m in ms if m.type.value != "log"]
        for kind, body in dumped:
            if kind == "json":
                body["json_object"].pop("elapsed_s")
        return dumped

    assert outputs(off) == outputs(messages) and len(outputs(off)) == len(messages) - 2


def test_progress_log_ends_in_error_and_the_dify_error_is_still_raised(webui):
    messages = []
    with pytest.raises(InvokeBadRequestError, match="no model named 'rand-q'") as caught:
        for message in Txt2ImgTool.from_credentials(CREDENTIALS).invoke({"prompt": "x", "model_name": "rand-q"}):
            messages.append(message)
    logs = [m.message for m in messages]
    assert [log.status.value for log in logs] == ["start", "error"] and logs[0].id == logs[1].id
    assert logs[1].error == str(caught.value) and caught.value.__cause__ is None


def test_output_variables_match_the_output_schema(webui):
    import yaml

    schema = yaml.safe_load(open("tools/txt2img.yaml"))["output_schema"]["properties"]
    webui.answer_txt2img()
    variables = {m.message.variable_name for m in invoke({"prompt": "x"}) if m.type.value == "variable"}
    assert variables == set(schema)


@pytest.mark.parametrize(
    ("setup", "params", "error_type", "message"),
    [
        (None, {"prompt": ""}, InvokeBadRequestError, "prompt is empty"),
        (None, {"prompt": "x", "width": 7}, InvokeBadRequestError, "width must be between"),
        ((401, {"detail": "Not authenticated"}), {"prompt": "x"}, InvokeAuthorizationError, "requires a username"),
        ((404, {"detail": "Not Found"}), {"prompt": "x"}, InvokeConnectionError, "--api"),
        ((500, {"error": "OutOfMemoryError", "errors": "CUDA out of memory"}), {"prompt": "x"}, InvokeServerUnavailableError, "GPU memory"),
    ],
)
def test_errors_are_raised_as_dify_invoke_errors(webui, setup, params, error_type, message):
    if setup:
        status, body = setup
        webui.answer_txt2img(body, status=status)
    with pytest.raises(error_type, match=message) as caught:
        invoke(params)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_input_errors_make_no_http_call(webui):
    with pytest.raises(InvokeBadRequestError):
        invoke({"prompt": "x", "steps": "many"})
    assert len(webui.rsps.calls) == 0


def test_fetch_parameter_options_lists_models_samplers_and_more(webui):
    tool = Txt2ImgTool.from_credentials(CREDENTIALS)
    models = tool.fetch_parameter_options("model")
    assert [(o.value, o.label.en_us) for o in models] == [("rand-a.safetensors [17b6bb621c]", "rand-a"), ("rand-b.safetensors", "rand-b")]
    assert "Euler a" in [o.value for o in tool.fetch_parameter_options("sampler")]
    assert [o.value for o in tool.fetch_parameter_options("scheduler")][:3] == ["automatic", "uniform", "karras"]
    assert [o.value for o in tool.fetch_parameter_options("lora")] == ["rand-lora"]
    hr = [o.value for o in tool.fetch_parameter_options("hr_upscaler")]
    assert hr[0] == "Latent" and "Lanczos" in hr and "None" not in hr
    assert fixture_json("get_samplers")  # options come from the recorded lists
