"""Deadlines against the stand-in's real queue: two concurrent callers, and the one whose deadline fires while its
job is still queued never interrupts the other's running job. Also the servers without task ids or /interrupt.

The stand-in keeps A1111's task bookkeeping (tests/standin/tasks.py): force_task_id, pending/current/finished,
``POST /internal/progress`` with "In queue: k/n", and ``/progress`` in the recorded shape.
"""

from __future__ import annotations

import threading
import time

import pytest
import requests

from sdwebui import errors, jobs
from sdwebui.client import WebUIClient
from sdwebui.deadline import Deadline
from sdwebui.models import Txt2ImgRequest
from tests.standin.webui import StandInWebUI

JOB_S = 2.0  # each stand-in job holds the "GPU" this long


def _request(prompt: str) -> Txt2ImgRequest:
    return Txt2ImgRequest(prompt=prompt, width=64, height=64, steps=4, cfg_scale=7, seed=1)


def _wait_until_busy(server: StandInWebUI, timeout: float = 5.0) -> None:
    ends = time.monotonic() + timeout
    while time.monotonic() < ends:
        if requests.get(server.base_url + "/sdapi/v1/progress", timeout=2).json()["state"]["job_count"]:
            return
        time.sleep(0.02)
    raise AssertionError("the first job never started")


def _first_caller(server: StandInWebUI, outcome: dict) -> threading.Thread:
    def run() -> None:
        try:
            outcome["result"] = jobs.txt2img(WebUIClient(server.base_url), _request("first caller"), Deadline(30))
        except errors.WebUIError as exc:  # pragma: no cover - reported by the assertion below
            outcome["error"] = exc
    thread = threading.Thread(target=run)
    thread.start()
    _wait_until_busy(server)
    return thread


@pytest.mark.parametrize("ui", [True, False], ids=["with task ids (UI on)", "global /progress only (--nowebui)"])
def test_a_caller_whose_deadline_fires_while_queued_leaves_the_other_callers_running_job_alone(ui):
    with StandInWebUI("forge", generation_delay=JOB_S) as server:
        server.tasks.ui = ui
        outcome: dict = {}
        first = _first_caller(server, outcome)
        started = time.monotonic()
        with pytest.raises(errors.Timeout) as caught:
            jobs.txt2img(WebUIClient(server.base_url), _request("second caller"), Deadline(0.8))
        waited = time.monotonic() - started
        first.join(timeout=30)

        message = str(caught.value)
        assert server.requests_to("POST", "/sdapi/v1/interrupt") == [], "someone else's job was interrupted"
        assert "error" not in outcome and outcome["result"].images, outcome
        assert server.tasks.finished[0] == server.requests_to("POST", "/sdapi/v1/txt2img")[0].json["force_task_id"]
        assert waited < JOB_S, "the second caller should have given up while the first job was still running"
        if ui:
            assert "still queued in position 1 of 1, behind the running job, so it was not interrupted" in message
        else:
            assert "still queued behind the job that was already running when it was sent" in message
        assert "will still run when its turn comes" in message


def test_our_own_running_job_is_interrupted():
    with StandInWebUI("forge", generation_delay=30) as server:
        started = time.monotonic()
        with pytest.raises(errors.Timeout, match="so the job was interrupted while it was generating"):
            jobs.txt2img(WebUIClient(server.base_url), _request("too slow"), Deadline(1.0))
        assert len(server.requests_to("POST", "/sdapi/v1/interrupt")) == 1
        assert time.monotonic() - started < 10
        _wait_until_idle(server)


def test_without_task_ids_an_idle_webui_at_post_time_means_ours_is_the_running_job():
    with StandInWebUI("forge", generation_delay=30) as server:
        server.tasks.ui = False
        with pytest.raises(errors.Timeout, match="so the job was interrupted while it was generating"):
            jobs.txt2img(WebUIClient(server.base_url), _request("too slow"), Deadline(1.0))
        assert len(server.requests_to("POST", "/sdapi/v1/interrupt")) == 1


def test_stable_diffusion_cpp_cannot_stop_the_job_and_says_so():
    with StandInWebUI("sdcpp", generation_delay=3) as server:
        with pytest.raises(errors.Timeout) as caught:
            jobs.txt2img(WebUIClient(server.base_url), _request("too slow"), Deadline(1.0))
    message = str(caught.value)
    assert "the job could not be stopped" in message and "may still be running on the server" in message
    assert "was interrupted" not in message
    assert server.requests_to("POST", "/sdapi/v1/interrupt") == []


def _wait_until_idle(server: StandInWebUI, timeout: float = 5.0) -> None:
    ends = time.monotonic() + timeout
    while time.monotonic() < ends and requests.get(server.base_url + "/sdapi/v1/progress", timeout=2).json()["state"]["job_count"]:
        time.sleep(0.02)


def test_the_active_tasks_progress_advances_like_the_recorded_answer():
    """post_internal_progress_active_task.json: the same keys, ``textinfo`` null, ``progress`` a growing fraction."""
    from tests.fixtures.load import load_fixture

    recorded = load_fixture("forge/webui_mode/post_internal_progress_active_task.json")["response"]["json"]
    with StandInWebUI("forge", generation_delay=JOB_S) as server:
        body = {**_request("ours").to_json(), "force_task_id": "task(ours)"}
        thread = threading.Thread(target=lambda: requests.post(server.base_url + "/sdapi/v1/txt2img", json=body, timeout=30))
        thread.start()
        _wait_until_busy(server)
        answers = []
        for _ in range(2):
            time.sleep(0.7)
            answers.append(requests.post(server.base_url + "/internal/progress", timeout=5,
                                         json={"id_task": "task(ours)", "live_preview": False}).json())
        thread.join(timeout=30)
    assert [set(a) for a in answers] == [set(recorded)] * 2
    assert all(a["active"] is True and a["textinfo"] is None and a["eta"] > 0 for a in answers)
    assert 0 < answers[0]["progress"] < answers[1]["progress"] < 1
