"""Check what a WebUI supports, through the plugin run exactly as Dify runs it, and print a table.

    SD_WEBUI_URL=http://host:7860 [SD_WEBUI_USER=u SD_WEBUI_PASSWORD=p] python scripts/check_server.py [--json PATH]
    python scripts/check_server.py --standin forge|a1111|sdnext|sdcpp|sdnext-058a7f0       # against the bundled stand-in (demo)

The plugin is started as ``python -m main`` over stdio (INSTALL_METHOD=local), like Dify's plugin daemon starts it,
and driven through a fixed list of cases: credentials, the list tool, txt2img, a batch of 2, a fixed seed, a
sampler, a scheduler, a LoRA, hires fix, a model switch, img2img, inpainting, upscaling and the dropdowns. Input
images reach the plugin as Dify sends them: a file URL that the plugin fetches (served here on 127.0.0.1).
Everything is tiny (64x64, 2 steps) so that it is quick even on a CPU.

Each case ends as one of:

* ``works``: the tool answered and the answer was checked, not assumed (the number of images, their real size read
  from the image bytes, the seed, the model, the sampler and scheduler without a fallback warning, ...);
* ``unsupported by this server``: the plugin's own error says the server cannot do it (see UNSUPPORTED_PHRASES), or
  the server lacks what the case needs (one model only: no model switch; no LoRA listed: no LoRA case);
* ``FAILS``: anything else.

The cases and the rules that judge them are in sdwebui/conformance.py, shared with the plugin's "Check server" tool;
this script is the stdio runner around them. The exit code is 1 when a case FAILS, 2 when no server was given, else 0.
Generating changes nothing lasting on the server except that the model switch case loads another checkpoint, then
switches back to the one that was active.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sdwebui import conformance  # noqa: E402
from sdwebui.conformance import FAILS, UNSUPPORTED, WORKS, Answer, Case, Check, Row  # noqa: E402
from tests.harness.file_server import FileServer  # noqa: E402
from tests.harness.plugin_process import PluginProcess, PluginStartError, Result  # noqa: E402

PROVIDER = "sd_webui"
DEFAULT_CASE_TIMEOUT_S = 120
WAIT_MARGIN_S = 15  # the harness waits this much longer than the plugin's own deadline, to get its message

# The rules live in sdwebui/conformance.py, shared with the plugin's "Check server" tool; re-exported for callers.
is_unsupported, same_model, pick, table, CASES = (conformance.is_unsupported, conformance.same_model,
                                                   conformance.pick, conformance.table, conformance.CASES)


def answer_of(result: Result) -> Answer:
    return Answer(texts=list(result.texts), jsons=list(result.jsons), blobs=[blob.data for blob in result.blobs],
                  variables=dict(result.variables), messages=list(result.messages), error=result.error)


class StdioRunner:
    """The plugin as Dify runs it: ``python -m main`` over stdio; input images served as file URLs."""

    def __init__(self, plugin: PluginProcess, credentials: dict[str, str], files: FileServer) -> None:
        self.plugin, self.credentials, self.files = plugin, credentials, files

    def invoke(self, tool_name: str, params: dict[str, Any], timeout_s: float) -> Answer:
        return answer_of(self.plugin.invoke_tool(PROVIDER, tool_name, self.credentials, params,
                                                 timeout=timeout_s + WAIT_MARGIN_S))

    def validate(self, timeout_s: float) -> Answer:
        return answer_of(self.plugin.validate_credentials(PROVIDER, self.credentials, timeout=timeout_s + WAIT_MARGIN_S))

    def options(self, tool_name: str, parameter: str, timeout_s: float) -> Answer:
        return answer_of(self.plugin.fetch_parameter_options(PROVIDER, tool_name, parameter, self.credentials,
                                                             timeout=timeout_s + WAIT_MARGIN_S))

    def image(self, data: bytes, filename: str) -> Any:
        return self.files.add(data, filename=filename)


def run_checks(check: Check) -> list[Row]:
    """Every case in order; one progress line each on stderr, since a CPU server takes a while."""

    def progress(number: int, case: Case, row: Row | None) -> None:
        if row is None:
            print(f"[{number:2}/{len(CASES)}] {case.name} ...", end="", file=sys.stderr, flush=True)
        else:
            print(f" {row.result} ({row.seconds:.2f} s)", file=sys.stderr, flush=True)

    return conformance.run_checks(check, progress)


def credentials_from_env(url: str, case_timeout_s: float) -> dict[str, str]:
    return {
        "base_url": url,
        "username": os.environ.get("SD_WEBUI_USER", ""),
        "password": os.environ.get("SD_WEBUI_PASSWORD", ""),
        "default_model": "",  # the server's active model: what a fresh install would use
        "timeout": str(int(case_timeout_s)),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--standin", metavar="FLAVOR", choices=("forge", "a1111", "sdnext", "sdcpp", "sdnext-058a7f0"),
                        help="check the bundled stand-in WebUI of this flavour instead of SD_WEBUI_URL (demo)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the rows as JSON to PATH")
    parser.add_argument("--case-timeout", type=float, default=DEFAULT_CASE_TIMEOUT_S, metavar="SECONDS",
                        help=f"the plugin's request timeout for each case, 10-540 (default {DEFAULT_CASE_TIMEOUT_S})")
    args = parser.parse_args(argv)
    if not 10 <= args.case_timeout <= 540:
        parser.error("--case-timeout must be between 10 and 540 seconds (the plugin's timeout range)")

    with ExitStack() as stack:
        url = os.environ.get("SD_WEBUI_URL", "").strip()
        if args.standin:
            from tests.standin.webui import StandInWebUI

            url = stack.enter_context(StandInWebUI(args.standin, controlnet=True, adetailer=True)).base_url
            print(f"Checking the bundled stand-in WebUI ({args.standin}) at {url}; it imitates a server, it is not one.")
        elif not url:
            print("Set SD_WEBUI_URL to your WebUI's base URL, e.g. SD_WEBUI_URL=http://192.168.1.20:7860 make "
                  "check-server (plus SD_WEBUI_USER and SD_WEBUI_PASSWORD if it runs with --api-auth), "
                  "or try it on the bundled stand-in with --standin forge (make check-server CHECK_ARGS='--standin forge').",
                  file=sys.stderr)
            return 2
        else:
            print(f"Checking the WebUI at {url} through the plugin (python -m main over stdio, as Dify runs it).")

        files = stack.enter_context(FileServer())
        try:
            plugin = stack.enter_context(PluginProcess(str(ROOT)))
        except PluginStartError as exc:
            print(f"The plugin process did not start, so nothing was checked: {exc}", file=sys.stderr)
            return 1
        runner = StdioRunner(plugin, credentials_from_env(url, args.case_timeout), files)
        check = Check(runner, args.case_timeout)
        rows = run_checks(check)

    print()
    print(table(rows))
    failed = [r.case for r in rows if r.result == FAILS]
    print()
    print(f"{len(failed)} of {len(rows)} cases FAIL: {', '.join(failed)}." if failed
          else f"No case fails ({sum(r.result == WORKS for r in rows)} work, "
               f"{sum(r.result == UNSUPPORTED for r in rows)} unsupported by this server).")
    print(conformance.summary_line(rows, check))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"server": url, "rows": [asdict(r) for r in rows],
                                         "exit_code": 1 if failed else 0}, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
