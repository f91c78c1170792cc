"""Where a generation stands when its deadline fires, and stopping it only when it is ours.

A WebUI runs one job at a time and queues the rest, each HTTP call simply staying open until its turn.
``POST /interrupt`` stops *whatever job is running*, and nothing can take a job out of the queue. So when a
call's deadline fires, interrupting blindly could stop another caller's job while ours still waits. This
module looks first, and the error says what it found.

What each server lets a client know (read from their source; README "Queue and deadlines"):

* **A1111 1.8+ and Forge with their UI on** (``--api``): a generation takes ``force_task_id``, and
  ``POST /internal/progress {"id_task": ...}`` answers ``queued`` (with ``textinfo`` "In queue: 2/3"),
  ``active`` or ``completed`` for that task. We know exactly whether our job runs, and our queue position.
* **The same with ``--nowebui``, SD.Next, and A1111 before 1.8**: only ``GET /progress``, one global state
  (idle or busy, which kind of job, its start time) with no owner and no queue length. We know whether the
  WebUI was busy when we posted, and whether the job running then is still running.
* **stable-diffusion.cpp**: neither ``/progress`` nor ``/interrupt`` (404, empty body). Nothing can be known
  or stopped.

The rule: interrupt when the WebUI says our task is the active one; without task ids, interrupt only when
the WebUI was idle when we posted and is busy now (our job was first in line); never when our job is, or may
be, still queued. Every check runs on its own short deadline after the call's has passed, carries the
call's routing header (so it reaches the same WebUI behind a hash balancer), and never raises.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sdwebui import models
from sdwebui.client import MAX_GENERATION_BYTES, WebUIClient
from sdwebui.deadline import Deadline
from sdwebui.errors import ApiNotFound, MissingRoute, Timeout, WebUIError
from sdwebui.progress import GlobalProgressReader, InternalProgressReader, Poller, Progress, Reader, SdNextStatusReader

if TYPE_CHECKING:
    from sdwebui.servers import ServerProfile

OnProgress = Callable[[Progress], None]

CHECK_S = 3.0  # each queue check after the deadline; the whole call still ends well before Dify's 600 s
_IN_QUEUE = re.compile(r"In queue:\s*(\d+)\s*/\s*(\d+)")
_REMEDY = "raise 'Request timeout' in the provider settings, or lower steps, size, batch size or hires fix."
_ADVICE = " " + _REMEDY[0].upper() + _REMEDY[1:]  # the same, as a sentence of its own
_BUSY_ADVICE = " The WebUI is busy: try again later, or raise 'Request timeout' in the provider settings."
# A 404 for the route: ApiNotFound before the server family is known, MissingRoute after (Catalog.server).
NO_SUCH_ROUTE = (ApiNotFound, MissingRoute)


@dataclass(frozen=True)
class ServerState:
    """One ``GET /progress`` answer, reduced to what tells jobs apart."""

    busy: bool
    job_timestamp: str


@dataclass(frozen=True)
class TaskState:
    """One ``POST /internal/progress`` answer for our task id."""

    active: bool
    queued: bool
    completed: bool
    position: int | None = None
    queue_length: int | None = None


def txt2img(client: WebUIClient, request: models.Txt2ImgRequest, deadline: Deadline, *, server: ServerProfile | None = None,
            on_progress: OnProgress | None = None) -> models.GenerationResponse:
    data = post_job(client, "txt2img", request.to_json(), deadline, server=server, on_progress=on_progress)
    return models.parse(models.GenerationResponse, data, what="POST /txt2img")


def img2img(client: WebUIClient, request: models.Img2ImgRequest, deadline: Deadline, *, server: ServerProfile | None = None,
            on_progress: OnProgress | None = None) -> models.GenerationResponse:
    data = post_job(client, "img2img", request.to_json(), deadline, server=server, on_progress=on_progress)
    return models.parse(models.GenerationResponse, data, what="POST /img2img")


def extra_single_image(client: WebUIClient, request: models.ExtrasRequest, deadline: Deadline) -> models.ExtrasResponse:
    data = post_job(client, "extra-single-image", request.to_json(), deadline)
    return models.parse(models.ExtrasResponse, data, what="POST /extra-single-image")


def post_job(client: WebUIClient, route: str, body: dict[str, Any], deadline: Deadline, *,
             server: ServerProfile | None = None, on_progress: OnProgress | None = None,
             poller_options: dict[str, Any] | None = None) -> Any:
    """POST a long-running job. When the deadline fires, find out where the job stands and stop it only if it is
    ours and running (:class:`JobWatch`); the error says which.

    With ``on_progress``, a :class:`~sdwebui.progress.Poller` reads the job's progress while the POST is open
    (the reader that fits ``server``, :func:`progress_reader`) and calls it with each changed value; it stops the
    moment the POST returns or raises. Progress never raises into the call. ``poller_options`` (tests) go to the
    Poller."""
    watch = JobWatch(client, with_task_id=route in ("txt2img", "img2img"))
    body = watch.before_post(body, deadline)
    poller = _start_poller(client, watch, server, on_progress, deadline, poller_options)
    try:
        return client.post(route, body, deadline=deadline, max_bytes=MAX_GENERATION_BYTES)
    except Timeout:
        if poller is not None:
            poller.stop()
            poller = None
        raise Timeout(f"The WebUI did not finish within {deadline.seconds:.0f} s{watch.after_deadline()}") from None
    finally:
        if poller is not None:
            poller.stop()


def progress_reader(client: WebUIClient, watch: JobWatch, server: ServerProfile | None) -> Reader | None:
    """The reader for this job: our task id on ``/internal/progress`` where the server has one (A1111 and Forge),
    else the global ``/progress`` believed only when the WebUI was idle when we posted (so the running job is
    ours); SD.Next's ``/status`` likewise; none for stable-diffusion.cpp or an unknown server."""
    source = getattr(server, "progress", None) if server is not None else None
    if not watch.has_progress or source not in ("internal", "sdnext-status"):
        return None
    idle_at_post = watch.at_post is not None and not watch.at_post.busy
    if source == "sdnext-status":
        return SdNextStatusReader(client, trusted=lambda: idle_at_post)
    if watch.task_id is not None and watch.at_post is not None and getattr(server, "task_ids", True):
        return _InternalOrGlobal(InternalProgressReader(client, watch.task_id),
                                 GlobalProgressReader(client, trusted=lambda: idle_at_post))
    return GlobalProgressReader(client, trusted=lambda: idle_at_post)


class _InternalOrGlobal:
    """Our task on ``/internal/progress``; where that gives nothing (``--nowebui`` answers 404, or the task is
    unknown to it), the global ``/progress`` under the same trust rule."""

    def __init__(self, internal: InternalProgressReader, fallback: GlobalProgressReader) -> None:
        self.internal = internal
        self.fallback = fallback

    def read(self, deadline: Deadline) -> Progress | None:
        found = self.internal.read(deadline)
        return found if found is not None else self.fallback.read(deadline)


def _start_poller(client: WebUIClient, watch: JobWatch, server: ServerProfile | None, on_progress: OnProgress | None,
                  deadline: Deadline, options: dict[str, Any] | None) -> Poller | None:
    if on_progress is None:
        return None
    try:
        reader = progress_reader(client, watch, server)
        if reader is None:
            return None
        return Poller(reader, on_progress, deadline=deadline, **(options or {})).start()
    except Exception:  # noqa: BLE001 - progress must never take the call down
        return None


class JobWatch:
    """Knows enough about one posted job to explain, and safely handle, its deadline firing."""

    def __init__(self, client: WebUIClient, *, with_task_id: bool) -> None:
        self.client = client
        self.task_id = f"dify-{uuid.uuid4().hex}" if with_task_id else None
        self.has_progress = True
        self.at_post: ServerState | None = None

    # ------------------------------------------------------------------ before

    def before_post(self, body: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        """Read ``/progress`` (is a job ahead of ours?) and tag the body with our task id where one can help."""
        try:
            self.at_post = self._progress(Deadline(min(CHECK_S, max(0.5, deadline.remaining()))))
        except NO_SUCH_ROUTE:  # stable-diffusion.cpp: no queue to read, no task ids, nothing to interrupt
            self.has_progress = False
            self.task_id = None
        except WebUIError:
            self.at_post = None  # unknown; the generation's own request will say what is wrong
        if self.task_id is None or self.at_post is None:  # a task id only where the WebUI has a queue to read
            return body
        return {**body, "force_task_id": self.task_id}

    # ------------------------------------------------------------------ after

    def after_deadline(self) -> str:
        """The rest of the timeout sentence: where the job stood, and whether it was interrupted."""
        if not self.has_progress:
            return (", and the job could not be stopped: this server has no /progress or /interrupt route "
                    "(stable-diffusion.cpp has neither), so it may still be running on the server." + _ADVICE)
        task = self._task_state()
        if task is not None:
            return self._by_task(task)
        return self._by_global_state()

    def _by_task(self, task: TaskState) -> str:
        if task.active:
            return self._interrupt()
        if task.queued:
            where = (f" in position {task.position} of {task.queue_length}, behind the running job"
                     if task.position else " behind the running job")
            return (f": the job was still queued{where}, so it was not interrupted (/interrupt would stop another "
                    "caller's running job, and a WebUI cannot take a job out of its queue); it will still run when "
                    "its turn comes." + _BUSY_ADVICE)
        return ": the job finished on the WebUI just as the time ran out, too late to return its images." + _ADVICE

    def _by_global_state(self) -> str:
        try:
            now = self._progress(Deadline(CHECK_S))
        except WebUIError:
            return (", and the WebUI's progress could not be read, so nothing was interrupted; the job may still be "
                    "queued or running on the server." + _ADVICE)
        if not now.busy:
            return (": the WebUI reports no running job, so nothing was interrupted (it may be stuck loading a model: "
                    "check its console)." + _ADVICE)
        if self.at_post is None:
            return (": the WebUI is running a job, but whether it is this one cannot be known (the WebUI gives no "
                    "task ids here), so nothing was interrupted; the job may still be queued or running." + _ADVICE)
        if self.at_post.busy and now.job_timestamp == self.at_post.job_timestamp:
            return (": the job was still queued behind the job that was already running when it was sent, so it was "
                    "not interrupted (/interrupt would stop that other job); it will still run when its turn comes."
                    + _BUSY_ADVICE)
        if self.at_post.busy:
            return (": the WebUI was busy with another job when this one was sent and does not say whose job runs "
                    "now (no task ids without its UI), so nothing was interrupted; the job may still be queued or "
                    "running on the server." + _BUSY_ADVICE)
        return self._interrupt()  # idle when we posted, busy now: ours was first in line

    def _interrupt(self) -> str:
        try:
            stopped = self.client.interrupt()
        except NO_SUCH_ROUTE:
            return (", and the job could not be stopped: this server has no /interrupt route, so it may still be "
                    "running on the server." + _ADVICE)
        if not stopped:
            return (", and the interrupt request failed, so the job may still be running on the server." + _ADVICE)
        return ", so the job was interrupted while it was generating; " + _REMEDY

    # ------------------------------------------------------------------ reads

    def _progress(self, deadline: Deadline) -> ServerState:
        data = self.client.get("progress?skip_current_image=true", deadline=deadline)
        state = data.get("state") if isinstance(data, dict) else None
        state = state if isinstance(state, dict) else {}
        busy = _number(state.get("job_count")) > 0 or bool(state.get("job"))
        return ServerState(busy=busy, job_timestamp=str(state.get("job_timestamp") or ""))

    def _task_state(self) -> TaskState | None:
        """Our task as the WebUI sees it; ``None`` when the WebUI does not track it (no UI, SD.Next, old A1111)."""
        if self.task_id is None:
            return None
        try:
            data = self.client.request("POST", "progress", prefix="/internal", deadline=Deadline(CHECK_S),
                                       body={"id_task": self.task_id, "live_preview": False})
        except WebUIError:
            return None
        if not isinstance(data, dict):
            return None
        flags = {key: data.get(key) is True for key in ("active", "queued", "completed")}
        if not any(flags.values()):  # a task id it never saw: it does not track API jobs
            return None
        match = _IN_QUEUE.search(str(data.get("textinfo") or ""))
        position, length = (int(match.group(1)), int(match.group(2))) if match else (None, None)
        return TaskState(**flags, position=position, queue_length=length)


def _number(value: Any) -> float:
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0
