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

The exit code is 1 when a case FAILS, 2 when no server was given, else 0. Generating changes nothing lasting on the
server except that the model switch case loads another checkpoint, then switches back to the one that was active.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PIL import Image, ImageDraw  # noqa: E402

from tests.harness.file_server import FileServer  # noqa: E402
from tests.harness.plugin_process import PluginProcess, PluginStartError, Result  # noqa: E402

PROVIDER = "sd_webui"
WORKS = "works"
UNSUPPORTED = "unsupported by this server"
FAILS = "FAILS"

SIZE = 64  # every server's minimum; stable-diffusion.cpp rounds sizes up to multiples of 64
STEPS = 2
PROMPT = "a red apple on a wooden table"
FIXED_SEED = 123456789
DEFAULT_CASE_TIMEOUT_S = 120
WAIT_MARGIN_S = 15  # the harness waits this much longer than the plugin's own deadline, to get its message

# How the plugin words "this server cannot do that" (its sdwebui.errors.Unsupported sentences), lowercase. The error
# must also be a bad-request error (Unsupported becomes InvokeBadRequestError), so a connection failure never matches.
# Kept narrow on purpose: a server's own 4xx text (also a bad-request error) must not pass for "unsupported".
UNSUPPORTED_PHRASES = (
    "cannot switch",     # one-model servers (stable-diffusion.cpp)
    "has no separate",   # no scheduler setting
    "does not support",  # controls a server would silently ignore
    "cannot upscale",    # no /extra-single-image
    "cannot run",        # hires fix without any upscaler
    "cannot do",         # a route this server family lacks (MissingRoute)
)
UNSUPPORTED_ERROR_TYPE = "InvokeBadRequestError"

# Names that need nothing downloaded and run fast, preferred when the server lists them.
PREFERRED_SAMPLERS = ("Euler", "euler", "Euler a", "euler_a", "DPM++ 2M", "dpm++2m")
PREFERRED_SCHEDULERS = ("karras", "Karras", "normal", "simple")
PREFERRED_UPSCALERS = ("Lanczos", "Resize Lanczos", "Nearest", "Resize Nearest")  # else the plugin's own choice
PREFERRED_HIRES_UPSCALERS = ("Latent", "Latent Nearest", "Latent (nearest)", *PREFERRED_UPSCALERS)

# Dynamic dropdowns: (label, tool, parameter).
DROPDOWNS = (
    ("model", "txt2img", "model"),
    ("sampler", "txt2img", "sampler"),
    ("scheduler", "txt2img", "scheduler"),
    ("LoRA", "txt2img", "lora"),
    ("hires upscaler", "txt2img", "hr_upscaler"),
    ("upscaler", "upscale", "upscaler"),
)


# ------------------------------------------------------------------------------------------------ outcomes

@dataclass
class Row:
    case: str
    result: str
    seconds: float
    message: str


class CaseFailed(Exception):
    """A case's answer came back but is not what was asked for (the message says what differs)."""


class CaseUnsupported(Exception):
    """The server lacks what the case needs (found before calling the tool)."""


@dataclass
class Check:
    """What one run shares between cases: the plugin, the credentials, the file server and what was learnt."""

    plugin: PluginProcess
    credentials: dict[str, str]
    files: FileServer
    case_timeout_s: float
    resources: dict[str, Any] | None = None  # the list tool's JSON

    def invoke(self, tool: str, params: dict[str, Any]) -> Result:
        return self.plugin.invoke_tool(PROVIDER, tool, self.credentials, params,
                                       timeout=self.case_timeout_s + WAIT_MARGIN_S)

    def generate(self, tool: str, params: dict[str, Any]) -> Result:
        """Invoke a generating tool with tiny defaults; an error reply raises PluginError."""
        result = self.invoke(tool, {"prompt": PROMPT, "steps": STEPS, **params})
        return answered(result)

    def listed(self, kind: str) -> list[Any]:
        if self.resources is None:
            raise CaseFailed("needs the server's lists, but the list tool failed (see its row)")
        return self.resources.get(kind) or []


class PluginError(Exception):
    """The plugin answered with an error; ``error`` is its error dict (error_type, message)."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(str(error.get("message") or error))
        self.error = error


def answered(result: Result) -> Result:
    if result.error is not None:
        raise PluginError(result.error)
    return result


def is_unsupported(error: dict[str, Any]) -> bool:
    """Whether the plugin's error says the server cannot do this (not that something broke)."""
    message = str(error.get("message") or "").lower()
    return error.get("error_type") == UNSUPPORTED_ERROR_TYPE and any(p in message for p in UNSUPPORTED_PHRASES)


def run_case(name: str, case: Callable[[Check], str], check: Check) -> Row:
    """Run one case and classify it; never raises."""
    started = time.monotonic()
    try:
        message, result = case(check), WORKS
    except PluginError as exc:
        message, result = str(exc), (UNSUPPORTED if is_unsupported(exc.error) else FAILS)
    except CaseUnsupported as exc:
        message, result = str(exc), UNSUPPORTED
    except CaseFailed as exc:
        message, result = str(exc), FAILS
    except TimeoutError:
        message, result = f"no answer from the plugin within {check.case_timeout_s + WAIT_MARGIN_S:g} s", FAILS
    except Exception as exc:  # the plugin died or broke the protocol: report it, go on with the next case
        message, result = f"{type(exc).__name__}: {one_line(str(exc))}", FAILS
    return Row(name, result, round(time.monotonic() - started, 2), one_line(message))


def one_line(text: str) -> str:
    return " / ".join(line.strip() for line in str(text).splitlines() if line.strip())


# ------------------------------------------------------------------------------------------------ images

def image_size(data: bytes) -> tuple[int, int]:
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            return img.size
    except Exception as exc:
        raise CaseFailed(f"a returned file is not a readable image ({exc})") from None


def sizes(result: Result) -> list[tuple[int, int]]:
    return [image_size(blob.data) for blob in result.blobs]


def png(width: int, height: int, draw: Callable[[ImageDraw.ImageDraw], None] | None = None,
        color: tuple[int, int, int] = (40, 110, 170)) -> bytes:
    img = Image.new("RGB", (width, height), color)
    if draw:
        draw(ImageDraw.Draw(img))
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def input_picture(width: int, height: int) -> bytes:
    return png(width, height, lambda d: d.ellipse((width // 4, height // 4, 3 * width // 4, 3 * height // 4),
                                                  fill=(220, 40, 40)))


def centre_mask(width: int, height: int) -> bytes:
    """White (repaint) square in the middle of a black (keep) mask."""
    return png(width, height, lambda d: d.rectangle((width // 4, height // 4, 3 * width // 4, 3 * height // 4),
                                                    fill=(255, 255, 255)), color=(0, 0, 0))


# ------------------------------------------------------------------------------------------------ helpers

def plugin_text(result: Result) -> str:
    return one_line(result.texts[-1]) if result.texts else "(no text message)"


def summary(result: Result) -> dict[str, Any]:
    if not result.jsons or not isinstance(result.jsons[0], dict):
        raise CaseFailed(f"the tool returned no JSON summary; it said: {plugin_text(result)}")
    return result.jsons[0]


def expect_images(result: Result, count: int) -> list[tuple[int, int]]:
    if len(result.blobs) != count:
        raise CaseFailed(f"asked for {count} image(s), got {len(result.blobs)}; the plugin said: {plugin_text(result)}")
    return sizes(result)


def expect_no_warnings(result: Result) -> None:
    warnings = summary(result).get("warnings") or []
    if warnings:
        raise CaseFailed("the server did something else than asked: " + " ".join(warnings))


def key(name: Any) -> str:
    """Compare names the forgiving way: case, spaces, dashes and underscores do not count."""
    return re.sub(r"[\s_\-]", "", str(name or "").lower())


def model_key(name: Any) -> str:
    """A checkpoint name without '[hash]', folder and extension: 'sub/Rand-B.safetensors [ab12]' -> 'randb'."""
    text = re.sub(r"\s*\[[0-9a-fA-F]+\]\s*$", "", str(name or ""))
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    text = re.sub(r"\.(safetensors|ckpt|gguf|pt|bin)$", "", text, flags=re.IGNORECASE)
    return key(text)


def same_model(entry: dict[str, Any], name: Any) -> bool:
    return bool(name) and model_key(name) in {model_key(entry.get("title")), model_key(entry.get("name"))}


def pick(available: list[str], preferred: tuple[str, ...], avoid: tuple[str, ...] = ()) -> str | None:
    for name in preferred:
        if name in available:
            return name
    return next((n for n in available if key(n) not in {key(a) for a in avoid}), None)


# ------------------------------------------------------------------------------------------------ cases

def case_credentials(check: Check) -> str:
    result = check.plugin.validate_credentials(PROVIDER, check.credentials, timeout=check.case_timeout_s + WAIT_MARGIN_S)
    answered(result)
    if result.messages != [{"result": True}]:
        raise CaseFailed(f"unexpected answer to the credentials check: {result.messages!r}")
    return "accepted"


def case_list_tool(check: Check) -> str:
    result = answered(check.invoke("list_resources", {}))
    resources = summary(result)
    models = resources.get("models")
    if not isinstance(models, list) or not models or not all(isinstance(m, dict) and m.get("title") for m in models):
        raise CaseFailed(f"the list tool's JSON has no models: {json.dumps(resources)[:200]}")
    if not resources.get("server"):
        raise CaseFailed(f"the list tool's JSON does not name the server: {json.dumps(resources)[:200]}")
    check.resources = resources
    return plugin_text(result)


def case_txt2img(check: Check) -> str:
    result = check.generate("txt2img", {"width": SIZE, "height": SIZE})
    [size] = expect_images(result, 1)
    if size != (SIZE, SIZE):
        raise CaseFailed(f"asked for {SIZE}x{SIZE}, the image is {size[0]}x{size[1]}")
    return plugin_text(result)


def case_batch(check: Check) -> str:
    result = check.generate("txt2img", {"width": SIZE, "height": SIZE, "batch_size": 2})
    expect_images(result, 2)
    seeds = summary(result).get("seeds") or []
    if len(seeds) != 2:
        raise CaseFailed(f"2 images came back but the seeds are {seeds}")
    return plugin_text(result)


def case_fixed_seed(check: Check) -> str:
    result = check.generate("txt2img", {"width": SIZE, "height": SIZE, "seed": FIXED_SEED})
    expect_images(result, 1)
    seed = summary(result).get("seed")
    if seed != FIXED_SEED or result.variables.get("seed") != FIXED_SEED:
        raise CaseFailed(f"asked for seed {FIXED_SEED}, the answer says {seed}")
    return plugin_text(result)


def case_sampler(check: Check) -> str:
    sampler = pick(check.listed("samplers"), PREFERRED_SAMPLERS, avoid=("default", "automatic"))
    if sampler is None:
        raise CaseFailed("the server lists no samplers")
    result = check.generate("txt2img", {"width": SIZE, "height": SIZE, "sampler_name": sampler})
    expect_used(result, "sampler", sampler)
    return plugin_text(result)


def case_scheduler(check: Check) -> str:
    sampler = pick(check.listed("samplers"), PREFERRED_SAMPLERS, avoid=("default", "automatic"))
    schedulers = check.resources.get("schedulers") if check.resources else None
    # A server without a scheduler list still gets the request: the plugin's own answer says what it can do.
    scheduler = pick(schedulers or [], PREFERRED_SCHEDULERS, avoid=("default", "automatic")) or "karras"
    result = check.generate("txt2img", {"width": SIZE, "height": SIZE, "sampler_name": sampler or "",
                                        "scheduler_name": scheduler})
    expect_used(result, "scheduler", scheduler)
    return plugin_text(result)


def expect_used(result, field: str, asked: str) -> None:
    """One image, no fallback warning, and the answer names the sampler/scheduler that was asked for."""
    expect_images(result, 1)
    expect_no_warnings(result)
    used = summary(result).get(field)
    if key(used) != key(asked):
        raise CaseFailed(f"asked for {field} '{asked}', the answer says '{used}'")


def case_lora(check: Check) -> str:
    loras = check.listed("loras")
    if not loras:
        raise CaseUnsupported("the server lists no LoRA, so there is none to try")
    name = loras[0]
    result = check.generate("txt2img", {"width": SIZE, "height": SIZE, "loras": f"{name}:0.8"})
    expect_images(result, 1)
    expect_no_warnings(result)
    used = [entry.get("name") for entry in summary(result).get("loras") or []]
    if name not in used:
        raise CaseFailed(f"asked for LoRA '{name}', the answer lists {used}")
    return plugin_text(result)


def case_hires(check: Check) -> str:
    options = check.plugin.fetch_parameter_options(PROVIDER, "txt2img", "hr_upscaler", check.credentials,
                                                   timeout=check.case_timeout_s + WAIT_MARGIN_S)
    answered(options)
    available = [o["value"] for o in options_of(options)]
    upscaler = pick(available, PREFERRED_HIRES_UPSCALERS, avoid=("none",)) or ""
    result = check.generate("txt2img", {"width": SIZE, "height": SIZE, "enable_hr": True, "hr_scale": 2,
                                        "hr_upscaler_name": upscaler, "hr_second_pass_steps": STEPS,
                                        "denoising_strength": 0.5})
    [size] = expect_images(result, 1)
    if size != (2 * SIZE, 2 * SIZE):
        raise CaseFailed(f"hires fix x2 of {SIZE}x{SIZE} should give {2 * SIZE}x{2 * SIZE}, "
                         f"the image is {size[0]}x{size[1]}")
    return plugin_text(result)


def case_model_switch(check: Check) -> str:
    models = check.listed("models")
    active = check.resources.get("active_model")
    if len(models) < 2:
        names = ", ".join(m["title"] for m in models)
        raise CaseUnsupported(f"the server lists only {len(models)} model ({names}), so there is nothing to switch to")
    original = next((m for m in models if same_model(m, active)), None)
    other = next(m for m in models if m is not original)
    result = check.generate("txt2img", {"width": SIZE, "height": SIZE, "model_name": other["title"]})
    expect_images(result, 1)
    used = summary(result).get("model")
    if not same_model(other, used):
        raise CaseFailed(f"asked for model '{other['title']}', the answer says '{used}'")
    message = plugin_text(result)
    if original is not None:  # put the server back the way it was
        back = check.generate("txt2img", {"width": SIZE, "height": SIZE, "model_name": original["title"]})
        expect_images(back, 1)
        if not same_model(original, summary(back).get("model")):
            raise CaseFailed(f"switched to '{other['title']}', but switching back to '{original['title']}' gave "
                             f"'{summary(back).get('model')}'")
        message += f" (then back to {original['title']})"
    return message


def case_img2img(check: Check) -> str:
    width, height = 2 * SIZE, SIZE  # not square, and multiples of 64 for stable-diffusion.cpp
    image = check.files.add(input_picture(width, height), filename="input.png")
    result = check.generate("img2img", {"image": image, "denoising_strength": 0.5})
    [(out_w, out_h)] = expect_images(result, 1)
    if abs(out_w / out_h - width / height) > 0.05:
        raise CaseFailed(f"the input is {width}x{height}, the image came back {out_w}x{out_h} (another aspect)")
    return plugin_text(result)


def case_inpaint(check: Check) -> str:
    image = check.files.add(input_picture(SIZE, SIZE), filename="input.png")
    mask = check.files.add(centre_mask(SIZE, SIZE), filename="mask.png")
    result = check.generate("img2img", {"image": image, "mask": mask, "denoising_strength": 0.75})
    [size] = expect_images(result, 1)
    if size != (SIZE, SIZE):
        raise CaseFailed(f"the input is {SIZE}x{SIZE}, the image came back {size[0]}x{size[1]}")
    return plugin_text(result)


def case_upscale(check: Check) -> str:
    upscaler = next((u for u in PREFERRED_UPSCALERS if u in check.listed("upscalers")), "")
    image = check.files.add(input_picture(SIZE, SIZE), filename="small.png")
    result = answered(check.invoke("upscale", {"image": image, "upscaler_name": upscaler, "scale": 2}))
    [size] = expect_images(result, 1)
    if size != (2 * SIZE, 2 * SIZE):
        raise CaseFailed(f"asked to upscale {SIZE}x{SIZE} by 2, the image is {size[0]}x{size[1]}"
                         + (f" (upscaler {upscaler})" if upscaler else ""))
    return plugin_text(result)


def options_of(result: Result) -> list[dict[str, Any]]:
    if not result.messages or not isinstance(result.messages[0], dict):
        raise CaseFailed("a dropdown answered without options")
    return result.messages[0].get("options") or []


def case_dropdowns(check: Check) -> str:
    counts, empty, errors = [], [], []
    for label, tool, parameter in DROPDOWNS:
        result = check.plugin.fetch_parameter_options(PROVIDER, tool, parameter, check.credentials,
                                                      timeout=check.case_timeout_s + WAIT_MARGIN_S)
        if result.error is not None:
            errors.append(f"{label}: {result.error.get('message')}")
            continue
        options = options_of(result)
        counts.append(f"{label} {len(options)}")
        if not options:
            empty.append(label)
    if errors:
        raise CaseFailed("; ".join(errors))
    if empty:
        raise CaseFailed(f"empty dropdown: {', '.join(empty)} (a server without any should say so in an option); "
                         + ", ".join(counts))
    return "options: " + ", ".join(counts)


CASES: list[tuple[str, Callable[[Check], str]]] = [
    ("credentials", case_credentials),
    ("list tool", case_list_tool),  # early: the cases below pick names from its lists
    ("txt2img", case_txt2img),
    ("batch of 2", case_batch),
    ("fixed seed", case_fixed_seed),
    ("sampler", case_sampler),
    ("scheduler", case_scheduler),
    ("LoRA", case_lora),
    ("hires fix", case_hires),
    ("model switch", case_model_switch),
    ("img2img", case_img2img),
    ("inpainting", case_inpaint),
    ("upscale", case_upscale),
    ("dropdowns", case_dropdowns),
]


# ------------------------------------------------------------------------------------------------ output

def table(rows: list[Row]) -> str:
    header = ("case", "result", "seconds", "message")
    cells = [header] + [(r.case, r.result, f"{r.seconds:.2f}", r.message) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(3)]
    lines = []
    for i, (case, result, seconds, message) in enumerate(cells):
        lines.append(f"{case:<{widths[0]}}  {result:<{widths[1]}}  {seconds:>{widths[2]}}  {message}")
        if i == 0:
            lines.append(f"{'-' * widths[0]}  {'-' * widths[1]}  {'-' * widths[2]}  {'-' * 7}")
    return "\n".join(lines)


def run_checks(check: Check) -> list[Row]:
    """Every case in order; one progress line each on stderr, since a CPU server takes a while."""
    rows = []
    for number, (name, case) in enumerate(CASES, 1):
        print(f"[{number:2}/{len(CASES)}] {name} ...", end="", file=sys.stderr, flush=True)
        row = run_case(name, case, check)
        print(f" {row.result} ({row.seconds:.2f} s)", file=sys.stderr, flush=True)
        rows.append(row)
        if name == "credentials" and row.result != WORKS:
            break  # nothing else can work without a server the plugin accepts
    return rows


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

            url = stack.enter_context(StandInWebUI(args.standin)).base_url
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
        check = Check(plugin, credentials_from_env(url, args.case_timeout), files, args.case_timeout)
        rows = run_checks(check)

    print()
    print(table(rows))
    failed = [r.case for r in rows if r.result == FAILS]
    print()
    print(f"{len(failed)} of {len(rows)} cases FAIL: {', '.join(failed)}." if failed
          else f"No case fails ({sum(r.result == WORKS for r in rows)} work, "
               f"{sum(r.result == UNSUPPORTED for r in rows)} unsupported by this server).")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"server": url, "rows": [asdict(r) for r in rows],
                                         "exit_code": 1 if failed else 0}, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
