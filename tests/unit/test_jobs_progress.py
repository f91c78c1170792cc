"""Progress while a job's POST is open: which reader fits the server, and the poller's life inside post_job.

The ``/progress`` answers are the recorded Forge ones (``get_progress_idle``, ``get_progress_during_job_*``);
sd.cpp answers 404 there (``sdcpp/post_interrupt_404`` shape), which :class:`~sdwebui.errors.ApiNotFound` stands for.
"""

from __future__ import annotations

import threading

import pytest

from sdwebui import jobs
from sdwebui.deadline import Deadline
from sdwebui.errors import ApiNotFound, Unreachable
from sdwebui.progress import GlobalProgressReader, InternalProgressReader, Progress, SdNextStatusReader
from sdwebui.servers import FORGE, SDCPP, SDNEXT
from tests.conftest import fixture_json

IDLE = fixture_json("get_progress_idle")
RUNNING = fixture_json("get_progress_during_job_skip_current_image")


class FakeClient:
    """GET /progress answers ``at_post`` (or raises it); POST waits for ``release`` (or raises ``post_error``)."""

    def __init__(self, at_post, *, post_error: Exception | None = None) -> None:
        self.at_post = at_post
        self.post_error = post_error
        self.release = threading.Event()
        self.posted: dict | None = None

    def get(self, path, deadline=None):
        if isinstance(self.at_post, Exception):
            raise self.at_post
        return self.at_post

    def request(self, method, path, prefix=None, deadline=None, body=None):
        return {"active": False, "queued": False, "completed": False}

    def post(self, route, body, deadline=None, max_bytes=None):
        self.posted = body
        self.release.wait(5)
        if self.post_error is not None:
            raise self.post_error
        return {"images": []}


def _reader(at_post, server):
    client = FakeClient(at_post)
    watch = jobs.JobWatch(client, with_task_id=True)
    body = watch.before_post({}, Deadline(5))
    return jobs.progress_reader(client, watch, server), body


def test_forge_reads_our_task_id_and_trusts_the_global_state_only_when_idle_at_post():
    reader, body = _reader(IDLE, FORGE)
    assert isinstance(reader.internal, InternalProgressReader) and reader.internal.task_id == body["force_task_id"]
    assert isinstance(reader.fallback, GlobalProgressReader) and reader.fallback.trusted() is True
    busy, _ = _reader(RUNNING, FORGE)
    assert busy.fallback.trusted() is False  # another caller's job was running: /progress is not ours
    assert busy.read(Deadline(1)) is None  # the task is unknown to /internal/progress, /progress untrusted


def test_sdnext_reads_status_trusted_only_when_idle_at_post():
    idle, _ = _reader(IDLE, SDNEXT)
    busy, _ = _reader(RUNNING, SDNEXT)
    assert isinstance(idle, SdNextStatusReader) and idle.trusted() is True and busy.trusted() is False


@pytest.mark.parametrize("at_post, server", [(ApiNotFound("404"), SDCPP), (IDLE, SDCPP), (IDLE, None)])
def test_no_reader_for_sdcpp_or_an_unknown_server(at_post, server):
    assert _reader(at_post, server)[0] is None


class FakeReader:
    def __init__(self) -> None:
        self.polled = threading.Event()
        self.reads = 0

    def read(self, deadline):
        self.reads += 1
        self.polled.set()
        return Progress.make("sampling", step=self.reads, steps=20)


@pytest.fixture
def wired(monkeypatch):
    """post_job with a fake reader and a poller that polls at once; yields (reader, pollers started)."""
    reader, pollers = FakeReader(), []
    monkeypatch.setattr(jobs, "progress_reader", lambda client, watch, server: reader)

    class RecordedPoller(jobs.Poller):
        def start(self):
            pollers.append(self)
            return super().start()

    monkeypatch.setattr(jobs, "Poller", RecordedPoller)
    return reader, pollers


def _post_in_background(client, on_progress):
    outcome = {}

    def run():
        try:
            outcome["value"] = jobs.post_job(client, "txt2img", {}, Deadline(10), server=FORGE, on_progress=on_progress,
                                             poller_options={"first_s": 0, "report_every_s": 0})
        except Exception as exc:  # noqa: BLE001
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


@pytest.mark.parametrize("post_error", [None, Unreachable("gone")])
def test_the_poller_reports_while_the_post_is_open_and_stops_when_it_returns_or_raises(wired, post_error):
    reader, pollers = wired
    client = FakeClient(IDLE, post_error=post_error)
    seen = []
    thread, outcome = _post_in_background(client, seen.append)
    assert reader.polled.wait(3)
    client.release.set()
    thread.join(5)
    assert seen and seen[0].step == 1  # reported while the POST was still open
    assert pollers[0]._stop.is_set() and not pollers[0]._thread.is_alive()
    assert ("error" in outcome) == (post_error is not None) and outcome.get("error", None) is post_error


def test_a_failing_callback_never_reaches_the_call(wired):
    reader, _ = wired
    client = FakeClient(IDLE)

    def explode(value):
        raise RuntimeError("callback bug")

    thread, outcome = _post_in_background(client, explode)
    assert reader.polled.wait(3)
    client.release.set()
    thread.join(5)
    assert outcome == {"value": {"images": []}}


def test_without_a_callback_no_poller_starts(wired):
    reader, pollers = wired
    client = FakeClient(IDLE)
    client.release.set()
    assert jobs.post_job(client, "txt2img", {}, Deadline(5), server=FORGE) == {"images": []}
    assert pollers == [] and reader.reads == 0
