"""`make check-server`: scripts/check_server.py run as a subprocess against the stand-in in each server flavour.

The expectations are those of the finished product, per flavour (see the README's "Check what your server supports"):
every case works, except what the server itself cannot do, which is "unsupported by this server" with a reason:
stable-diffusion.cpp serves one model and has no upscale route. (SD.Next has no /schedulers, but its sigma
algorithm, e.g. karras, is what a scheduler sets there, so its scheduler case works.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.standin.webui import StandInWebUI, _json_reply

# Importing dify_plugin (through the harness) monkey-patches the test process with gevent, whose subprocess forks in
# Python; with the stand-in's threads running, Python 3.12 warns about that fork. The child only execs the script.
pytestmark = pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "check_server.py"

CASES = ["credentials", "list tool", "txt2img", "batch of 2", "fixed seed", "sampler", "scheduler", "LoRA",
         "hires fix", "model switch", "img2img", "inpainting", "upscale", "describe image", "read generation info",
         "ControlNet", "ADetailer", "dropdowns"]
WORKS, UNSUPPORTED, FAILS = "works", "unsupported by this server", "FAILS"

# Per flavour: the cases that are not "works", with a word their message must contain.
# The stand-ins here run without the ControlNet and ADetailer extensions.
NO_EXTENSIONS = {"ControlNet": (UNSUPPORTED, "controlnet"), "ADetailer": (UNSUPPORTED, "adetailer")}
NOT_WORKING = {
    "forge": NO_EXTENSIONS,
    # Run with no LoRA installed: the LoRA case does not apply, and the LoRA dropdown must still not be empty (its one
    # option says the WebUI lists no LoRAs).
    "a1111": {"LoRA": (UNSUPPORTED, "lists no lora"), **NO_EXTENSIONS},
    "sdnext": NO_EXTENSIONS,
    "sdcpp": {"model switch": (UNSUPPORTED, "only 1 model"), "upscale": (UNSUPPORTED, "upscal"),
              "describe image": (UNSUPPORTED, "describe"), **NO_EXTENSIONS},
}


def run_check(tmp_path: Path, *args: str, url: str | None = None, user: str = "", password: str = "",
              **extra_env: str) -> tuple[subprocess.CompletedProcess, dict]:
    """Run the script as `make check-server` does: a fresh process that reads SD_WEBUI_* from its environment."""
    env = {**os.environ, "SD_WEBUI_URL": url or "", "SD_WEBUI_USER": user, "SD_WEBUI_PASSWORD": password, **extra_env}
    out = tmp_path / "check.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--json", str(out), "--case-timeout", "20", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    report = json.loads(out.read_text()) if out.exists() else {}
    return proc, report


def results(report: dict) -> dict[str, tuple[str, str]]:
    return {row["case"]: (row["result"], row["message"]) for row in report["rows"]}


def assert_table(proc: subprocess.CompletedProcess, report: dict) -> None:
    """The printed table has a row per case, in order, with the same result as the JSON."""
    lines = proc.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("case "))
    assert lines[header].split() == ["case", "result", "seconds", "message"]
    body = lines[header + 2: header + 2 + len(report["rows"])]
    for line, row in zip(body, report["rows"], strict=True):
        assert line.startswith(row["case"] + " ") and f"  {row['result']}  " in line and line.endswith(row["message"])


def assert_flavour(flavor: str, proc: subprocess.CompletedProcess, report: dict) -> None:
    table = results(report)
    assert list(table) == CASES, proc.stdout + proc.stderr
    expected = NOT_WORKING[flavor]
    got = {case: result for case, (result, _) in table.items()}
    assert got == {case: expected.get(case, (WORKS,))[0] for case in CASES}, proc.stdout
    for case, (result, word) in expected.items():
        assert word in table[case][1].lower(), table[case]
    assert all(message for _, message in table.values())
    assert proc.returncode == 0 and report["exit_code"] == 0, proc.stdout + proc.stderr
    assert_table(proc, report)


def assert_tiny(webui: StandInWebUI, at_least: int = 10) -> None:
    """Quick even on CPU: every generation is at most 128 pixels a side (hires/img2img) with 2 steps."""
    generations = webui.requests_to("POST", "/sdapi/v1/txt2img") + webui.requests_to("POST", "/sdapi/v1/img2img")
    assert len(generations) >= at_least
    for request in generations:
        assert request.json["steps"] == 2 and max(request.json["width"], request.json["height"]) <= 128


@pytest.mark.parametrize("flavor", ["forge", "a1111", "sdnext"])
def test_every_case_against_the_standin_flavour(tmp_path, flavor):
    auth = ("admin", "s3cret") if flavor == "forge" else None  # SD_WEBUI_USER / SD_WEBUI_PASSWORD reach the plugin
    loras = [] if flavor == "a1111" else None  # a server without LoRAs: the LoRA case does not apply to it
    with StandInWebUI(flavor, auth=auth, loras=loras) as webui:
        proc, report = run_check(tmp_path, url=webui.base_url, user="admin" if auth else "",
                                 password="s3cret" if auth else "")
        assert_flavour(flavor, proc, report)
        assert_tiny(webui)
        # The model switch case loaded rand-b, then left the server with the model it had.
        assert webui.model_loads >= 3 and "rand-a" in webui.active_checkpoint and webui.loaded_model == "rand-a"
    assert "s3cret" not in proc.stdout + proc.stderr


def test_sdcpp_through_the_bundled_standin_option(tmp_path):
    proc, report = run_check(tmp_path, "--standin", "sdcpp")
    assert "stand-in" in proc.stdout
    assert_flavour("sdcpp", proc, report)


def test_real_failures_are_fails_and_exit_1(tmp_path):
    """A server fault is FAILS with the plugin's message; so is an answer the plugin accepted but that is wrong."""
    with StandInWebUI("forge", controlnet=True, adetailer=True) as webui:
        webui.inject("oom", "txt2img")  # the txt2img case's generation answers 500 CUDA out of memory

        def upscale_that_does_nothing(call):  # 200 with the input image unchanged, as some servers do
            return _json_reply(200, {"html_info": "", "image": call.record.json["image"]})

        webui._routes[("POST", "/sdapi/v1/extra-single-image")] = upscale_that_does_nothing
        proc, report = run_check(tmp_path, url=webui.base_url)

    table = results(report)
    assert table["txt2img"][0] == FAILS and "out of memory" in table["txt2img"][1]
    assert table["upscale"][0] == FAILS and "the image is 64x64" in table["upscale"][1]
    assert [c for c, (result, _) in table.items() if result != WORKS] == ["txt2img", "upscale"]
    assert proc.returncode == 1 and report["exit_code"] == 1
    assert "2 of 18 cases FAIL: txt2img, upscale." in proc.stdout
    assert_table(proc, report)


def test_refused_credentials_stop_the_check(tmp_path):
    with StandInWebUI("a1111", auth=("admin", "s3cret")) as webui:
        proc, report = run_check(tmp_path, url=webui.base_url, user="admin", password="wrong")
    assert [(row["case"], row["result"]) for row in report["rows"]] == [("credentials", FAILS)]
    assert "Incorrect username or password" in report["rows"][0]["message"]
    assert proc.returncode == 1


def test_without_a_url_it_says_what_to_set(tmp_path):
    proc, report = run_check(tmp_path)
    assert proc.returncode == 2 and report == {}
    assert "Set SD_WEBUI_URL" in proc.stderr and "--standin" in proc.stderr


def test_a_plugin_that_cannot_start_is_one_clear_line(tmp_path):
    # PYTHONSAFEPATH keeps the plugin's directory off sys.path, so `python -m main` cannot find main.py.
    proc, report = run_check(tmp_path, url="http://127.0.0.1:9", PYTHONSAFEPATH="1")
    assert proc.returncode == 1 and report == {}
    assert "The plugin process did not start, so nothing was checked" in proc.stderr and "Traceback" not in proc.stderr


def test_make_target_runs_the_script():
    dry_run = subprocess.run(["make", "-n", "check-server"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert dry_run.returncode == 0 and ".venv/bin/python scripts/check_server.py" in dry_run.stdout



# ------------------------------------------------------------------------------------------------ the "Check server" tool
# The same cases (sdwebui/conformance.py) run inside the plugin, as an admin runs them from Dify: over stdio here.

def tool_credentials(url: str, timeout: int = 120, user: str = "", password: str = "") -> dict[str, str]:
    return {"base_url": url, "username": user, "password": password, "default_model": "", "timeout": str(timeout)}


def run_tool(plugin, credentials: dict, **params) -> tuple[dict, str, float]:
    """The tool's JSON and text; the call itself never fails (a broken server is rows that FAIL)."""
    result = plugin.invoke_tool("sd_webui", "check_server", credentials, params, timeout=400)
    assert result.error is None, result.error
    assert len(result.jsons) == 1 and len(result.texts) == 1 and not result.blobs
    return result.jsons[0], result.texts[0], result.elapsed_s


def pairs(rows: list[dict]) -> list[tuple[str, str]]:
    return [(row["case"], row["result"]) for row in rows]


@pytest.mark.parametrize("flavor", ["forge", "a1111", "sdnext", "sdcpp"])
def test_the_tool_agrees_with_the_cli_on_each_flavour(tmp_path, plugin, flavor):
    loras = [] if flavor == "a1111" else None
    with StandInWebUI(flavor, loras=loras) as webui:
        proc, cli = run_check(tmp_path, url=webui.base_url)
        webui.reset()
        answer, text, _ = run_tool(plugin, tool_credentials(webui.base_url))
        assert_tiny(webui, at_least=9 if flavor == "sdcpp" else 10)  # sdcpp: no model switch
        active_after, loaded_after = webui.active_checkpoint, webui.loaded_model
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert pairs(answer["rows"]) == pairs(cli["rows"])
    expected = NOT_WORKING[flavor]
    assert {c: r for c, r in pairs(answer["rows"])} == {case: expected.get(case, (WORKS,))[0] for case in CASES}
    # The answer: the table as Markdown, then the summary line, which names the server and the model put back.
    lines = text.splitlines()
    assert lines[0] == "| case | result | seconds | message |" and len(lines) == 2 + len(CASES) + 2
    for line, row in zip(lines[2:2 + len(CASES)], answer["rows"], strict=True):
        assert line.startswith(f"| {row['case']} | {row['result']} | ")
    unsupported = len(expected)
    assert lines[-1] == answer["summary"]
    assert answer["summary"].startswith(f"{len(CASES) - unsupported} work, {unsupported} unsupported, 0 fail on ")
    assert answer["server"].lower() in answer["summary"].lower()
    if flavor != "sdcpp":  # the model switch case loaded rand-b, and the tool put rand-a back
        assert "restored the active model '" in answer["summary"] and answer["restored_model"]
        assert "rand-a" in active_after and loaded_after == "rand-a"


def test_the_tool_reports_a_failing_case_and_goes_on(plugin):
    with StandInWebUI("forge", controlnet=True, adetailer=True) as webui:
        webui.inject("oom", "txt2img")
        answer, text, _ = run_tool(plugin, tool_credentials(webui.base_url))
    rows = {row["case"]: row for row in answer["rows"]}
    assert rows["txt2img"]["result"] == FAILS and "out of memory" in rows["txt2img"]["message"]
    assert [c for c, r in pairs(answer["rows"]) if r != WORKS] == ["txt2img"] and answer["fails"] == ["txt2img"]
    assert "17 work, 0 unsupported, 1 fail on " in text


def test_a_hung_case_hits_its_own_deadline_and_the_others_still_run(plugin):
    """Timeout 30 s: a 30 s budget, 10 s per case. txt2img hangs (the server never answers); the rest still run."""
    with StandInWebUI("forge") as webui:
        webui.inject("hang", "txt2img")
        answer, _, elapsed = run_tool(plugin, tool_credentials(webui.base_url, timeout=30))
    rows = {row["case"]: row for row in answer["rows"]}
    assert rows["txt2img"]["result"] == FAILS and 9 <= rows["txt2img"]["seconds"] <= 20, rows["txt2img"]
    assert sum(row["result"] == WORKS for row in answer["rows"]) >= 10, answer["rows"]
    assert elapsed < 30 + 15  # the budget, plus at most one case's minimum deadline


def test_the_time_budget_skips_what_would_not_fit(plugin):
    """A slow server (each generation 4 s) in a 10 s budget: what would not fit is 'skipped: time', with its need."""
    with StandInWebUI("forge", generation_delay=4) as webui:
        answer, _, elapsed = run_tool(plugin, tool_credentials(webui.base_url, timeout=10))
    skipped = [row for row in answer["rows"] if row["result"] == "skipped: time"]
    assert skipped and all("would need about" in row["message"] for row in skipped), answer["rows"]
    assert answer["skipped"] == [row["case"] for row in skipped]
    assert elapsed < 10 + 15


def test_a_server_that_answers_nothing_is_one_failing_row(plugin):
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    answer, text, _ = run_tool(plugin, tool_credentials(f"http://127.0.0.1:{port}", timeout=10))
    assert pairs(answer["rows"]) == [("credentials", FAILS)]
    assert "0 work, 0 unsupported, 1 fail" in text


def test_quick_mode_loads_no_other_model(plugin):
    with StandInWebUI("forge", controlnet=True, adetailer=True) as webui:
        answer, _, _ = run_tool(plugin, tool_credentials(webui.base_url), quick=True)
        loads = webui.model_loads
    rows = {row["case"]: row["result"] for row in answer["rows"]}
    assert rows["model switch"] == "skipped: quick" and answer["restored_model"] is None
    assert all(result == WORKS for case, result in rows.items() if case != "model switch")
    assert loads <= 1  # at most the first load of the active model
