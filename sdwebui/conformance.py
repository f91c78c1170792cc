"""What a WebUI supports, checked through the plugin's own tools: the cases, and the rules that judge their answers.

One module for both ways of running the check, so that they cannot drift: ``make check-server``
(scripts/check_server.py, the plugin over stdio as Dify runs it) and the plugin's "Check server" tool
(tools/check_server.py, the plugin's other tools called in-process). Both give a :class:`Runner`; :func:`run_checks`
drives it through :data:`CASES` and returns one :class:`Row` per case.

Each case ends as one of:

* ``works``: the tool answered and the answer was checked, not assumed (the number of images, their real size read
  from the image bytes, the seed, the model, the sampler and scheduler without a fallback warning, ...);
* ``unsupported by this server``: the plugin's own error says the server cannot do it (see UNSUPPORTED_PHRASES), or
  the server lacks what the case needs (one model only: no model switch; no LoRA listed: no LoRA case);
* ``FAILS``: anything else;
* ``skipped: time`` (it would not fit in what is left of the time budget; the message says how long it would need)
  or ``skipped: quick`` (quick mode leaves the model switch out).

Safe on a production server: everything is tiny (64x64, 2 steps), each case has its own deadline, the active model is
read first (the list tool) and put back after the model switch case (the summary says so), and nothing else is set.
"""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from PIL import Image, ImageDraw

WORKS = "works"
UNSUPPORTED = "unsupported by this server"
FAILS = "FAILS"
SKIPPED_TIME = "skipped: time"
SKIPPED_QUICK = "skipped: quick"

SIZE = 64  # every server's minimum; stable-diffusion.cpp rounds sizes up to multiples of 64
STEPS = 2
PROMPT = "a red apple on a wooden table"
FIXED_SEED = 123456789

# How the plugin words "this server cannot do that" (its sdwebui.errors.Unsupported sentences), lowercase. The error
# must also be a bad-request error (Unsupported becomes InvokeBadRequestError), so a connection failure never matches.
# Kept narrow on purpose: a server's own 4xx text (also a bad-request error) must not pass for "unsupported".
UNSUPPORTED_PHRASES = (
    "cannot switch",     # one-model servers (stable-diffusion.cpp)
    "has no separate",   # no scheduler setting
    "does not support",  # controls a server would silently ignore
    "cannot upscale",    # no /extra-single-image
    "cannot describe",   # no /interrogate or /caption
    "cannot run",        # hires fix without any upscaler
    "cannot do",         # a route this server family lacks (MissingRoute)
)
UNSUPPORTED_ERROR_TYPE = "InvokeBadRequestError"


# ------------------------------------------------------------------------------------------------ the runner

@dataclass
class Answer:
    """One reply of the plugin, however it was reached: its messages, or its error (error_type, message)."""

    texts: list[str] = field(default_factory=list)
    jsons: list[Any] = field(default_factory=list)
    blobs: list[bytes] = field(default_factory=list)
    variables: dict[str, Any] = field(default_factory=dict)
    messages: list[Any] = field(default_factory=list)  # credentials check and dropdowns: their result dicts
    error: dict[str, Any] | None = None

    @property
    def text(self) -> str:
        return self.texts[-1] if self.texts else ""

    @property
    def json(self) -> Any:
        return self.jsons[0] if self.jsons else None


class Runner(Protocol):
    """How the cases reach the plugin. Each call is given the seconds it may take (its case's deadline)."""

    def invoke(self, tool_name: str, params: dict[str, Any], timeout_s: float) -> Answer: ...

    def validate(self, timeout_s: float) -> Answer:
        """The provider's credentials check; ``messages == [{"result": True}]`` when accepted."""
        ...

    def options(self, tool_name: str, parameter: str, timeout_s: float) -> Answer:
        """A dynamic dropdown; ``messages == [{"options": [{"value": ..., ...}, ...]}]``."""
        ...

    def image(self, data: bytes, filename: str) -> Any:
        """An input image as the tools' file parameter takes it."""
        ...


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


class PluginError(Exception):
    """The plugin answered with an error; ``error`` is its error dict (error_type, message)."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(str(error.get("message") or error))
        self.error = error


@dataclass
class Check:
    """What one run shares between cases: the runner, the deadlines and what was learnt."""

    runner: Runner
    case_timeout_s: float
    budget_s: float | None = None  # the whole run; None: no limit (the CLI)
    quick: bool = False
    resources: dict[str, Any] | None = None  # the list tool's JSON
    original_model: dict[str, Any] | None = None  # the active model's list entry, read before anything is switched
    switched: bool = False  # a case loaded another model
    restored: str | None = None  # the model put back afterwards
    started: float = field(default_factory=time.monotonic)
    generation_s: float = 1.0  # the longest generating case so far: what the time budget's estimates scale

    def remaining_s(self) -> float | None:
        return None if self.budget_s is None else self.budget_s - (time.monotonic() - self.started)

    @property
    def timeout_s(self) -> float:
        """This case's deadline: the case timeout, or what is left of the budget when that is less."""
        left = self.remaining_s()
        return self.case_timeout_s if left is None else max(1.0, min(self.case_timeout_s, left))

    def invoke(self, tool: str, params: dict[str, Any]) -> Answer:
        return answered(self.runner.invoke(tool, params, self.timeout_s))

    def generate(self, tool: str, params: dict[str, Any]) -> Answer:
        """Invoke a generating tool with tiny defaults; an error reply raises PluginError."""
        return self.invoke(tool, {"prompt": PROMPT, "steps": STEPS, **params})

    def options(self, tool: str, parameter: str) -> Answer:
        return self.runner.options(tool, parameter, self.timeout_s)

    def listed(self, kind: str) -> list[Any]:
        if self.resources is None:
            raise CaseFailed("needs the server's lists, but the list tool failed (see its row)")
        return self.resources.get(kind) or []


def answered(answer: Answer) -> Answer:
    if answer.error is not None:
        raise PluginError(answer.error)
    return answer


def is_unsupported(error: dict[str, Any]) -> bool:
    """Whether the plugin's error says the server cannot do this (not that something broke)."""
    message = str(error.get("message") or "").lower()
    return error.get("error_type") == UNSUPPORTED_ERROR_TYPE and any(p in message for p in UNSUPPORTED_PHRASES)


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


def sizes(result: Answer) -> list[tuple[int, int]]:
    return [image_size(blob) for blob in result.blobs]


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

# Names that need nothing downloaded and run fast, preferred when the server lists them.
PREFERRED_SAMPLERS = ("Euler", "euler", "Euler a", "euler_a", "DPM++ 2M", "dpm++2m")
PREFERRED_SCHEDULERS = ("karras", "Karras", "normal", "simple")
PREFERRED_UPSCALERS = ("Lanczos", "Resize Lanczos", "Nearest", "Resize Nearest")  # else the plugin's own choice

# Dynamic dropdowns: (label, tool, parameter).
DROPDOWNS = (
    ("model", "txt2img", "model"),
    ("sampler", "txt2img", "sampler"),
    ("scheduler", "txt2img", "scheduler"),
    ("LoRA", "txt2img", "lora"),
    ("hires upscaler", "txt2img", "hr_upscaler"),
    ("upscaler", "upscale", "upscaler"),
)


def plugin_text(result: Answer) -> str:
    return one_line(result.text) if result.texts else "(no text message)"


def summary(result: Answer) -> dict[str, Any]:
    if not isinstance(result.json, dict):
        raise CaseFailed(f"the tool returned no JSON summary; it said: {plugin_text(result)}")
    return result.json


def expect_images(result: Answer, count: int) -> list[tuple[int, int]]:
    if len(result.blobs) != count:
        raise CaseFailed(f"asked for {count} image(s), got {len(result.blobs)}; the plugin said: {plugin_text(result)}")
    return sizes(result)


def expect_no_warnings(result: Answer) -> None:
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


def options_of(result: Answer) -> list[dict[str, Any]]:
    if not result.messages or not isinstance(result.messages[0], dict):
        raise CaseFailed("a dropdown answered without options")
    return result.messages[0].get("options") or []


# ------------------------------------------------------------------------------------------------ cases

def case_credentials(check: Check) -> str:
    result = answered(check.runner.validate(check.timeout_s))
    if result.messages != [{"result": True}]:
        raise CaseFailed(f"unexpected answer to the credentials check: {result.messages!r}")
    return "accepted"


def case_list_tool(check: Check) -> str:
    result = check.invoke("list_resources", {})
    resources = summary(result)
    models = resources.get("models")
    if not isinstance(models, list) or not models or not all(isinstance(m, dict) and m.get("title") for m in models):
        raise CaseFailed(f"the list tool's JSON has no models: {json.dumps(resources)[:200]}")
    if not resources.get("server"):
        raise CaseFailed(f"the list tool's JSON does not name the server: {json.dumps(resources)[:200]}")
    check.resources = resources
    check.original_model = next((m for m in models if same_model(m, resources.get("active_model"))), None)
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
    if seed != FIXED_SEED or result.variables.get("seed", FIXED_SEED) != FIXED_SEED:
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


def expect_used(result: Answer, field_name: str, asked: str) -> None:
    """One image, no fallback warning, and the answer names the sampler/scheduler that was asked for."""
    expect_images(result, 1)
    expect_no_warnings(result)
    used = summary(result).get(field_name)
    if key(used) != key(asked):
        raise CaseFailed(f"asked for {field_name} '{asked}', the answer says '{used}'")


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
    # No upscaler named: the plugin's default for this server is what a user gets (SD.Next 2026 cannot use a latent one).
    result = check.generate("txt2img", {"width": SIZE, "height": SIZE, "enable_hr": True, "hr_scale": 2,
                                        "hr_second_pass_steps": STEPS,
                                        "denoising_strength": 0.5})
    [size] = expect_images(result, 1)
    if size != (2 * SIZE, 2 * SIZE):
        raise CaseFailed(f"hires fix x2 of {SIZE}x{SIZE} should give {2 * SIZE}x{2 * SIZE}, "
                         f"the image is {size[0]}x{size[1]}")
    return plugin_text(result)


def case_model_switch(check: Check) -> str:
    models = check.listed("models")
    if len(models) < 2:
        names = ", ".join(m["title"] for m in models)
        raise CaseUnsupported(f"the server lists only {len(models)} model ({names}), so there is nothing to switch to")
    original = check.original_model
    other = next(m for m in models if m is not original)
    check.switched = True
    try:
        result = check.generate("txt2img", {"width": SIZE, "height": SIZE, "model_name": other["title"]})
        expect_images(result, 1)
        used = summary(result).get("model")
        if not same_model(other, used):
            raise CaseFailed(f"asked for model '{other['title']}', the answer says '{used}'")
        message = plugin_text(result)
    finally:
        if original is not None:  # put the server back the way it was, whatever happened above
            back = check.generate("txt2img", {"width": SIZE, "height": SIZE, "model_name": original["title"]})
            expect_images(back, 1)
            if not same_model(original, summary(back).get("model")):
                raise CaseFailed(f"switched to '{other['title']}', but switching back to '{original['title']}' "
                                 f"gave '{summary(back).get('model')}'")
            check.restored = original["title"]
    return message + (f" (then back to {original['title']})" if original is not None else "")


def case_img2img(check: Check) -> str:
    width, height = 2 * SIZE, SIZE  # not square, and multiples of 64 for stable-diffusion.cpp
    image = check.runner.image(input_picture(width, height), "input.png")
    result = check.generate("img2img", {"image": image, "denoising_strength": 0.5})
    [(out_w, out_h)] = expect_images(result, 1)
    if abs(out_w / out_h - width / height) > 0.05:
        raise CaseFailed(f"the input is {width}x{height}, the image came back {out_w}x{out_h} (another aspect)")
    return plugin_text(result)


def case_inpaint(check: Check) -> str:
    image = check.runner.image(input_picture(SIZE, SIZE), "input.png")
    mask = check.runner.image(centre_mask(SIZE, SIZE), "mask.png")
    result = check.generate("img2img", {"image": image, "mask": mask, "denoising_strength": 0.75})
    [size] = expect_images(result, 1)
    if size != (SIZE, SIZE):
        raise CaseFailed(f"the input is {SIZE}x{SIZE}, the image came back {size[0]}x{size[1]}")
    return plugin_text(result)


def case_upscale(check: Check) -> str:
    upscaler = next((u for u in PREFERRED_UPSCALERS if u in check.listed("upscalers")), "")
    image = check.runner.image(input_picture(SIZE, SIZE), "small.png")
    result = check.invoke("upscale", {"image": image, "upscaler_name": upscaler, "scale": 2})
    [size] = expect_images(result, 1)
    if size != (2 * SIZE, 2 * SIZE):
        raise CaseFailed(f"asked to upscale {SIZE}x{SIZE} by 2, the image is {size[0]}x{size[1]}"
                         + (f" (upscaler {upscaler})" if upscaler else ""))
    return plugin_text(result)


def case_describe(check: Check) -> str:
    image = check.runner.image(input_picture(SIZE, SIZE), "describe.png")
    result = check.invoke("interrogate", {"image": image})
    prompt = (summary(result).get("prompt") or "").strip()
    if not prompt:
        raise CaseFailed(f"the description is empty; the plugin said: {plugin_text(result)}")
    return plugin_text(result)


def case_generation_info(check: Check) -> str:
    """Read generation info on an image this run just made: its seed must come back."""
    made = check.generate("txt2img", {"width": SIZE, "height": SIZE, "seed": FIXED_SEED})
    [blob] = made.blobs[:1] or [b""]
    if not blob:
        raise CaseFailed("txt2img returned no image to read")
    result = check.invoke("png_info", {"image": check.runner.image(blob, "made.png")})
    info = summary(result)
    if info.get("seed") not in (FIXED_SEED, str(FIXED_SEED)):
        raise CaseFailed(f"made with seed {FIXED_SEED}, the image's generation info says seed {info.get('seed')!r}")
    return plugin_text(result)


def extension_models(check: Check, kind: str, extension: str) -> list[str]:
    """The list tool's models of an extension; unsupported where the list is null (not installed or not offered)."""
    models = check.listed(kind)
    if check.resources is not None and check.resources.get(kind) is None:
        raise CaseUnsupported(f"{extension} is not installed or not offered by this server")
    return models


def case_controlnet(check: Check) -> str:
    """One unit with a ready-made control image (preprocessor None: nothing to download), checked for its map."""
    models = [m for m in extension_models(check, "controlnet_models", "ControlNet") if key(m) != "none"]
    if not models:
        raise CaseUnsupported("the server lists no ControlNet models")
    image = check.runner.image(input_picture(SIZE, SIZE), "control.png")
    result = check.generate("txt2img", {"width": SIZE, "height": SIZE, "controlnet_image": image,
                                        "controlnet_model": models[0], "controlnet_module": "none"})
    expect_images(result, 1)
    expect_no_warnings(result)  # a unit that returned no detected map is a warning: it did not run
    return plugin_text(result)


def case_adetailer(check: Check) -> str:
    models = extension_models(check, "adetailer_models", "ADetailer")
    if not models:
        raise CaseUnsupported("the server lists no ADetailer models")
    model = next((m for m in models if "face" in m.lower()), models[0])
    result = check.generate("txt2img", {"width": SIZE, "height": SIZE, "adetailer": True, "adetailer_model": model})
    expect_images(result, 1)  # nothing in the answer shows whether it found something to fix (a1111/adetailer/)
    return plugin_text(result)


def case_dropdowns(check: Check) -> str:
    counts, empty, errors = [], [], []
    for label, tool, parameter in DROPDOWNS:
        result = check.options(tool, parameter)
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


@dataclass(frozen=True)
class Case:
    name: str
    run: Callable[[Check], str]
    weight: float  # about how many tiny generations it takes: the time budget's estimate is weight x generation_s
    generates: bool = True


CASES: list[Case] = [
    Case("credentials", case_credentials, 0.2, generates=False),
    Case("list tool", case_list_tool, 0.2, generates=False),  # early: the cases below pick names from its lists
    Case("txt2img", case_txt2img, 1),
    Case("batch of 2", case_batch, 2),
    Case("fixed seed", case_fixed_seed, 1),
    Case("sampler", case_sampler, 1),
    Case("scheduler", case_scheduler, 1),
    Case("LoRA", case_lora, 1),
    Case("hires fix", case_hires, 3),
    Case("model switch", case_model_switch, 4),  # two generations, each after loading a model
    Case("img2img", case_img2img, 1),
    Case("inpainting", case_inpaint, 1),
    Case("upscale", case_upscale, 1),
    Case("describe image", case_describe, 1),
    Case("read generation info", case_generation_info, 1),
    Case("ControlNet", case_controlnet, 1),
    Case("ADetailer", case_adetailer, 1),
    Case("dropdowns", case_dropdowns, 0.5, generates=False),
]
QUICK_SKIPS = ("model switch",)  # quick mode loads no other model


# ------------------------------------------------------------------------------------------------ driving

def run_case(case: Case, check: Check) -> Row:
    """Run one case and classify it; never raises."""
    started = time.monotonic()
    timeout_s = check.timeout_s
    try:
        message, result = case.run(check), WORKS
    except PluginError as exc:
        message, result = str(exc), (UNSUPPORTED if is_unsupported(exc.error) else FAILS)
    except CaseUnsupported as exc:
        message, result = str(exc), UNSUPPORTED
    except CaseFailed as exc:
        message, result = str(exc), FAILS
    except TimeoutError:
        message, result = f"no answer from the plugin within its {timeout_s:g} s deadline", FAILS
    except Exception as exc:  # the plugin died or broke the protocol: report it, go on with the next case
        message, result = f"{type(exc).__name__}: {one_line(str(exc))}", FAILS
    seconds = time.monotonic() - started
    if case.generates and result == WORKS:
        check.generation_s = max(check.generation_s, seconds / case.weight)
    return Row(case.name, result, round(seconds, 2), one_line(message))


def skipped(case: Case, check: Check) -> Row | None:
    """A row for a case left out (quick mode, or not enough time left), else None."""
    if check.quick and case.name in QUICK_SKIPS:
        return Row(case.name, SKIPPED_QUICK, 0.0, "quick mode loads no other model")
    left = check.remaining_s()
    need = case.weight * check.generation_s
    if left is not None and left < need:
        return Row(case.name, SKIPPED_TIME, 0.0,
                   f"would need about {need:.0f} s, {max(left, 0):.0f} s of the {check.budget_s:g} s budget left")
    return None


def run_checks(check: Check, progress: Callable[[int, Case, Row | None], None] | None = None) -> list[Row]:
    """Every case in order (``progress`` is told before and after each); stops after refused credentials."""
    rows = []
    for number, case in enumerate(CASES, 1):
        row = skipped(case, check)
        if row is None:
            if progress:
                progress(number, case, None)
            row = run_case(case, check)
        if progress:
            progress(number, case, row)
        rows.append(row)
        if case.name == "credentials" and row.result != WORKS:
            break  # nothing else can work without a server the plugin accepts
    return rows


# ------------------------------------------------------------------------------------------------ output

def table(rows: list[Row]) -> str:
    """The rows as a plain-text table (a terminal)."""
    header = ("case", "result", "seconds", "message")
    cells = [header] + [(r.case, r.result, f"{r.seconds:.2f}", r.message) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(3)]
    lines = []
    for i, (case, result, seconds, message) in enumerate(cells):
        lines.append(f"{case:<{widths[0]}}  {result:<{widths[1]}}  {seconds:>{widths[2]}}  {message}")
        if i == 0:
            lines.append(f"{'-' * widths[0]}  {'-' * widths[1]}  {'-' * widths[2]}  {'-' * 7}")
    return "\n".join(lines)


def markdown_table(rows: list[Row]) -> str:
    """The rows as a Markdown table (Dify's chat and test panel render it)."""

    def cell(text: str) -> str:
        return str(text).replace("|", "\\|")

    lines = ["| case | result | seconds | message |", "| --- | --- | ---: | --- |"]
    lines += [f"| {cell(r.case)} | {cell(r.result)} | {r.seconds:.2f} | {cell(r.message)} |" for r in rows]
    return "\n".join(lines)


def server_name(check: Check) -> str:
    return str((check.resources or {}).get("server") or "this server")


def summary_line(rows: list[Row], check: Check) -> str:
    """'12 work, 2 unsupported, 0 fail on Forge', plus what was skipped and the restored model."""
    count = {result: sum(r.result == result for r in rows) for result in (WORKS, UNSUPPORTED, FAILS)}
    line = f"{count[WORKS]} work, {count[UNSUPPORTED]} unsupported, {count[FAILS]} fail on {server_name(check)}"
    skips = sum(r.result.startswith("skipped") for r in rows)
    if skips:
        line += f", {skips} skipped"
    if check.restored:
        line += f"; restored the active model '{check.restored}'"
    elif check.switched and check.original_model is not None:
        line += f"; could not restore the active model '{check.original_model['title']}', check it on the server"
    return line + "."


def report(rows: list[Row], check: Check) -> dict[str, Any]:
    """The rows and their summary as JSON."""
    return {
        "server": server_name(check),
        "rows": [{"case": r.case, "result": r.result, "seconds": r.seconds, "message": r.message} for r in rows],
        "works": sum(r.result == WORKS for r in rows),
        "unsupported": sum(r.result == UNSUPPORTED for r in rows),
        "fails": [r.case for r in rows if r.result == FAILS],
        "skipped": [r.case for r in rows if r.result.startswith("skipped")],
        "restored_model": check.restored,
        "summary": summary_line(rows, check),
    }
