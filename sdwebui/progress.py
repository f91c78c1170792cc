"""Where a running generation stands, read while it runs, as one short line for a person.

A generation is one HTTP call that stays open until the images come back; meanwhile the WebUI answers other
routes. Each *reader* turns one of them into a :class:`Progress` (or ``None`` when it cannot tell), and a
:class:`Poller` runs a reader in the background and hands on each value that changed.

What each route says (recorded answers in ``tests/fixtures``; formulas from A1111's ``modules/progress.py``
and ``modules/api/api.py``, which Forge shares):

* ``POST /internal/progress {"id_task": ..., "live_preview": false}`` (A1111 1.8+ and Forge, UI on, for a
  generation sent with ``force_task_id``): ``queued: true`` with ``textinfo`` "In queue: 1/1" while it waits,
  ``active: true`` with ``progress`` (``job_no/job_count + step/steps/job_count``) and ``eta`` (``null`` before
  the first step) while it runs, ``completed: true`` after it. A task it never saw answers all three ``false``.
  The queue position counts only *waiting* jobs: a job queued behind one running job is "In queue: 1/1", and
  ``GET /internal/pending-tasks`` lists just the waiting ids (``{"size": 0, "tasks": []}`` while one job runs).
  So the jobs ahead of ours are the running one plus ``position - 1`` waiting ones: ``ahead = position``.
* ``GET /sdapi/v1/progress``: one global state with no owner (``state.sampling_step``/``sampling_steps``,
  ``job_count``, ``job``; ``progress`` starts at 0.01, so its ``eta_relative`` before the first step is a wild
  guess, 196 s and 394 s in the recordings). It describes *our* job only while the caller knows the running
  job is ours. ``job_count`` does not count the queue (1 with a job waiting).
* SD.Next ``GET /sdapi/v1/status``: ``status`` ("idle" when nothing runs), ``task`` (the job: "Inference"
  generating, "Load" loading a model, from SD.Next's ``shared.state.begin('Load')`` in ``sd_models.py``),
  ``step``/``steps``, ``progress``, ``eta``, ``queued``. Only its idle answer is recorded; its ``/progress``
  (recorded during a job: ``job: "Inference"``, ``sampling_step`` 2 of 30, ``progress`` 0.07 without A1111's
  0.01 offset) is the fallback.

No recording shows a model being loaded on A1111 or Forge: a job loads an override checkpoint inside its own
``scripts_txt2img`` job, before its first step, which reads like any job at step 0 ("sampling: starting").
"loading" is said only where the server names the job so (SD.Next's "Load", any job or ``textinfo``
mentioning loading).

Readers never raise: any :class:`WebUIError` or malformed answer gives ``None`` (no news), and each read
carries the call's routing header because it goes through the call's own client.
"""

from __future__ import annotations

import math
import re
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Protocol

from sdwebui.deadline import Deadline
from sdwebui.errors import WebUIError

if TYPE_CHECKING:
    from sdwebui.client import WebUIClient

STAGES = ("queued", "loading", "sampling", "finishing")
POLL_S = 2.0  # each poll's own deadline, never beyond the call's
FIRST_POLL_S = 1.0
MIN_INTERVAL_S = 1.0  # never more than one poll a second
MAX_INTERVAL_S = 2.0
REPORT_EVERY_S = 2.0  # at most one update to Dify every 2 s; the latest value wins
_IN_QUEUE = re.compile(r"In queue:\s*(\d+)\s*/\s*(\d+)")
_LOADING = re.compile(r"\bload", re.IGNORECASE)


# ---------------------------------------------------------------------------------------------- the value


@dataclass(frozen=True)
class Progress:
    """Where our job stands. Two equal values mean "nothing changed worth telling"."""

    stage: str
    ahead: int | None = None
    step: int | None = None
    steps: int | None = None
    percent: int | None = None
    eta_s: int | None = None

    @classmethod
    def make(cls, stage: str, *, ahead: Any = None, step: Any = None, steps: Any = None, fraction: Any = None,
             eta: Any = None) -> Progress:
        """Build a value from raw server numbers, rounded so that noise does not count as change."""
        steps_i = _int(steps)
        steps_i = steps_i if steps_i and steps_i > 0 else None
        step_i = _int(step) if steps_i else None
        if step_i is not None:
            step_i = max(0, min(step_i, steps_i))
        frac = _float(fraction)
        percent = None if frac is None else int(round(max(0.0, min(1.0, frac)) * 100))
        ahead_i = _int(ahead)
        return cls(stage=stage, ahead=None if ahead_i is None else max(0, ahead_i), step=step_i, steps=steps_i,
                   percent=percent, eta_s=_round_eta(eta))

    def line(self) -> str:
        """One short English line: "waiting: 1 job ahead", "sampling: step 12 of 20 (60 %), about 4 s left"."""
        if self.stage == "queued":
            if self.ahead is None:
                return "waiting in the WebUI's queue"
            if self.ahead == 0:
                return "waiting: next in line"
            return f"waiting: {self.ahead} job{'s' if self.ahead != 1 else ''} ahead"
        if self.stage == "loading":
            return "loading the model"
        if self.stage == "finishing":
            return "finishing: decoding and sending the images"
        started = bool(self.step) or bool(self.percent)
        if not started:
            return "sampling: starting"
        if self.step is not None and self.steps:
            text = f"sampling: step {self.step} of {self.steps}"
            if self.percent is not None:
                text += f" ({self.percent} %)"
        else:
            text = f"sampling: {self.percent} %"
        if self.eta_s is not None:
            text += f", about {_duration(self.eta_s)} left"
        return text


def _int(value: Any) -> int | None:
    number = _float(value)
    return None if number is None else int(number)


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _round_eta(value: Any) -> int | None:
    """Whole seconds below 10 s, 5 s steps below a minute, 10 s steps below 10 min, whole minutes beyond."""
    seconds = _float(value)
    if seconds is None or seconds < 0:
        return None
    for limit, unit in ((10, 1), (60, 5), (600, 10)):
        if seconds < limit:
            return max(1, int(round(seconds / unit)) * unit)
    return int(round(seconds / 60) * 60)


def _duration(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    return f"{minutes} min {rest} s" if rest and minutes < 10 else f"{minutes} min"


# ---------------------------------------------------------------------------------------------- readers


class Reader(Protocol):
    def read(self, deadline: Deadline) -> Progress | None: ...


def _sampling_from_state(state: dict[str, Any], eta: Any) -> Progress:
    """A running A1111-style ``state`` (``/progress``'s): stage, step and the percent its own formula gives."""
    job = str(state.get("job") or "")
    if _LOADING.search(job):
        return Progress.make("loading")
    steps = _int(state.get("sampling_steps")) or 0
    step = _int(state.get("sampling_step")) or 0
    count = _int(state.get("job_count")) or 0
    number = _int(state.get("job_no")) or 0
    fraction = None
    if count > 0:
        fraction = number / count + (step / steps / count if steps > 0 else 0.0)
        fraction = min(1.0, fraction)
    if steps > 0 and step >= steps and number + 1 >= max(count, 1):
        return Progress.make("finishing")
    # Before the first step A1111's ETA is computed from its 0.01 head start: meaningless, so none is shown.
    return Progress.make("sampling", step=step, steps=steps, fraction=fraction, eta=eta if step > 0 else None)


def _busy(state: dict[str, Any]) -> bool:
    return (_int(state.get("job_count")) or 0) > 0 or bool(state.get("job"))


class InternalProgressReader:
    """``POST /internal/progress`` for our task id (A1111 1.8+ and Forge with the UI on).

    While our task is active, the global ``/progress`` is known to be ours, so one more read there adds the step
    counts (``/internal/progress`` only has the fraction and the ETA).
    """

    def __init__(self, client: WebUIClient, task_id: str) -> None:
        self.client = client
        self.task_id = task_id

    def read(self, deadline: Deadline) -> Progress | None:
        try:
            data = self.client.request("POST", "progress", prefix="/internal", deadline=deadline,
                                       body={"id_task": self.task_id, "live_preview": False})
            if not isinstance(data, dict):
                return None
            if data.get("completed") is True:
                return Progress.make("finishing")
            if data.get("queued") is True:
                match = _IN_QUEUE.search(str(data.get("textinfo") or ""))
                # "In queue: 1/1" is the first *waiting* job: the running one is ahead of it too.
                return Progress.make("queued", ahead=int(match.group(1)) if match else None)
            if data.get("active") is not True:
                return None  # a task it never saw (it does not track this job), or not registered yet
            if _LOADING.search(str(data.get("textinfo") or "")):
                return Progress.make("loading")
            return self._active(data, deadline)
        except (WebUIError, ValueError, TypeError, AttributeError):
            return None

    def _active(self, data: dict[str, Any], deadline: Deadline) -> Progress:
        fraction, eta = data.get("progress"), data.get("eta")
        try:
            state = self.client.get("progress?skip_current_image=true", deadline=deadline).get("state")
        except (WebUIError, ValueError, TypeError, AttributeError):
            state = None
        if isinstance(state, dict) and _busy(state):
            found = _sampling_from_state(state, eta)
            if found.stage != "sampling":
                return found
            return Progress.make("sampling", step=found.step, steps=found.steps,
                                 fraction=fraction if fraction is not None else (found.percent or 0) / 100,
                                 eta=eta)
        if (_float(fraction) or 0.0) >= 1.0:
            return Progress.make("finishing")
        return Progress.make("sampling", fraction=fraction, eta=eta)


class GlobalProgressReader:
    """``GET /sdapi/v1/progress``: the one global state, believed only while ``trusted()`` says it is our job's.

    Untrusted, or idle, it gives ``None``: another caller's job must not be shown as ours.
    """

    def __init__(self, client: WebUIClient, trusted: Callable[[], bool]) -> None:
        self.client = client
        self.trusted = trusted

    def read(self, deadline: Deadline) -> Progress | None:
        try:
            if not self.trusted():
                return None
            data = self.client.get("progress?skip_current_image=true", deadline=deadline)
            state = data.get("state") if isinstance(data, dict) else None
            if not isinstance(state, dict) or not _busy(state):
                return None
            return _sampling_from_state(state, data.get("eta_relative"))
        except Exception:  # noqa: BLE001 - the callable is the caller's; a reader never raises
            return None


class SdNextStatusReader:
    """SD.Next's ``GET /sdapi/v1/status`` (its ``/progress`` where that fails). SD.Next has no task ids, so
    pass ``trusted`` when other callers may share the server; by default the running job is taken as ours."""

    def __init__(self, client: WebUIClient, trusted: Callable[[], bool] | None = None) -> None:
        self.client = client
        self.trusted = trusted

    def read(self, deadline: Deadline) -> Progress | None:
        try:
            if self.trusted is not None and not self.trusted():
                return None
            try:
                data = self.client.get("status", deadline=deadline)
            except WebUIError:
                data = None
            if isinstance(data, dict) and ("status" in data or "task" in data):
                return self._status(data)
            data = self.client.get("progress?skip_current_image=true", deadline=deadline)
            state = data.get("state") if isinstance(data, dict) else None
            if not isinstance(state, dict) or not _busy(state):
                return None
            if _LOADING.search(str(state.get("job") or "")):
                return Progress.make("loading")
            return self._sampling(state.get("sampling_step"), state.get("sampling_steps"), data.get("progress"),
                                  data.get("eta_relative"))
        except Exception:  # noqa: BLE001 - a reader never raises
            return None

    def _status(self, data: dict[str, Any]) -> Progress | None:
        task = str(data.get("task") or "")
        status = str(data.get("status") or "")
        if (not status or status == "idle") and not task:
            return None
        if _LOADING.search(task) or _LOADING.search(status):
            return Progress.make("loading")
        return self._sampling(data.get("step"), data.get("steps"), data.get("progress"), data.get("eta"))

    @staticmethod
    def _sampling(step: Any, steps: Any, fraction: Any, eta: Any) -> Progress:
        step_i, steps_i = _int(step) or 0, _int(steps) or 0
        if steps_i > 0 and step_i >= steps_i:
            return Progress.make("finishing")
        if fraction is None and steps_i > 0:
            fraction = step_i / steps_i
        return Progress.make("sampling", step=step_i, steps=steps_i, fraction=fraction,
                             eta=eta if step_i > 0 else None)


# ---------------------------------------------------------------------------------------------- the poller


class Poller:
    """Polls ``reader`` in a background thread and calls ``on_change`` with each value that changed.

    The first poll comes after ``first_s`` (a job that ends sooner is never polled); the interval then grows
    from 1 s to ``max_interval_s`` (never below 1 s). ``on_change`` runs on the poller's thread, only for a new
    value, and at most every ``report_every_s``: a value that arrives sooner waits, and a newer one replaces it.
    Each poll's deadline is ``poll_s``, never beyond ``deadline``. Nothing raises out of the thread; ``stop()``
    wakes it and returns promptly. Plain threads, ``Event.wait`` and ``time.monotonic`` are right under gevent's
    monkey-patching too (they become greenlets and gevent's own waits).
    """

    def __init__(self, reader: Reader, on_change: Callable[[Progress], Any], *, deadline: Deadline | None = None,
                 first_s: float = FIRST_POLL_S, min_interval_s: float = MIN_INTERVAL_S,
                 max_interval_s: float = MAX_INTERVAL_S, report_every_s: float = REPORT_EVERY_S,
                 poll_s: float = POLL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.reader = reader
        self.on_change = on_change
        self.deadline = deadline
        self.first_s = max(0.0, first_s)
        self.min_interval_s = max(MIN_INTERVAL_S, min_interval_s) if min_interval_s >= 0 else MIN_INTERVAL_S
        self.max_interval_s = max(self.min_interval_s, max_interval_s)
        self.report_every_s = max(0.0, report_every_s)
        self.poll_s = poll_s
        self.clock = clock
        self.polls = 0
        self.reported: Progress | None = None  # the last value handed to on_change
        self.latest: Progress | None = None  # the last value read
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_report_at: float | None = None

    def start(self) -> Poller:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sdwebui-progress", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 1.0) -> None:
        """Stop polling; waits at most ``timeout`` for a poll in flight (its answer is then dropped)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def __enter__(self) -> Poller:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- the thread ------------------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            if self._stop.wait(self.first_s):
                return
            interval = self.min_interval_s
            while not self._stop.is_set():
                if self.deadline is not None and self.deadline.expired:
                    return
                started = self.clock()
                self.poll_once()
                spent = max(0.0, self.clock() - started)
                if self._stop.wait(max(0.0, interval - spent) if spent < interval else 0.0):
                    return
                interval = min(self.max_interval_s, interval * 1.25)
        except BaseException:  # noqa: BLE001 - a progress thread must never take the call down
            return

    def poll_once(self) -> None:
        """One poll and, where due, one report (public for tests that drive the poller without a thread)."""
        seconds = self.poll_s
        if self.deadline is not None:
            seconds = min(seconds, self.deadline.remaining())
            if seconds <= 0:
                return
        try:
            value = self.reader.read(Deadline(seconds))
        except Exception:  # noqa: BLE001 - readers should not raise; a foreign one still must not stop us
            value = None
        self.polls += 1
        if self._stop.is_set():
            return
        if value is not None:
            self.latest = value
        self._maybe_report()

    def _maybe_report(self) -> None:
        value = self.latest
        if value is None or value == self.reported:
            return
        now = self.clock()
        if self._last_report_at is not None and now - self._last_report_at < self.report_every_s:
            return  # too soon: kept in self.latest, reported by a later poll unless a newer value replaces it
        self.reported = value
        self._last_report_at = now
        try:
            self.on_change(value)
        except Exception:  # noqa: BLE001 - the caller's callback; swallowed so polling goes on
            pass
