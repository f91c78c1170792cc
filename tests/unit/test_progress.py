"""Live progress: each reader against the recorded answers, the lines a person reads, and the poller's rules.

Recordings: ``forge/webui_mode/post_internal_progress_*`` and ``get_progress_*`` (Forge, UI on),
``a1111/post_internal_progress_*`` and ``get_progress_*``, ``sdnext/058a7f0/get_status`` and
``get_progress*`` (SD.Next). SD.Next's ``/status`` during a job is not recorded; its busy shape below keeps the
recorded keys and fills them as SD.Next's ``/progress`` recording does during a job.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests
import responses

from sdwebui.client import WebUIClient
from sdwebui.deadline import Deadline
from sdwebui.progress import (GlobalProgressReader, InternalProgressReader, Poller, Progress,
                              SdNextStatusReader)
from tests.conftest import API, BASE, fixture_json

INTERNAL = BASE + "/internal/progress"
PROGRESS = API + "/progress"
FORGE = "forge/webui_mode/"


def _client() -> WebUIClient:
    return WebUIClient(BASE)


def _read(reader) -> Progress | None:
    return reader.read(Deadline(2))


# ---------------------------------------------------------------------------------------------- Progress


def test_lines_a_person_reads():
    assert Progress.make("queued", ahead=1).line() == "waiting: 1 job ahead"
    assert Progress.make("queued", ahead=3).line() == "waiting: 3 jobs ahead"
    assert Progress.make("queued").line() == "waiting in the WebUI's queue"
    assert Progress.make("loading").line() == "loading the model"
    assert Progress.make("sampling", step=12, steps=20, fraction=0.6, eta=4.2).line() == (
        "sampling: step 12 of 20 (60 %), about 4 s left")
    assert Progress.make("sampling", fraction=0.5, eta=90).line() == "sampling: 50 %, about 1 min 30 s left"
    assert Progress.make("sampling", step=0, steps=20, fraction=0.0).line() == "sampling: starting"
    assert Progress.make("finishing").line().startswith("finishing")


def test_noise_is_not_change_but_progress_is():
    assert Progress.make("sampling", step=3, steps=20, fraction=0.1501, eta=41.2) == Progress.make(
        "sampling", step=3, steps=20, fraction=0.1499, eta=39.4)
    assert Progress.make("sampling", step=3, steps=20, fraction=0.15) != Progress.make(
        "sampling", step=4, steps=20, fraction=0.2)
    assert Progress.make("sampling", step=5, steps=20, eta=5.2) != Progress.make("sampling", step=5, steps=20, eta=3.9)


def test_garbage_numbers_are_dropped_not_raised():
    value = Progress.make("sampling", step="x", steps=None, fraction=float("nan"), eta=float("inf"))
    assert (value.step, value.steps, value.percent, value.eta_s) == (None, None, None, None)
    assert Progress.make("sampling", step=50, steps=20, fraction=3).percent == 100
    assert Progress.make("sampling", step=50, steps=20).step == 20
    assert Progress.make("sampling", eta=-3).eta_s is None


# ---------------------------------------------------------------------------------------------- /internal/progress


def _internal(name: str) -> dict:
    return fixture_json(name)


@responses.activate
def test_internal_queued_counts_the_running_job_as_ahead():
    recorded = _internal(FORGE + "post_internal_progress_queued_task")
    assert recorded["textinfo"] == "In queue: 1/1"  # the first waiting job, behind one running job
    pending = fixture_json(FORGE + "get_internal_pending_tasks")
    assert pending["size"] == 1 and pending["tasks"] == ["task(rec-queued-2)"]  # the running one is not listed
    assert fixture_json("a1111/get_internal_pending_tasks_during_job") == {"size": 0, "tasks": []}
    responses.post(INTERNAL, json=recorded)
    value = _read(InternalProgressReader(_client(), "task(rec-queued-2)"))
    assert value == Progress.make("queued", ahead=1)
    assert value.line() == "waiting: 1 job ahead"
    body = json.loads(responses.calls[0].request.body)
    assert body == {"id_task": "task(rec-queued-2)", "live_preview": False}


@responses.activate
def test_internal_queued_further_back():
    responses.post(INTERNAL, json={**_internal(FORGE + "post_internal_progress_queued_task"),
                                   "textinfo": "In queue: 2/3"})
    assert _read(InternalProgressReader(_client(), "t")).ahead == 2


@responses.activate
def test_internal_active_adds_the_step_from_progress():
    active = _internal(FORGE + "post_internal_progress_active_task")
    state = fixture_json(FORGE + "get_progress_during_job")
    responses.post(INTERNAL, json=active)
    responses.get(PROGRESS, json=state)
    value = _read(InternalProgressReader(_client(), "task(rec-active-1)"))
    assert (value.stage, value.step, value.steps) == ("sampling", 1, 40)
    assert value.percent == round(active["progress"] * 100)
    assert value.eta_s == 280  # 276.9 s, in 10 s steps
    assert value.line() == "sampling: step 1 of 40 (2 %), about 4 min 40 s left"
    assert responses.calls[1].request.url.endswith("progress?skip_current_image=true")


@responses.activate
def test_internal_active_without_progress_route_still_reports():
    responses.post(INTERNAL, json=_internal(FORGE + "post_internal_progress_active_task"))
    responses.get(PROGRESS, status=500, json={"error": "RuntimeError", "errors": "boom"})
    value = _read(InternalProgressReader(_client(), "task(rec-active-1)"))
    assert (value.stage, value.step, value.percent) == ("sampling", None, 2)


@responses.activate
def test_internal_a1111_active_before_first_step():
    responses.post(INTERNAL, json=_internal("a1111/post_internal_progress_during_job"))
    responses.get(PROGRESS, json=fixture_json("a1111/get_progress_during_job_skip_current_image"))
    value = _read(InternalProgressReader(_client(), "task(recorded-a1111-1)"))
    assert (value.stage, value.step, value.steps, value.eta_s) == ("sampling", 0, 6, None)
    assert value.line() == "sampling: starting"


@pytest.mark.parametrize("name", [FORGE + "post_internal_progress_completed_task", "a1111/post_internal_progress_after_job"])
@responses.activate
def test_internal_completed_is_finishing(name):
    responses.post(INTERNAL, json=_internal(name))
    assert _read(InternalProgressReader(_client(), "t")).stage == "finishing"


@pytest.mark.parametrize("name", [FORGE + "post_internal_progress_unknown_task", "a1111/post_internal_progress_unknown_task"])
@responses.activate
def test_internal_unknown_task_is_no_news(name):
    responses.post(INTERNAL, json=_internal(name))
    assert _read(InternalProgressReader(_client(), "no-such-task")) is None


@pytest.mark.parametrize("reply", [
    dict(status=404, json={"detail": "Not Found"}),
    dict(status=500, body="not json"),
    dict(status=200, body="{truncated"),
    dict(status=200, json=["a", "list"]),
    dict(body=requests.exceptions.ConnectionError("refused")),
])
@responses.activate
def test_internal_never_raises(reply):
    responses.post(INTERNAL, **reply)
    assert _read(InternalProgressReader(_client(), "t")) is None


# ---------------------------------------------------------------------------------------------- GET /progress


@pytest.mark.parametrize("name", [FORGE + "get_progress_during_job", FORGE + "get_progress_during_job_with_queue"])
@responses.activate
def test_global_trusted_during_job(name):
    recorded = fixture_json(name)
    responses.get(PROGRESS, json=recorded)
    value = _read(GlobalProgressReader(_client(), lambda: True))
    state = recorded["state"]
    assert (value.stage, value.step, value.steps) == ("sampling", state["sampling_step"], state["sampling_steps"])
    # the percent is A1111's own formula without /progress's 0.01 head start (0.035 recorded for step 1 of 40)
    assert value.percent == round(100 * state["sampling_step"] / state["sampling_steps"])
    assert recorded["progress"] == pytest.approx(0.01 + state["sampling_step"] / state["sampling_steps"])
    assert value.eta_s is not None


@responses.activate
def test_global_before_first_step_shows_no_eta():
    recorded = fixture_json("a1111/get_progress_during_job_skip_current_image")
    assert recorded["eta_relative"] > 300  # a guess from the 0.01 head start, not an estimate
    responses.get(PROGRESS, json=recorded)
    value = _read(GlobalProgressReader(_client(), lambda: True))
    assert (value.step, value.eta_s, value.line()) == (0, None, "sampling: starting")


@pytest.mark.parametrize("name", [FORGE + "get_progress_idle", FORGE + "get_progress_after_jobs",
                                  "a1111/get_progress_idle", "a1111/get_progress_after_job"])
@responses.activate
def test_global_idle_is_no_news(name):
    responses.get(PROGRESS, json=fixture_json(name))
    assert _read(GlobalProgressReader(_client(), lambda: True)) is None


@responses.activate
def test_global_untrusted_does_not_ask_and_says_nothing():
    responses.get(PROGRESS, json=fixture_json(FORGE + "get_progress_during_job"))
    assert _read(GlobalProgressReader(_client(), lambda: False)) is None
    assert len(responses.calls) == 0


@responses.activate
def test_global_trust_callable_that_raises_is_no_news():
    def broken() -> bool:
        raise RuntimeError("caller bug")

    assert _read(GlobalProgressReader(_client(), broken)) is None


@responses.activate
def test_global_loading_job_name():
    recorded = fixture_json(FORGE + "get_progress_during_job")
    recorded["state"]["job"] = "Load"
    responses.get(PROGRESS, json=recorded)
    assert _read(GlobalProgressReader(_client(), lambda: True)).stage == "loading"


@responses.activate
def test_global_401_is_no_news():
    from tests.fixtures.load import load_fixture

    recorded = load_fixture("auth_get_progress_no_credentials")["response"]
    responses.get(PROGRESS, status=recorded["status"], json=recorded["json"])
    assert _read(GlobalProgressReader(_client(), lambda: True)) is None


# ---------------------------------------------------------------------------------------------- SD.Next


SDNEXT = "sdnext/058a7f0/"


def _busy_status(**changes) -> dict:
    """The recorded idle ``/status`` with the numbers of the recorded ``/progress`` during a job."""
    status = fixture_json(SDNEXT + "get_status")
    during = fixture_json(SDNEXT + "get_progress_during_generation_short")
    status.update(status="running", task=during["state"]["job"], step=during["state"]["sampling_step"],
                  steps=during["state"]["sampling_steps"], progress=during["progress"], eta=during["eta_relative"],
                  job=1, jobs=1)
    status.update(changes)
    return status


@responses.activate
def test_sdnext_idle_status_is_no_news():
    idle = fixture_json(SDNEXT + "get_status")
    assert idle["status"] == "idle" and idle["task"] == ""
    responses.get(API + "/status", json=idle)
    assert _read(SdNextStatusReader(_client())) is None


@responses.activate
def test_sdnext_running_status():
    responses.get(API + "/status", json=_busy_status())
    value = _read(SdNextStatusReader(_client()))
    assert (value.stage, value.step, value.steps, value.percent) == ("sampling", 2, 30, 7)
    assert value.line() == "sampling: step 2 of 30 (7 %), about 1 min 50 s left"  # 108.56 s, in 10 s steps


@responses.activate
def test_sdnext_load_task_is_loading():
    responses.get(API + "/status", json=_busy_status(task="Load", step=0, steps=0, progress=0.0, eta=None))
    assert _read(SdNextStatusReader(_client())).line() == "loading the model"


@responses.activate
def test_sdnext_falls_back_to_progress():
    responses.get(API + "/status", status=404, json={"detail": "Not Found"})
    responses.get(PROGRESS, json=fixture_json(SDNEXT + "get_progress_during_generation_short"))
    value = _read(SdNextStatusReader(_client()))
    assert (value.stage, value.step, value.steps, value.percent) == ("sampling", 2, 30, 7)


@responses.activate
def test_sdnext_idle_progress_fallback_is_no_news():
    responses.get(API + "/status", status=404, json={"detail": "Not Found"})
    responses.get(PROGRESS, json=fixture_json(SDNEXT + "get_progress"))
    assert _read(SdNextStatusReader(_client())) is None


@responses.activate
def test_sdnext_untrusted():
    responses.get(API + "/status", json=_busy_status())
    assert _read(SdNextStatusReader(_client(), trusted=lambda: False)) is None
    assert len(responses.calls) == 0


@responses.activate
def test_sdnext_unreachable_is_no_news():
    responses.get(API + "/status", body=requests.exceptions.ConnectionError("refused"))
    responses.get(PROGRESS, body=requests.exceptions.ConnectionError("refused"))
    assert _read(SdNextStatusReader(_client())) is None


# ---------------------------------------------------------------------------------------------- Poller


class FakeReader:
    def __init__(self, values):
        self.values = list(values)
        self.deadlines: list[float] = []
        self.lock = threading.Lock()

    def read(self, deadline):
        with self.lock:
            self.deadlines.append(deadline.remaining())
            if len(self.values) > 1:
                return self.values.pop(0)
            return self.values[0] if self.values else None


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


S1, S2, S3 = (Progress.make("sampling", step=n, steps=10, fraction=n / 10) for n in (1, 2, 3))
Q = Progress.make("queued", ahead=1)


def test_reports_only_changes_and_at_most_every_two_seconds():
    clock = Clock()
    seen: list[Progress] = []
    poller = Poller(FakeReader([Q, Q, S1, S2, S3, S3, S3]), seen.append, clock=clock)
    for _ in range(7):
        poller.poll_once()
        clock.now += 1.0
    # t=0 Q reported; t=1 Q same; t=2 S1 due; t=3 S2 too soon; t=4 S3 replaces S2 and is due; t=5,6 same
    assert seen == [Q, S1, S3]
    assert poller.polls == 7


def test_a_held_value_is_reported_later_if_nothing_newer_comes():
    clock = Clock()
    seen: list[Progress] = []
    poller = Poller(FakeReader([Q, S1, S1]), seen.append, clock=clock)
    poller.poll_once()
    clock.now = 0.5
    poller.poll_once()  # S1 too soon
    assert seen == [Q]
    clock.now = 2.5
    poller.poll_once()
    assert seen == [Q, S1]


def test_no_news_keeps_the_last_value():
    clock = Clock()
    seen: list[Progress] = []
    poller = Poller(FakeReader([Q, None, None, Q]), seen.append, clock=clock)
    for _ in range(4):
        poller.poll_once()
        clock.now += 3
    assert seen == [Q]


def test_callback_and_reader_exceptions_are_swallowed():
    class Broken:
        def read(self, deadline):
            raise RuntimeError("reader bug")

    poller = Poller(Broken(), lambda value: None)
    poller.poll_once()
    assert poller.polls == 1

    def explode(value):
        raise RuntimeError("callback bug")

    clock = Clock()
    poller = Poller(FakeReader([Q, S1]), explode, clock=clock)
    poller.poll_once()
    clock.now = 3
    poller.poll_once()
    assert poller.reported == S1  # the second change was still handed over


def test_poll_deadline_is_short_and_never_past_the_calls():
    reader = FakeReader([Q])
    Poller(reader, lambda v: None, deadline=Deadline(0.5)).poll_once()
    Poller(reader, lambda v: None, deadline=Deadline(100)).poll_once()
    assert reader.deadlines[0] <= 0.5
    assert 1.0 < reader.deadlines[1] <= 2.0
    expired = FakeReader([Q])
    poller = Poller(expired, lambda v: None, deadline=Deadline(0))
    poller.poll_once()
    assert expired.deadlines == [] and poller.polls == 0


def test_interval_never_below_one_second():
    poller = Poller(FakeReader([Q]), lambda v: None, min_interval_s=0.01, max_interval_s=0.01)
    assert poller.min_interval_s >= 1.0 and poller.max_interval_s >= 1.0


def test_thread_polls_reports_and_stops_promptly():
    seen: list[Progress] = []
    reader = FakeReader([Q, S1])
    poller = Poller(reader, seen.append, first_s=0.0, report_every_s=0.0).start()
    give_up = time.monotonic() + 10
    while poller.polls < 2 and time.monotonic() < give_up:
        time.sleep(0.05)
    started = time.monotonic()
    poller.stop()
    assert time.monotonic() - started < 1.5  # stop() wakes the thread's wait (generous bound)
    assert not poller._thread.is_alive()
    assert poller.polls >= 2
    assert seen[:2] == [Q, S1]


def test_stopped_before_the_first_poll_never_polls():
    reader = FakeReader([Q])
    poller = Poller(reader, lambda v: None).start()  # first poll after ~1 s
    poller.stop()
    assert poller.polls == 0 and reader.deadlines == []


def test_context_manager_stops():
    with Poller(FakeReader([Q]), lambda v: None, first_s=5.0) as poller:
        pass
    assert not poller._thread.is_alive()
