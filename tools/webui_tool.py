"""What every tool of this plugin shares: settings, dropdown options and output messages.

A mixin, not a ``Tool`` subclass: the SDK loads each tool module by looking for
exactly one ``Tool`` subclass in it.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Generator, Iterator
from typing import Any

from dify_plugin.entities import I18nObject, ParameterOption
from dify_plugin.entities.tool import ToolInvokeMessage

from sdwebui.catalog import Catalog
from sdwebui.config import ProviderSettings
from sdwebui.deadline import Deadline
from sdwebui.errors import InvalidInput
from sdwebui.extensions import ExtensionSettings, read_extension_settings
from sdwebui.generation import NO_SCHEDULER, GenerationResult
from sdwebui.errors import WebUIError
from sdwebui.inputs import FileRef, InputImage, read_input_image
from sdwebui.output import fit_output
from sdwebui.progress import Progress
from sdwebui.settings import NOTHING_LISTED, SamplingSettings, read_oversize_format
from tools.dify_errors import reported_as_dify_errors

OPTIONS_DEADLINE_S = 20.0
PROGRESS_LABEL = "Stable Diffusion WebUI"
LogStatus = ToolInvokeMessage.LogMessage.LogStatus


def _option(value: str, label: str | None = None) -> ParameterOption:
    return ParameterOption(value=value, label=I18nObject(en_US=label or value))


def _model_options(catalog: Catalog, deadline: Deadline) -> list[ParameterOption]:
    return [_option(m.title, m.model_name or m.title) for m in catalog.models(deadline)]


def _sampler_options(catalog: Catalog, deadline: Deadline) -> list[ParameterOption]:
    return [_option(s.name) for s in catalog.samplers(deadline)]


def _scheduler_options(catalog: Catalog, deadline: Deadline) -> list[ParameterOption]:
    """The server's schedulers; never an empty list, which would look like a broken dropdown."""
    server = catalog.server(deadline)
    schedulers = catalog.schedulers(deadline, server)
    if schedulers is None:
        return [_option(NO_SCHEDULER, f"None: the {server.name} has no separate scheduler")]
    if server.scheduler_kind == "sigma":
        return [_option(s.name, f"{s.label} sigmas (the {server.name} has no separate scheduler; this sets its sigma algorithm)")
                for s in schedulers]
    return [_option(s.name, s.label or s.name) for s in schedulers]


def _lora_options(catalog: Catalog, deadline: Deadline) -> list[ParameterOption]:
    return [_option(lora.name) for lora in catalog.loras(deadline)]


def _upscaler_options(catalog: Catalog, deadline: Deadline) -> list[ParameterOption]:
    return [_option(u.name) for u in catalog.upscalers(deadline) if u.name != "None"]


def _hires_upscaler_options(catalog: Catalog, deadline: Deadline) -> list[ParameterOption]:
    latent = [_option(m.name) for m in catalog.latent_upscale_modes(deadline)]
    return latent + _upscaler_options(catalog, deadline)


def _names(names: list[str] | None) -> list[ParameterOption]:
    return [_option(n) for n in names or [] if n.lower() != "none"]


def _controlnet_model_options(catalog: Catalog, deadline: Deadline) -> list[ParameterOption]:
    return _names(catalog.controlnet_models(deadline))


def _controlnet_module_options(catalog: Catalog, deadline: Deadline) -> list[ParameterOption]:
    modules = catalog.controlnet_modules(deadline) or []
    none = [_option(m) for m in modules if m.lower() == "none"]  # first: a ready-made map needs no preprocessor
    return none + _names(modules)


def _adetailer_model_options(catalog: Catalog, deadline: Deadline) -> list[ParameterOption]:
    return _names(catalog.adetailer_models(deadline))


def _vae_options(catalog: Catalog, deadline: Deadline) -> list[ParameterOption]:
    return [_option(v.model_name) for v in catalog.vaes(deadline, catalog.server(deadline)) or []]


def _style_options(catalog: Catalog, deadline: Deadline) -> list[ParameterOption]:
    return [_option(s.name) for s in catalog.styles(deadline) or []]


# What each dropdown lists, for the option shown when the server lists none.
LISTED = {"model": "checkpoints", "refiner": "checkpoints", "sampler": "samplers", "lora": "LoRAs (they go in models/Lora)",
          "upscaler": "upscalers", "hr_upscaler": "upscalers", "vae": "VAEs", "style": "styles",
          "controlnet_module": "ControlNet preprocessors (is ControlNet installed?)",
          "controlnet2_module": "ControlNet preprocessors (is ControlNet installed?)",
          "controlnet_model": "ControlNet models (is ControlNet installed? models go in models/ControlNet)",
          "controlnet2_model": "ControlNet models (is ControlNet installed? models go in models/ControlNet)",
          "adetailer_model": "ADetailer models (is ADetailer installed?)"}

# Dynamic-select parameter name -> where its options come from.
OPTION_SOURCES: dict[str, Callable[[Catalog, Deadline], list[ParameterOption]]] = {
    "model": _model_options,
    "sampler": _sampler_options,
    "scheduler": _scheduler_options,
    "lora": _lora_options,
    "upscaler": _upscaler_options,
    "hr_upscaler": _hires_upscaler_options,
    "refiner": _model_options,
    "vae": _vae_options,
    "style": _style_options,
    "controlnet_module": _controlnet_module_options,
    "controlnet_model": _controlnet_model_options,
    "controlnet2_module": _controlnet_module_options,
    "controlnet2_model": _controlnet_model_options,
    "adetailer_model": _adetailer_model_options,
}


class WebUIToolMixin:
    runtime: Any  # provided by dify_plugin.Tool

    def provider_settings(self) -> ProviderSettings:
        return ProviderSettings.from_credentials(self.runtime.credentials or {})

    def _fetch_parameter_options(self, parameter: str) -> list[ParameterOption]:
        source = OPTION_SOURCES.get(parameter)
        if source is None:
            return []
        with reported_as_dify_errors():
            settings = self.provider_settings()
            deadline = Deadline(min(OPTIONS_DEADLINE_S, settings.timeout_s))
            options = source(Catalog(settings.client()), deadline)
        # Never an empty dropdown: it looks broken. One option says why, and choosing it chooses nothing.
        return options or [_option(NOTHING_LISTED, f"None: this WebUI lists no {LISTED.get(parameter, 'choices')}")]

    def input_image(self, params: dict[str, Any], name: str, *, what: str, required: bool = False) -> InputImage | None:
        """Fetch, check and encode the image file parameter ``name``."""
        ref = file_ref(params.get(name))
        if ref is None:
            if required:
                raise InvalidInput(f"No {what} was given; pass an image file (an upload or a file from an earlier node).")
            return None
        return read_input_image(ref, what=what)

    def extension_settings(self, params: dict[str, Any], *, mode: str) -> ExtensionSettings:
        """ControlNet, ADetailer, refiner, VAE, styles and extra parameters, checked; control images fetched last."""

        def read_image(name: str, what: str) -> str | None:
            image = self.input_image(params, name, what=what)
            return image.base64 if image else None

        return read_extension_settings(params, mode=mode, read_image=read_image)

    def generate_with_progress(
        self, settings: ProviderSettings, sampling: SamplingSettings, work: Callable[[Callable[[Progress], None] | None], GenerationResult]
    ) -> Generator[ToolInvokeMessage, None, GenerationResult]:
        """Run ``work`` (a generation taking an ``on_progress`` callback) and return its result; meanwhile yield
        one Dify log entry for it: started, one update per changed :class:`Progress`, then success or error
        (the error is raised again after its log message). Progress off in the provider settings: no log at all.

        The generation runs in a thread (a greenlet under gevent's monkey-patching) and hands over each value
        through a queue, so the log messages reach Dify while the job runs. Every message of the entry carries
        the same id; Dify keeps the latest by id."""
        if not settings.progress_messages:
            return work(None)
        events: queue.Queue[tuple[str, Any]] = queue.Queue()

        def run() -> None:
            try:
                events.put(("done", work(lambda value: events.put(("progress", value)))))
            except BaseException as exc:  # noqa: BLE001 - handed to the generator, which raises it again
                events.put(("error", exc))

        started = time.monotonic()
        log = self.create_log_message(PROGRESS_LABEL, {"stage": "started", "line": job_line(sampling)}, status=LogStatus.START)
        yield log
        threading.Thread(target=run, name="sdwebui-generation", daemon=True).start()
        while True:
            kind, value = events.get()
            if kind == "progress":
                yield self._log_update(log, value)
            elif kind == "done":
                yield self.finish_log_message(log, status=LogStatus.SUCCESS, data=result_data(value, time.monotonic() - started))
                return value
            else:
                error = str(value) if isinstance(value, WebUIError) else "The generation failed."
                yield self.finish_log_message(log, status=LogStatus.ERROR, error=error,
                                              data={"stage": "error", "line": error})
                raise value

    def _log_update(self, log: ToolInvokeMessage, value: Progress) -> ToolInvokeMessage:
        data = {"stage": value.stage, "line": value.line(), "step": value.step, "steps": value.steps,
                "percent": value.percent, "eta_s": value.eta_s, "ahead": value.ahead}
        return self.response_type(type=ToolInvokeMessage.MessageType.LOG, message=ToolInvokeMessage.LogMessage(
            id=log.message.id, label=log.message.label, parent_id=log.message.parent_id, status=LogStatus.START,
            data={key: item for key, item in data.items() if item is not None}))

    def fit_output(self, images: list, params: dict[str, Any]) -> tuple[list, str | None]:
        """Keep the images under the provider's output limit (re-encoding them if the user allowed it)."""
        with reported_as_dify_errors():
            limit = self.provider_settings().max_output_mb
            return fit_output(images, limit_mb=limit, fallback_format=read_oversize_format(params), run=run_in_thread)

    def generation_messages(self, result: GenerationResult, params: dict[str, Any]) -> Iterator[ToolInvokeMessage]:
        """Images as blobs (they become ``files`` in workflows), then the info as JSON, variables and one text line."""
        count = len(result.images)
        images, note = self.fit_output([*result.images, *result.maps], params)
        result.images, result.maps = images[:count], images[count:]
        if note:
            result.warnings.append(note)
        # ControlNet maps (only when asked for) come after the generated images; the "maps" output names them.
        for image in [*result.images, *result.maps]:
            yield self.create_blob_message(image.data, meta={"mime_type": image.mime_type, "filename": image.filename})
        summary = result.summary()
        yield self.create_json_message(summary)
        for name in ("seed", "seeds", "model", "sampler", "scheduler", "width", "height", "warnings", "infotexts", "maps"):
            yield self.create_variable_message(name, summary[name])
        yield self.create_text_message(describe(result))


def job_line(sampling: SamplingSettings) -> str:
    """"Generating 1 image, 512x512, 20 steps"."""
    count = max(1, int(sampling.batch_size or 1))
    return f"Generating {count} image{'s' if count != 1 else ''}, {sampling.width}x{sampling.height}, {sampling.steps} steps"


def result_data(result: GenerationResult, seconds: float) -> dict[str, Any]:
    sizes = list(dict.fromkeys(f"{image.width}x{image.height}" for image in result.images))
    return {"images": len(result.images), "size": ", ".join(sizes), "seconds": round(seconds, 1)}


def run_in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """Run CPU-heavy work (image re-encoding) in a real thread, so gevent's loop and the heartbeat keep going."""
    from gevent import get_hub
    from gevent.monkey import is_module_patched

    if not is_module_patched("threading"):
        return fn(*args)
    return get_hub().threadpool.apply(fn, args)


def file_ref(value: Any) -> FileRef | None:
    """A Dify file parameter (the SDK's ``File``, its dict form, or a one-item list) as a :class:`FileRef`."""
    if isinstance(value, list):
        if len(value) > 1:
            raise InvalidInput("Give one image file here, not a list of files.")
        value = value[0] if value else None
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        get = value.get
        blob = value.get("data") if isinstance(value.get("data"), bytes) else None  # in-process callers (check_server)
    elif hasattr(value, "url"):
        get = lambda key: getattr(value, key, None)  # noqa: E731
        blob = getattr(value, "_blob", None)
    else:
        raise InvalidInput("The image parameter must be a file (an upload or a file variable), not text.")
    return FileRef(url=str(get("url") or ""), filename=get("filename"), mime_type=get("mime_type"), size=get("size"), data=blob)


def describe(result: GenerationResult) -> str:
    """One line for an Agent chat, plus one line per warning."""
    count = len(result.images)
    seeds = ", ".join(str(s) for s in result.seeds) or "unknown"
    size = ", ".join(dict.fromkeys(f"{image.width}x{image.height}" for image in result.images))  # the images' own sizes
    model = result.model or "the active model"
    parts = [f"Generated {count} image{'s' if count != 1 else ''} with {model}", f"seed{'s' if len(result.seeds) > 1 else ''} {seeds}"]
    if size:
        parts.append(size)
    lines = [", ".join(parts) + "."]
    lines += [f"Warning: {w}" for w in result.warnings]
    return "\n".join(lines)
