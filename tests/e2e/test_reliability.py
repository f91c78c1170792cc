"""Faults, secrets and concurrency, through the stdio runtime: each fault ends in one specific error and the plugin survives."""

from __future__ import annotations

import socket
import time

import pytest

from tests.harness.plugin_process import invoke_data
from tests.standin.webui import StandInWebUI

PROVIDER = "sd_webui"
SMALL = {"prompt": "a red apple", "width": 64, "height": 64, "steps": 2}


def txt2img(plugin, server, params=None, **credentials):
    return plugin.invoke_tool(PROVIDER, "txt2img", {"base_url": server.base_url, **credentials}, {**SMALL, **(params or {})})


@pytest.mark.parametrize(
    ("fault", "error_type", "message"),
    [
        ("oom", "InvokeServerUnavailableError", "ran out of GPU memory (CUDA out of memory"),
        ("html_502", "InvokeServerUnavailableError", "answered POST /sdapi/v1/txt2img with HTTP 502 and an HTML page"),
        ("truncated_json", "InvokeServerUnavailableError", "is not valid JSON"),
        ("invalid_base64", "InvokeServerUnavailableError", "not valid base64"),
        ("non_image", "InvokeServerUnavailableError", "not a PNG, JPEG or WebP image"),
        ("empty_images", "InvokeServerUnavailableError", "answered without any image"),
        ("drop_connection", "InvokeServerUnavailableError", "closed the connection without answering"),
        ("cut_midbody", "InvokeServerUnavailableError", "cut off mid-transfer"),
        ("html_200", "InvokeConnectionError", "with an HTML page, not the WebUI API"),
    ],
)
def test_each_fault_is_one_specific_error_and_the_plugin_survives(plugin, standin, fault, error_type, message):
    standin.inject(fault)
    failed = txt2img(plugin, standin)
    assert failed.error is not None and failed.blobs == []
    assert failed.error["error_type"] == error_type
    assert message in failed.error["message"]
    assert "Traceback" not in failed.error["message"]
    recovered = txt2img(plugin, standin)
    assert recovered.error is None and len(recovered.blobs) == 1
    assert plugin.alive()


def test_a_job_that_outlives_the_deadline_gets_interrupted_because_it_is_ours(plugin):
    with StandInWebUI("forge", generation_delay=120) as slow:  # a job far longer than the 10 s deadline
        beats_before = len(plugin.heartbeats)
        started = time.monotonic()
        result = txt2img(plugin, slow, timeout="10")
        waited = time.monotonic() - started
        beats = [t for t in plugin.heartbeats[beats_before:] if started <= t <= started + waited]
        assert len(beats) >= 5, f"only {len(beats)} heartbeats (interval 1 s) while the call waited {waited:.0f} s"
        assert result.error["error_type"] == "InvokeServerUnavailableError"
        assert "did not finish within 10 s, so the job was interrupted" in result.error["message"]
        assert 9 <= waited < 30
        assert len(slow.requests_to("POST", "/sdapi/v1/interrupt")) == 1
        ends = time.monotonic() + 5
        while not slow.tasks.finished and time.monotonic() < ends:  # the interrupted job winds down
            time.sleep(0.02)
        assert slow.tasks.finished == [slow.requests_to("POST", "/sdapi/v1/txt2img")[0].json["force_task_id"]]


def test_a_hanging_webui_with_no_running_job_is_not_interrupted(plugin, standin):
    standin.inject("hang")  # the request hangs before any job starts: /progress stays idle
    result = txt2img(plugin, standin, timeout="10")
    assert "did not finish within 10 s: the WebUI reports no running job, so nothing was interrupted" in result.error["message"]
    assert standin.requests_to("POST", "/sdapi/v1/interrupt") == []


def test_a_401_on_a_later_call(plugin):
    with StandInWebUI("forge", auth=("user", "secret")) as server:
        assert txt2img(plugin, server, username="user", password="secret").error is None
        server.inject("unauthorized")
        result = txt2img(plugin, server, username="user", password="secret")
    assert result.error["error_type"] == "InvokeAuthorizationError"
    assert "--api-auth" in result.error["message"] and "secret" not in result.error["message"].replace("--api-auth", "")


def test_a_model_switch_that_silently_did_not_happen(plugin):
    with StandInWebUI("a1111") as server:
        server.inject("model_switch_ignored", path="POST /sdapi/v1/options")
        server.inject("model_switch_ignored", path="POST /sdapi/v1/txt2img")
        result = txt2img(plugin, server, {"model_name": "rand-b"})
    assert result.error["error_type"] == "InvokeServerUnavailableError"
    assert "Asked for model 'rand-b" in result.error["message"] and "generated with 'rand-a" in result.error["message"]
    assert result.blobs == []


SECRET = "S3cr3t-Pa55w0rd"


def test_secrets_never_leave_the_plugin(plugin, files):
    """Password and URL userinfo appear in no message, log line or error, whatever fails."""
    with StandInWebUI("forge", auth=("user", SECRET)) as server:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            closed = s.getsockname()[1]
        userinfo_url = server.base_url.replace("http://", f"http://user:{SECRET}@")
        results = [
            plugin.validate_credentials(PROVIDER, {"base_url": userinfo_url}),
            plugin.validate_credentials(PROVIDER, {"base_url": server.base_url, "username": "user", "password": SECRET + "x"}),
            plugin.validate_credentials(PROVIDER, {"base_url": f"http://user:{SECRET}@127.0.0.1:{closed}"}),
            plugin.invoke_tool(PROVIDER, "txt2img", {"base_url": userinfo_url}, SMALL),
            plugin.invoke_tool(PROVIDER, "txt2img", {"base_url": userinfo_url}, {**SMALL, "model_name": "nope"}),
            plugin.invoke_tool(PROVIDER, "list_resources", {"base_url": userinfo_url}, {}),
            plugin.fetch_parameter_options(PROVIDER, "txt2img", "model", {"base_url": userinfo_url}),
        ]
        server.inject("oom")
        results.append(plugin.invoke_tool(PROVIDER, "txt2img", {"base_url": userinfo_url}, SMALL))
        assert results[0].error is None and results[3].error is None  # userinfo credentials work
        assert not server.requests_to("GET", "/sdapi/v1/cmd-flags")
    assert all(r.error for r in (results[1], results[2], results[4], results[7]))
    for result in results:
        assert SECRET not in "\n".join(result.raw_lines)
    assert SECRET not in plugin.stderr_tail(64 * 1024)
    assert SECRET not in str(plugin.logs)


def test_sixteen_calls_at_once_each_get_their_own_image_and_the_heartbeat_keeps_flowing(plugin):
    with StandInWebUI("forge", generation_delay=0.15) as server:  # the FIFO lock serialises them: ~2.4 s of "GPU" time
        credentials = {"base_url": server.base_url, "default_model": "rand-a"}
        beats_before = len(plugin.heartbeats)
        started = time.monotonic()
        sessions = {seed: plugin.submit(invoke_data(PROVIDER, "txt2img", credentials, {**SMALL, "seed": seed, "width": 256, "height": 256}))
                    for seed in range(5000, 5016)}
        results = {seed: plugin.wait(session, timeout=120) for seed, session in sessions.items()}
        finished = time.monotonic()
        generated = {r.json["seed"]: r for r in server.requests_to("POST", "/sdapi/v1/txt2img")}
    assert all(r.error is None for r in results.values()), [r.error for r in results.values() if r.error]
    for seed, result in results.items():
        assert result.jsons[0]["seeds"] == [seed]
        assert len(result.blobs) == 1 and result.blobs[0].filename == f"sd-{seed}.png"
    assert len({r.blobs[0].data for r in results.values()}) == 16  # each its own image
    assert set(generated) == set(range(5000, 5016))
    beats = [t for t in plugin.heartbeats[beats_before:] if started <= t <= finished]
    assert len(beats) >= 1, "no heartbeat while 16 calls were in flight"
    gaps = [b - a for a, b in zip([started, *beats], [*beats, finished])]
    assert max(gaps) < 5, f"heartbeat stalled for {max(gaps):.1f} s (interval is 1 s)"
