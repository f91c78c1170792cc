"""Task ids and the queue, as A1111 and Forge keep them (``modules/progress.py``, ``modules/api/api.py``).

Every txt2img/img2img gets a task id (the request's ``force_task_id``, else one of our own), is added to
``pending_tasks`` right before it waits for the queue lock, becomes ``current_task`` when it gets the lock,
and joins ``finished_tasks`` (the last 16) when it ends. ``POST /internal/progress {"id_task": ...}``
answers from those three, with ``textinfo`` "In queue: 2/3" for a queued task, exactly like the real
route. That route exists only with the UI on: set ``ui = False`` to imitate ``--nowebui`` (404).
SD.Next has the route in UI mode but its API never registers a task, and sd.cpp has neither.

Wired into :class:`tests.standin.webui.StandInWebUI` as its generation lock (``TaskQueue`` wraps the FIFO
lock), plus one call per request (:meth:`arrived`) and one route table entry (:meth:`routes`).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from contextlib import AbstractContextManager
from typing import Any, Callable

_GENERATION_PATHS = ("/sdapi/v1/txt2img", "/sdapi/v1/img2img")
FINISHED_KEPT = 16  # progress.py keeps the last 16 finished task ids


class TaskQueue:
    """The FIFO generation lock plus A1111's task bookkeeping around it."""

    def __init__(self, flavor: str, lock: AbstractContextManager) -> None:
        self.flavor = flavor
        self.ui = True  # False: started with --nowebui, so /internal/progress answers 404
        self._lock = lock
        self._state = threading.Lock()
        self._local = threading.local()
        self._ids = itertools.count(1)
        self.pending: dict[str, float] = {}
        self.current: str | None = None
        self.finished: list[str] = []
        self.started_order: list[str] = []  # every task id in the order it got the lock, for tests
        # The running job's (``/progress`` state, start time), set by the stand-in; for the active task's numbers.
        self.job_state: Callable[[], tuple[dict[str, Any], float]] = lambda: ({}, 0.0)

    # ---- wiring ----------------------------------------------------------------------------------------------

    def arrived(self, method: str, target: str, raw: bytes) -> None:
        """Note the task id of the request this thread is about to handle (none for other requests)."""
        task = None
        if method == "POST" and target.split("?")[0] in _GENERATION_PATHS and self.flavor in ("a1111", "forge"):
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                body = {}
            forced = body.get("force_task_id") if isinstance(body, dict) else None
            task = str(forced) if forced else f"task(standin-{next(self._ids)})"
        self._local.task = task

    def routes(self) -> dict[tuple[str, str], Callable[[Any], Any]]:
        if self.flavor == "sdcpp":
            return {}
        return {("POST", "/internal/progress"): self._internal_progress}

    # ---- the lock --------------------------------------------------------------------------------------------

    def __enter__(self) -> None:
        task = getattr(self._local, "task", None)
        if task:
            with self._state:
                self.pending[task] = time.time()  # add_task_to_queue, right before `with queue_lock`
        self._lock.__enter__()
        if task:
            with self._state:  # start_task
                self.current = task
                self.pending.pop(task, None)
                self.started_order.append(task)

    def __exit__(self, *exc: object) -> None:
        task = getattr(self._local, "task", None)
        if task:
            with self._state:  # finish_task
                if self.current == task:
                    self.current = None
                self.finished = [*self.finished, task][-FINISHED_KEPT:]
            self._local.task = None  # an eager SD.Next-style reload in the same request is not a second task
        self._lock.__exit__(*exc)

    # ---- POST /internal/progress -----------------------------------------------------------------------------

    def _internal_progress(self, call: Any) -> Any:
        from tests.standin.webui import _json_reply  # the stand-in imports this module first

        if not self.ui:
            return _json_reply(404, {"detail": "Not Found"})
        try:
            body = json.loads(call.raw or b"{}")
        except ValueError:
            body = {}
        task = str(body.get("id_task")) if isinstance(body, dict) and body.get("id_task") else None
        with self._state:
            active = task is not None and task == self.current
            queued = task in self.pending
            completed = task in self.finished
            textinfo = "Waiting..."
            if queued:
                order = sorted(self.pending, key=self.pending.__getitem__)
                textinfo = f"In queue: {order.index(task) + 1}/{len(order)}"
        answer = {"active": active, "queued": queued, "completed": completed, "progress": None, "eta": None,
                  "live_preview": None, "id_live_preview": -1, "textinfo": textinfo}
        if active:
            answer.update(self._active_progress())
        return _json_reply(200, answer)

    def _active_progress(self) -> dict[str, Any]:
        """The running task's ``progress``/``eta`` as ``modules/progress.py`` computes them (``job_no/job_count +
        sampling_step/sampling_steps/job_count``; ``eta`` from the elapsed time, ``null`` before any progress)
        and ``textinfo`` ``null``, as post_internal_progress_active_task.json shows (progress 0.025, textinfo
        null). The steps advance with the simulated GPU time (``_run_job``)."""
        state, started = self.job_state()
        count = max(1, int(state.get("job_count") or 1))
        steps = int(state.get("sampling_steps") or 0)
        fraction = int(state.get("job_no") or 0) / count + (int(state.get("sampling_step") or 0) / steps / count if steps else 0.0)
        fraction = min(1.0, fraction)
        elapsed = time.monotonic() - (started or time.monotonic())
        eta = elapsed / fraction - elapsed if fraction > 0 else None
        return {"progress": fraction, "eta": eta, "textinfo": None}
