"""Deadlines on a queued or running job: what the error says, and /interrupt only for a job that is ours.

Every answer here is a recorded Forge one (``get_progress_*``) or the shape of A1111's
``POST /internal/progress`` (``modules/progress.py``: ``active``, ``queued``, ``completed``,
``textinfo`` "In queue: 2/3"); sd.cpp's 404s have an empty body (``sdcpp/post_interrupt_404``).
"""

from __future__ import annotations

import json

import pytest
import requests
import responses

from sdwebui import errors, jobs
from sdwebui.client import WebUIClient
from sdwebui.deadline import Deadline
from sdwebui.models import ExtrasRequest, Txt2ImgRequest
from tests.conftest import API, BASE, fixture_json

INTERNAL = BASE + "/internal/progress"
IDLE = fixture_json("get_progress_idle")
RUNNING = fixture_json("get_progress_during_job_skip_current_image")
RUNNING_LATER = {**RUNNING, "state": {**RUNNING["state"], "job_timestamp": "20261122005999"}}


def _txt2img(seconds: float = 42) -> None:
    request = Txt2ImgRequest(prompt="x", width=64, height=64, steps=2, cfg_scale=7)
    jobs.txt2img(WebUIClient(BASE), request, Deadline(seconds))


def _progress_answers(*answers: dict) -> None:
    """GET /progress answers in order: before posting, then after the deadline."""
    for answer in answers:
        responses.get(API + "/progress", json=answer)


def _interrupts() -> list:
    return [c for c in responses.calls if c.request.url == API + "/interrupt"]


def _task(**flags) -> dict:
    return {"active": False, "queued": False, "completed": False, "progress": None, "eta": None,
            "live_preview": None, "id_live_preview": -1, "textinfo": "Waiting...", **flags}


@responses.activate
def test_our_running_task_is_interrupted_and_the_task_id_was_sent():
    _progress_answers(IDLE)
    responses.post(API + "/txt2img", body=requests.exceptions.ReadTimeout())
    responses.post(INTERNAL, json=_task(active=True, progress=0.4, textinfo="Sampling step 8/20"))
    responses.post(API + "/interrupt", json={})
    with pytest.raises(errors.Timeout, match="did not finish within 42 s, so the job was interrupted while it was generating"):
        _txt2img()
    sent = json.loads(next(c for c in responses.calls if c.request.url == API + "/txt2img").request.body)
    asked = json.loads(next(c for c in responses.calls if c.request.url == INTERNAL).request.body)
    assert sent["force_task_id"].startswith("dify-") and asked["id_task"] == sent["force_task_id"]
    assert len(_interrupts()) == 1
    assert [c.request.url for c in responses.calls][0] == API + "/progress?skip_current_image=true"


@responses.activate
def test_a_queued_task_names_its_place_and_is_not_interrupted():
    _progress_answers(RUNNING)
    responses.post(API + "/txt2img", body=requests.exceptions.ReadTimeout())
    responses.post(INTERNAL, json=_task(queued=True, textinfo="In queue: 2/3"))
    responses.post(API + "/interrupt", json={})
    with pytest.raises(errors.Timeout) as caught:
        _txt2img()
    message = str(caught.value)
    assert "still queued in position 2 of 3, behind the running job, so it was not interrupted" in message
    assert "will still run when its turn comes" in message
    assert _interrupts() == []


@responses.activate
def test_a_task_that_just_completed_is_not_interrupted():
    _progress_answers(IDLE)
    responses.post(API + "/txt2img", body=requests.exceptions.ReadTimeout())
    responses.post(INTERNAL, json=_task(completed=True))
    with pytest.raises(errors.Timeout, match="finished on the WebUI just as the time ran out"):
        _txt2img()
    assert _interrupts() == []


@responses.activate
def test_without_task_ids_a_job_queued_behind_the_one_running_at_post_time_is_left_alone():
    _progress_answers(RUNNING, RUNNING)  # the same job (same job_timestamp) still runs
    responses.post(API + "/txt2img", body=requests.exceptions.ReadTimeout())
    responses.post(INTERNAL, json={"detail": "Not Found"}, status=404)  # --nowebui: no /internal routes
    responses.post(API + "/interrupt", json={})
    with pytest.raises(errors.Timeout, match="still queued behind the job that was already running when it was sent"):
        _txt2img()
    assert _interrupts() == []


@responses.activate
def test_without_task_ids_a_busy_webui_at_post_time_means_no_interrupt_even_after_the_job_changed():
    _progress_answers(RUNNING, RUNNING_LATER)
    responses.post(API + "/txt2img", body=requests.exceptions.ReadTimeout())
    responses.post(INTERNAL, json=_task())  # SD.Next / old A1111: the id is unknown to it
    responses.post(API + "/interrupt", json={})
    with pytest.raises(errors.Timeout, match="does not say whose job runs now"):
        _txt2img()
    assert _interrupts() == []


@responses.activate
def test_without_task_ids_an_idle_webui_at_post_time_means_the_running_job_is_ours():
    _progress_answers(IDLE, RUNNING)
    responses.post(API + "/txt2img", body=requests.exceptions.ReadTimeout())
    responses.post(INTERNAL, json={"detail": "Not Found"}, status=404)
    responses.post(API + "/interrupt", json={})
    with pytest.raises(errors.Timeout, match="so the job was interrupted while it was generating"):
        _txt2img()
    assert len(_interrupts()) == 1


@responses.activate
def test_stable_diffusion_cpp_says_the_job_could_not_be_stopped():
    responses.get(API + "/progress", body=b"", status=404)  # sdcpp/get_progress_404: empty body
    responses.post(API + "/txt2img", body=requests.exceptions.ReadTimeout())
    with pytest.raises(errors.Timeout) as caught:
        _txt2img()
    message = str(caught.value)
    assert "could not be stopped" in message and "may still be running on the server" in message
    assert "interrupted" not in message
    sent = json.loads(next(c for c in responses.calls if c.request.url == API + "/txt2img").request.body)
    assert "force_task_id" not in sent
    assert _interrupts() == []


@responses.activate
def test_an_interrupt_route_that_is_missing_is_not_claimed_as_done():
    _progress_answers(IDLE, RUNNING)
    responses.post(API + "/txt2img", body=requests.exceptions.ReadTimeout())
    responses.post(INTERNAL, body=b"", status=404)
    responses.post(API + "/interrupt", body=b"", status=404)
    with pytest.raises(errors.Timeout) as caught:
        _txt2img()
    assert "could not be stopped: this server has no /interrupt route" in str(caught.value)
    assert "was interrupted" not in str(caught.value)


@responses.activate
def test_upscaling_sends_no_task_id():


    _progress_answers(IDLE)
    responses.post(API + "/extra-single-image", json={"html_info": "", "image": ""})
    jobs.extra_single_image(WebUIClient(BASE), ExtrasRequest(image="aGk=", upscaler_1="Lanczos"), Deadline(5))
    sent = json.loads(responses.calls[-1].request.body)
    assert "force_task_id" not in sent


@responses.activate
def test_stable_diffusion_cpp_says_so_once_the_plugin_knows_the_server_family():
    # Catalog.server tells the client the family before every generation; its 404s then become MissingRoute.
    responses.get(API + "/progress", body=b"", status=404)
    responses.post(API + "/txt2img", body=requests.exceptions.ReadTimeout())
    client = WebUIClient(BASE)
    client.known_server = ("stable-diffusion.cpp server", "use an AUTOMATIC1111, Forge or SD.Next WebUI for it")
    with pytest.raises(errors.Timeout) as caught:
        jobs.txt2img(client, Txt2ImgRequest(prompt="x", width=64, height=64, steps=2, cfg_scale=7), Deadline(42))
    assert "could not be stopped: this server has no /progress or /interrupt route" in str(caught.value)
    assert _interrupts() == []


@responses.activate
def test_a_missing_interrupt_route_on_a_known_server_is_not_called_a_failed_request():
    _progress_answers(IDLE, RUNNING)
    responses.post(API + "/txt2img", body=requests.exceptions.ReadTimeout())
    responses.post(INTERNAL, body=b"", status=404)
    responses.post(API + "/interrupt", body=b"", status=404)
    client = WebUIClient(BASE)
    client.known_server = ("Forge WebUI", "update the Forge WebUI, or use another WebUI of the family that has it")
    with pytest.raises(errors.Timeout) as caught:
        jobs.txt2img(client, Txt2ImgRequest(prompt="x", width=64, height=64, steps=2, cfg_scale=7), Deadline(42))
    assert "could not be stopped: this server has no /interrupt route" in str(caught.value)
