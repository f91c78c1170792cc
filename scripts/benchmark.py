"""Measure what the plugin adds on top of the WebUI: time, memory and redundant calls. Prints a Markdown report.

    python scripts/benchmark.py [--delay 0.05] [--repeat 5] [--sizes 512:1,512:4,1024:1,1024:4,2048:1] [--json PATH]

The plugin runs as Dify runs it (``python -m main``, stdio JSON lines, through tests/harness/plugin_process.py)
against the bundled stand-in WebUI on 127.0.0.1, which answers with random-pixel PNGs (about 3 bytes per pixel,
like real photos) after ``--delay`` seconds of simulated GPU time. Per case (square size, batch size) it runs one
warm-up and ``--repeat`` measured calls, each followed by a "floor" call:

* wall: the plugin call as the daemon would time it, request written to stdin -> ``end`` read from stdout
  (``Result.elapsed_s``; the harness parses every stdout line as it arrives, as the daemon does);
* server: the time the stand-in spent on the call's requests (``RecordedRequest.elapsed_s``, summed);
* overhead = wall - server, per call, then the median;
* floor: the least any Python client must do for the same result, in this process: a bare
  ``requests.post`` of the very payload the plugin sent, ``.json()`` and base64-decoding every image;
  floor overhead = its wall - its server time (median);
* peak RSS of the plugin process during the case (VmHWM, reset before the case through
  ``/proc/PID/clear_refs`` where the kernel allows it, else the high-water mark of the process's whole life),
  its VmRSS after the case, and the growth of the peak over the RSS before the case.

Then it counts the requests of 10 generations with one model and of 10 alternating between two models, and
fires ``--concurrency`` calls at once at stand-ins that take ``--job-s`` seconds per job (one job at a time, in
arrival order, like a WebUI): against one WebUI, then two behind a real nginx (least_conn, and the model-affinity
hash, which sends one model's calls to one WebUI). Per call wall time: median and p95 (nearest rank).
Nothing here asserts: it reports numbers, the reader judges them.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import threading
import time
import types
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# This process plays Dify's daemon (a Go program) and the WebUI. Importing the SDK (the harness builds its
# requests with the SDK's models) would gevent-monkey-patch it, turning the stand-in's threads and the floor's
# sockets into greenlets; an empty stand-in for the SDK's patching module keeps this process plain Python.
# The plugin subprocess is untouched: it patches itself as it does under Dify.
sys.modules.setdefault("dify_plugin._gevent", types.ModuleType("dify_plugin._gevent"))

from tests.harness.nginx import Nginx  # noqa: E402
from tests.harness.plugin_process import PluginProcess, invoke_data  # noqa: E402
from tests.standin.webui import StandInWebUI  # noqa: E402

PROVIDER, TOOL = "sd_webui", "txt2img"
TXT2IMG = "/sdapi/v1/txt2img"
DEFAULT_SIZES = "512:1,512:4,1024:1,1024:4,2048:1"
RSS_TARGET_CASE = (1024, 4)  # the case the "peak RSS <= 3x payload" target is about
SWITCH_GENERATIONS = 10
SWITCH_SIZE = 256  # the model-switching runs count requests; small images keep them quick
MB = 1024 * 1024


# ---------------------------------------------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class Case:
    """One benchmark case and everything measured for it (raw lists, one entry per measured repetition)."""

    size: int
    batch: int
    payload_bytes: int = 0
    wall_s: list[float] = field(default_factory=list)
    server_s: list[float] = field(default_factory=list)
    plugin_generation_s: list[float] = field(default_factory=list)  # the plugin's own "elapsed_s" in its JSON
    floor_wall_s: list[float] = field(default_factory=list)
    floor_server_s: list[float] = field(default_factory=list)
    requests_per_call: list[str] = field(default_factory=list)
    plugin_cpu_s: float | None = None  # CPU of the plugin process per measured call (mean)
    reader_cpu_s: float | None = None  # CPU of the harness's stdout reader thread per measured call (mean)
    rss_before_kb: int | None = None
    peak_rss_kb: int | None = None
    rss_after_kb: int | None = None
    peak_is_per_case: bool = False
    error: str | None = None

    @property
    def name(self) -> str:
        return f"{self.size}² ×{self.batch}"

    def overhead_s(self) -> float:
        return statistics.median(w - s for w, s in zip(self.wall_s, self.server_s))

    def floor_overhead_s(self) -> float:
        return statistics.median(w - s for w, s in zip(self.floor_wall_s, self.floor_server_s))


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """``"512:1,1024:4"`` -> [(512, 1), (1024, 4)]; a bare side means batch 1. Sorted small to large payload."""
    cases = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        side, _, batch = item.partition(":")
        cases.append((int(side), int(batch or 1)))
    # Small to large, so a lifetime high-water mark still belongs to the largest case so far; at equal pixel
    # counts the bigger batch first (1024:4 before 2048:1), so the 4x1024² peak is not the 2048² one.
    return sorted(set(cases), key=lambda c: (c[0] * c[0] * c[1], c[0]))


def proc_status_kb(pid: int, key: str) -> int | None:
    """A ``kB`` field (VmHWM, VmRSS) of /proc/PID/status, or None where there is no /proc."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak_rss(pid: int) -> bool:
    """Reset the process's VmHWM to its current RSS (Linux: write 5 to clear_refs). False if not allowed."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w", encoding="ascii") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (/proc/PID/stat; clock-tick resolution)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu_s(thread: threading.Thread | None) -> float | None:
    """CPU seconds of a thread of this process so far, or None where the platform cannot tell."""
    try:
        return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
    except (AttributeError, OSError, TypeError):
        return None


def stdout_reader(plugin: PluginProcess) -> threading.Thread | None:
    """The harness's thread that reads and parses the plugin's stdout (the daemon's share of the work)."""
    return next((t for t in plugin._threads if t.name.endswith("_read_stdout")), None)


def server_seconds(records: list) -> float:
    """Sum of the stand-in's time on these requests."""
    return sum(r.elapsed_s or 0.0 for r in records)


def describe_requests(records: list) -> str:
    """``"GET /options, POST /txt2img"``: what one call sent, in order."""
    return ", ".join(f"{r.method} {r.path.removeprefix('/sdapi/v1')}" for r in records)


def plugin_call(plugin: PluginProcess, webui: StandInWebUI, credentials: dict, params: dict) -> tuple:
    """One txt2img through the plugin. Returns (Result, the stand-in's records of this call)."""
    before = len(webui.requests)
    result = plugin.invoke_tool(PROVIDER, TOOL, credentials, params, timeout=300)
    return result, webui.requests[before:]


def floor_call(webui: StandInWebUI, payload: dict) -> tuple[float, float, int]:
    """The floor: bare POST /txt2img, JSON decode, base64 decode of every image. (wall s, server s, bytes)."""
    before = len(webui.requests)
    started = time.monotonic()
    response = requests.post(webui.base_url + TXT2IMG, json=payload, timeout=300)
    images = [base64.b64decode(encoded) for encoded in response.json()["images"]]
    wall = time.monotonic() - started
    return wall, server_seconds(webui.requests[before:]), sum(len(image) for image in images)


def run_case(case: Case, plugin: PluginProcess, webui: StandInWebUI, credentials: dict, repeat: int) -> None:
    """Warm up once, then ``repeat`` times a plugin call followed by a floor call with the plugin's own payload."""
    pid = plugin._proc.pid  # the harness has no public accessor for its Popen object
    params = {"prompt": "benchmark", "width": case.size, "height": case.size, "steps": 2,
              "batch_size": case.batch, "seed": 1234, "model_name": "rand-a"}
    reader = stdout_reader(plugin)
    case.rss_before_kb = proc_status_kb(pid, "VmRSS")
    case.peak_is_per_case = reset_peak_rss(pid)
    cpu_start = reader_start = None
    for rep in range(repeat + 1):
        if rep == 1:
            cpu_start, reader_start = process_cpu_s(pid), thread_cpu_s(reader)
        result, records = plugin_call(plugin, webui, credentials, params)
        if result.error:
            message = str(result.error.get("message", result.error))
            case.error = message if len(message) <= 160 else message[:159] + "…"
            return
        posts = [r for r in records if r.method == "POST" and r.path.startswith(TXT2IMG)]
        floor_wall, floor_server, floor_bytes = floor_call(webui, posts[-1].json)
        case.payload_bytes = sum(len(blob.data) for blob in result.blobs)
        if floor_bytes != case.payload_bytes:
            case.error = f"the plugin returned {case.payload_bytes} bytes, the floor decoded {floor_bytes}"
        if rep == 0:
            continue  # warm-up: connection set-up, caches, first load of the model
        case.wall_s.append(result.elapsed_s)
        case.server_s.append(server_seconds(records))
        generation_s = (result.jsons[0] if result.jsons else {}).get("elapsed_s")
        if isinstance(generation_s, (int, float)):
            case.plugin_generation_s.append(float(generation_s))
        case.floor_wall_s.append(floor_wall)
        case.floor_server_s.append(floor_server)
        case.requests_per_call.append(describe_requests(records))
    cpu_end, reader_end = process_cpu_s(pid), thread_cpu_s(reader)
    if cpu_start is not None and cpu_end is not None:
        case.plugin_cpu_s = (cpu_end - cpu_start) / repeat
    if reader_start is not None and reader_end is not None:
        case.reader_cpu_s = (reader_end - reader_start) / repeat
    case.peak_rss_kb = proc_status_kb(pid, "VmHWM")
    case.rss_after_kb = proc_status_kb(pid, "VmRSS")


def run_model_switching(plugin: PluginProcess, webui: StandInWebUI, credentials: dict) -> list[dict]:
    """10 generations with one model, then 10 alternating; count /options calls and model loads."""
    runs = []
    sequences = {"same model (rand-a)": ["rand-a"] * SWITCH_GENERATIONS,
                 "alternating rand-b / rand-a": ["rand-b", "rand-a"] * (SWITCH_GENERATIONS // 2)}
    for label, models in sequences.items():
        active = webui.loaded_model
        needed = sum(1 for prev, cur in zip([active, *models], models) if prev != cur)
        before_records, before_loads = len(webui.requests), webui.model_loads
        errors = 0
        for model in models:
            params = {"prompt": "switch", "width": SWITCH_SIZE, "height": SWITCH_SIZE, "steps": 2, "batch_size": 1,
                      "seed": 1, "model_name": model}
            errors += bool(plugin.invoke_tool(PROVIDER, TOOL, credentials, params, timeout=120).error)
        records = webui.requests[before_records:]
        runs.append({
            "sequence": label, "generations": len(models), "model_changes_needed": needed, "errors": errors,
            "get_options": sum(1 for r in records if r.method == "GET" and r.path.startswith("/sdapi/v1/options")),
            "post_options": sum(1 for r in records if r.method == "POST" and r.path.startswith("/sdapi/v1/options")),
            "model_loads": webui.model_loads - before_loads,
            "other_requests": sorted({f"{r.method} {r.path}" for r in records
                                      if not r.path.startswith(("/sdapi/v1/options", TXT2IMG))}),
        })
    return runs


def run_concurrency(plugin: PluginProcess, calls: int, job_s: float) -> list[dict]:
    """``calls`` txt2img at once against one WebUI, then two behind nginx; wall time per call and failures."""
    runs = []
    setups = [("1 WebUI", 1, None),
              ("2 WebUIs, nginx least_conn", 2, "least_conn;"),
              ("2 WebUIs, nginx hash $http_x_sd_model (one model)", 2, "hash $http_x_sd_model consistent;")]
    for label, backends_n, balance in setups:
        backends = [StandInWebUI("forge", generation_delay=job_s).__enter__() for _ in range(backends_n)]
        try:
            proxy = Nginx([b.base_url for b in backends], balance=balance).start() if balance else None
            try:
                base_url = proxy.base_url if proxy else backends[0].base_url
                runs.append(_concurrent_calls(plugin, label, base_url, calls, backends))
            finally:
                if proxy:
                    proxy.stop()
        finally:
            for backend in backends:
                backend.stop()
    return runs


def run_progress(plugin: PluginProcess, job_s: float, calls: int = 2) -> list[dict]:
    """A 20-step job of ``job_s`` seconds, progress messages on vs off: wall time, status polls and log messages
    per call (polls = POST /internal/progress + GET /progress, the one GET /progress before posting included)."""
    runs = []
    with StandInWebUI("forge", generation_delay=job_s) as webui:
        for label, switch in (("on", "on"), ("off", "off")):
            credentials = {"base_url": webui.base_url, "default_model": "rand-a", "progress_messages": switch}
            walls, polls, logs = [], [], []
            for i in range(calls):
                before = len(webui.requests)
                result = plugin.invoke_tool(PROVIDER, TOOL, credentials, {"prompt": "progress", "width": 64, "height": 64,
                                                                         "steps": 20, "seed": 10 + i}, timeout=120)
                records = webui.requests[before:]
                walls.append(result.elapsed_s)
                polls.append(sum(1 for r in records if r.path.startswith(("/internal/progress", "/sdapi/v1/progress"))))
                logs.append(sum(1 for m in result.messages if m.get("type") == "log"))
            runs.append({"progress": label, "calls": calls, "wall_s": statistics.median(walls),
                         "polls_per_call": statistics.median(polls), "log_messages_per_call": statistics.median(logs)})
    return runs


def _concurrent_calls(plugin: PluginProcess, label: str, base_url: str, calls: int, backends: list) -> dict:
    credentials = {"base_url": base_url, "default_model": "rand-a"}
    params = {"prompt": "concurrency", "width": 64, "height": 64, "steps": 2, "batch_size": 1}
    plugin.invoke_tool(PROVIDER, TOOL, credentials, {**params, "seed": 1}, timeout=120)  # warm-up: caches, connections
    jobs_before = [len(b.requests_to("POST", TXT2IMG)) for b in backends]
    started = time.monotonic()
    sessions = [plugin.submit(invoke_data(PROVIDER, TOOL, credentials, {**params, "seed": 100 + i})) for i in range(calls)]
    with ThreadPoolExecutor(max_workers=calls) as pool:  # the harness stamps a call's wall time when wait() sees its end
        results = list(pool.map(lambda session: plugin.wait(session, timeout=600), sessions))
    span = time.monotonic() - started
    walls = sorted(r.elapsed_s for r in results)
    p95_rank = -(-95 * len(walls) // 100)  # nearest rank: ceil(0.95 n)
    return {"setup": label, "calls": calls, "ok": sum(1 for r in results if r.error is None),
            "median_s": statistics.median(walls), "p95_s": walls[p95_rank - 1], "span_s": span,
            "jobs_per_webui": [len(b.requests_to("POST", TXT2IMG)) - n for b, n in zip(backends, jobs_before)]}


# ---------------------------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------------------------

def machine_info() -> dict:
    """What the numbers depend on: CPUs, Python, OS, and the code's git revision."""
    cpu = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "")
    except OSError:
        pass
    try:
        revision = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True,
                                  text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        revision = ""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"nproc": usable, "cpu_count": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
            "implementation": platform.python_implementation(), "platform": platform.platform(),
            "git": revision}


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def mb_kb(kb: int | None) -> str:
    return "n/a" if kb is None else f"{kb / 1024:.0f}"


def render_report(args: argparse.Namespace, info: dict, cases: list[Case], switching: list[dict],
                  startup_s: float | None, total_s: float, concurrency: list[dict] | None = None,
                  progress: list[dict] | None = None) -> str:
    """The Markdown report: header, the per-case table, the breakdown, memory and model switching."""
    lines = [
        "# Plugin benchmark",
        "",
        f"Command: `{shlex.join(getattr(sys, 'orig_argv', [sys.executable, *sys.argv]))}`  ",
        f"Machine: nproc {info['nproc']} ({info['cpu'] or 'unknown CPU'}), {info['implementation']} {info['python']}, "
        f"{info['platform']}  ",
        f"Code: {info['git'] or 'unknown revision'}; stand-in: forge, noise PNGs, generation delay {args.delay} s; "
        f"{args.repeat} repetition{'s' if args.repeat != 1 else ''} after 1 warm-up per case; times are medians in ms.  ",
        f"Plugin start-up (spawn -> first heartbeat): {startup_s:.2f} s; whole run: {total_s:.1f} s.",
        "",
        "| case | payload MB | wall | server | overhead | floor overhead | overhead / floor | peak RSS MB | RSS after MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for case in cases:
        if not case.wall_s:
            lines.append(f"| {case.name} | error: {case.error} | | | | | | | |")
            continue
        floor = case.floor_overhead_s()
        ratio = f"{case.overhead_s() / floor:.2f}" if floor > 0 else "n/a"
        peak = mb_kb(case.peak_rss_kb) + ("" if case.peak_is_per_case else " (lifetime)")
        lines.append(
            f"| {case.name} | {case.payload_bytes / MB:.2f} | {ms(statistics.median(case.wall_s))} | "
            f"{ms(statistics.median(case.server_s))} | {ms(case.overhead_s())} | {ms(floor)} | {ratio} | "
            f"{peak} | {mb_kb(case.rss_after_kb)} |")
    errors = [c for c in cases if c.error and c.wall_s]
    lines += [f"\nNote for {c.name}: {c.error}" for c in errors]

    lines += ["", "Where the overhead goes (ms per call): *in generation* = the plugin's own `elapsed_s` "
              "(GET /options to images decoded) minus server time; *emit + IPC* = wall minus that `elapsed_s` "
              "(tool dispatch, blob chunks over stdout, the harness reading them) (both medians); *plugin CPU* = "
              "CPU time of the plugin process and *reader CPU* = of the harness thread parsing its stdout "
              "(means; plugin CPU has 10 ms clock-tick resolution, summed over the repetitions).", "",
              "| case | in generation | emit + IPC | plugin CPU | reader CPU | requests per call |",
              "|---|---:|---:|---:|---:|---|"]
    for case in cases:
        if not case.wall_s or len(case.plugin_generation_s) != len(case.wall_s):
            continue
        inside = statistics.median(g - s for g, s in zip(case.plugin_generation_s, case.server_s))
        emit = statistics.median(w - g for w, g in zip(case.wall_s, case.plugin_generation_s))
        cpu = "n/a" if case.plugin_cpu_s is None else ms(case.plugin_cpu_s)
        reader = "n/a" if case.reader_cpu_s is None else ms(case.reader_cpu_s)
        calls = statistics.mode(case.requests_per_call)
        lines.append(f"| {case.name} | {ms(inside)} | {ms(emit)} | {cpu} | {reader} | {calls} |")

    target = next((c for c in cases if (c.size, c.batch) == RSS_TARGET_CASE and c.wall_s), None)
    if target and target.peak_rss_kb is not None and target.payload_bytes:
        growth_kb = target.peak_rss_kb - (target.rss_before_kb or 0)
        lines += ["", f"Peak RSS for {target.name}: {mb_kb(target.peak_rss_kb)} MB = "
                      f"{target.peak_rss_kb * 1024 / target.payload_bytes:.1f}× the {target.payload_bytes / MB:.1f} MB "
                      f"payload; growth over the {mb_kb(target.rss_before_kb)} MB before the case: "
                      f"{growth_kb / 1024:.0f} MB = {growth_kb * 1024 / target.payload_bytes:.1f}× the payload"
                      + ("" if target.peak_is_per_case else " (VmHWM could not be reset: lifetime peak)") + "."]

    lines += ["", f"Model switching ({SWITCH_SIZE}² ×1, per {SWITCH_GENERATIONS} generations):", "",
              "| sequence | model changes needed | POST /options | model loads | GET /options | errors |",
              "|---|---:|---:|---:|---:|---:|"]
    for run in switching:
        lines.append(f"| {run['sequence']} | {run['model_changes_needed']} | {run['post_options']} | "
                     f"{run['model_loads']} | {run['get_options']} | {run['errors']} |")
    others = sorted({r for run in switching for r in run["other_requests"]})
    lines.append(f"\nOther requests during model switching: {', '.join(others) if others else 'none'}.")
    if concurrency:
        lines += ["", f"Concurrency: {args.concurrency} calls at once, each job {args.job_s} s on a stand-in that runs "
                      "one job at a time (wall per call in s; p95 = nearest rank; the warm-up call is not counted):", "",
                  "| setup | ok | median | p95 | all done after | jobs per WebUI |", "|---|---:|---:|---:|---:|---|"]
        for run in concurrency:
            lines.append(f"| {run['setup']} | {run['ok']}/{run['calls']} | {run['median_s']:.2f} | {run['p95_s']:.2f} | "
                         f"{run['span_s']:.2f} | {' + '.join(str(n) for n in run['jobs_per_webui'])} |")
    if progress:
        lines += ["", f"Progress messages: a 20-step stand-in job of {args.progress_job_s} s (64² ×1), medians over "
                      f"{progress[0]['calls']} calls; polls = POST /internal/progress + GET /progress per call, the "
                      "one read before posting included:", "",
                  "| progress | wall s | polls per call | log messages per call |", "|---|---:|---:|---:|"]
        for run in progress:
            lines.append(f"| {run['progress']} | {run['wall_s']:.2f} | {run['polls_per_call']:g} | "
                         f"{run['log_messages_per_call']:g} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------------------------

def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=0.05, help="simulated GPU seconds per generation (0.05)")
    parser.add_argument("--repeat", type=int, default=5, help="measured calls per case, after 1 warm-up (5)")
    parser.add_argument("--sizes", default=DEFAULT_SIZES,
                        help=f"comma-separated SIDE:BATCH cases, square images ({DEFAULT_SIZES})")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the raw numbers here")
    parser.add_argument("--concurrency", type=int, default=16, help="calls fired at once in the concurrency run (16)")
    parser.add_argument("--job-s", type=float, default=0.25, help="seconds per job in the concurrency run (0.25)")
    parser.add_argument("--progress-job-s", type=float, default=3.0,
                        help="seconds per job in the progress on/off run (3; 0 skips it)")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    started = time.monotonic()
    info = machine_info()
    cases = [Case(size, batch) for size, batch in parse_sizes(args.sizes)]
    with StandInWebUI("forge", image_content="noise", generation_delay=args.delay) as webui:
        credentials = {"base_url": webui.base_url, "default_model": "rand-a"}
        plugin = PluginProcess(str(ROOT))
        try:
            plugin.start()
            for case in cases:
                print(f"... {case.name}", file=sys.stderr, flush=True)
                run_case(case, plugin, webui, credentials, args.repeat)
            print("... model switching", file=sys.stderr, flush=True)
            switching = run_model_switching(plugin, webui, credentials)
            print("... concurrency", file=sys.stderr, flush=True)
            concurrency = run_concurrency(plugin, args.concurrency, args.job_s)
            print("... progress on vs off", file=sys.stderr, flush=True)
            progress = run_progress(plugin, args.progress_job_s) if args.progress_job_s > 0 else []
        finally:
            plugin.close()  # terminate, then kill if it lingers
        stand_in_errors = webui.errors
    total_s = time.monotonic() - started

    print(render_report(args, info, cases, switching, plugin.startup_s, total_s, concurrency, progress))
    if stand_in_errors:
        print(f"\nThe stand-in logged {len(stand_in_errors)} error(s); first:\n{stand_in_errors[0]}")
    if args.json:
        raw = {"command": getattr(sys, "orig_argv", sys.argv), "machine": info, "delay_s": args.delay,
               "repeat": args.repeat, "plugin_startup_s": plugin.startup_s, "total_s": total_s,
               "cases": [asdict(c) for c in cases], "model_switching": switching,
               "concurrency": concurrency, "progress": progress}
        args.json.write_text(json.dumps(raw, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
