"""One generation, start to finish: model, names, payload, images, and what the server really did.

The flow for txt2img and img2img:

1. ``GET /options`` (and, once per base URL, detect the server family);
2. resolve the model name against ``/sd-models``; ``POST /options`` only when the
   active checkpoint is a different one;
3. check the sampler, scheduler, LoRAs and hires upscaler against the server's lists;
4. ``POST /txt2img`` or ``/img2img`` with the model also in ``override_settings``
   (restore off), so every request carries its own model, even behind a load balancer;
5. decode the images (``len(all_seeds)`` of them from ``index_of_first_image``) and
   compare ``info`` with what was asked: a different model is an error, a different
   sampler, scheduler or missing LoRA is a warning.

Each server family gets only fields it honours (``ServerProfile`` says which): real servers
silently ignore or replace what they do not know, so anything they cannot do is refused
before sending, and sizes they would change are adjusted first, with a warning.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from sdwebui import checkpoints, extensions, jobs, names, sizes
from sdwebui.catalog import Catalog
from sdwebui.client import WebUIClient
from sdwebui.deadline import Deadline
from sdwebui.errors import InvalidInput, MalformedResponse, MissingRoute, ServerError, Unsupported, quoted
from sdwebui.images import decode_image_base64
from sdwebui.inputs import output_size_for
from sdwebui.models import GenerationInfo, GenerationResponse, Img2ImgRequest, LoraRef, Options, SDModel, Txt2ImgRequest
from sdwebui.servers import ServerProfile, explained
from sdwebui.settings import Img2ImgControls, SamplingSettings


# The scheduler dropdown's only option on a server without schedulers: choosing it asks for none.
NO_SCHEDULER = "automatic"


@dataclass(frozen=True)
class GeneratedImage:
    data: bytes
    mime_type: str
    extension: str
    seed: int | None
    index: int
    width: int  # read from the image itself: info may say otherwise
    height: int

    @property
    def filename(self) -> str:
        return f"sd-{self.seed if self.seed is not None else self.index}.{self.extension}"


@dataclass
class GenerationResult:
    images: list[GeneratedImage]
    info: GenerationInfo
    server: ServerProfile
    model: str | None  # the checkpoint info names, as the server's title where it can be told
    sampler: str | None
    scheduler: str | None
    loras: list[names.LoraUse] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    model_switched: bool = False
    elapsed_s: float = 0.0
    maps: list[extensions.DetectedMap] = field(default_factory=list)  # ControlNet maps, only when asked for

    @property
    def seeds(self) -> list[int]:
        return [img.seed for img in self.images if img.seed is not None]

    def summary(self) -> dict[str, Any]:
        """What the JSON message and the workflow variables carry (never image bytes)."""
        info = self.info
        return {
            "seeds": self.seeds,
            "seed": self.seeds[0] if self.seeds else None,
            "model": self.model,
            "model_hash": info.sd_model_hash,
            "sampler": info.sampler_name or self.sampler,
            "scheduler": _schedule_type(info) or self.scheduler,
            "steps": info.steps,
            "cfg_scale": info.cfg_scale,
            "width": self.images[0].width if self.images else None,
            "height": self.images[0].height if self.images else None,
            "loras": [{"name": u.name, "weight": u.weight} for u in self.loras],
            "server": self.server.flavor,
            "infotexts": info.infotexts,
            "warnings": self.warnings,
            "images": [{"filename": i.filename, "mime_type": i.mime_type, "size_bytes": len(i.data), "seed": i.seed,
                        "width": i.width, "height": i.height} for i in self.images],
            "elapsed_s": round(self.elapsed_s, 3),
            "maps": [m.filename for m in self.maps],
        }


@dataclass(frozen=True)
class Img2ImgInputs:
    """What img2img adds to the shared sampling settings (images already in base64)."""

    init_image: str
    controls: Img2ImgControls
    input_size: tuple[int, int]  # the output follows it unless a size was given
    mask: str | None = None


class Generation:
    def __init__(self, client: WebUIClient, *, default_model: str = "", catalog: Catalog | None = None) -> None:
        self.client = client
        self.default_model = (default_model or "").strip()
        self.catalog = catalog or Catalog(client)

    def txt2img(self, settings: SamplingSettings, deadline: Deadline, extras: extensions.ExtensionSettings | None = None,
                on_progress: jobs.OnProgress | None = None) -> GenerationResult:
        return self._run(settings, deadline, None, extras, on_progress)

    def img2img(
        self, settings: SamplingSettings, inputs: Img2ImgInputs, deadline: Deadline, extras: extensions.ExtensionSettings | None = None,
        on_progress: jobs.OnProgress | None = None,
    ) -> GenerationResult:
        return self._run(settings, deadline, inputs, extras, on_progress)

    # ------------------------------------------------------------------ steps

    def _run(
        self, settings: SamplingSettings, deadline: Deadline, img2img: Img2ImgInputs | None, extras: extensions.ExtensionSettings | None,
        on_progress: jobs.OnProgress | None = None,
    ) -> GenerationResult:
        started = time.monotonic()
        wanted = settings.model or self.default_model
        self._route_by_model(wanted, deadline)
        options = self.client.options(deadline)
        server = self.catalog.server(deadline, options)
        warnings: list[str] = []
        settings = self._sized_for(server, settings, img2img, warnings)
        check_supported(server, settings, img2img)
        # Extensions first: a missing one or an unknown name fails before any model switch or generation.
        additions = extensions.prepare(self.catalog, server, extras, deadline) if extras else extensions.RequestAdditions()
        model, switched = self.ensure_model(wanted, options, server, deadline)
        if model is not None:
            self.client.route_by_model(model.title)
        else:
            self._route_by_model(options.sd_model_checkpoint or "", deadline)
        sampler, scheduler = self._sampler_and_scheduler(settings, server, deadline)
        loras = names.resolve_loras(settings.loras, self.catalog.loras(deadline)) if settings.loras else []
        hr_upscaler = self._hires_upscaler(settings, server, deadline)

        request = additions.apply(self._request(settings, server, model, sampler, scheduler, loras, hr_upscaler, img2img))
        with explained(server):
            if img2img is None:
                response = jobs.txt2img(self.client, request, deadline, server=server, on_progress=on_progress)
            else:
                response = jobs.img2img(self.client, request, deadline, server=server, on_progress=on_progress)

        warnings += extensions.controlnet_warnings(additions.controlnet_units, extensions.count_maps(response))
        maps = extensions.decode_maps(response) if additions.return_maps else []
        images = decode_images(response, empty_answer=server.empty_answer)
        ran = self._model_that_ran(model, response.info, server, deadline)
        warnings += size_warnings(images, settings, server, hires=img2img is None)
        warnings += fallback_warnings(response.info, server, sampler, scheduler, loras)
        return GenerationResult(
            images=images,
            info=response.info,
            server=server,
            model=ran,
            sampler=sampler,
            scheduler=scheduler,
            loras=loras,
            warnings=warnings,
            model_switched=switched,
            elapsed_s=time.monotonic() - started,
            maps=maps,
        )

    def _route_by_model(self, name: str, deadline: Deadline) -> None:
        """Send ``X-SD-Model`` on the call's next requests, so a hash balancer keeps them on the WebUI that owns the
        checkpoint (:mod:`sdwebui.routing`). Resolved against the cached ``/sd-models``; with no model asked, the
        active one the WebUI reported. An unknown name sends none (``ensure_model`` reports it)."""
        model = checkpoints.find_model(name, self.catalog.models(deadline)) if name else None
        self.client.route_by_model(model.title if model else None)

    @staticmethod
    def _sized_for(server: ServerProfile, settings: SamplingSettings, img2img: Img2ImgInputs | None,
                   warnings: list[str]) -> SamplingSettings:
        """The size to ask for: img2img follows its input; a size the server would change is adjusted now."""
        if img2img is not None and not settings.size_given:
            # The WebUI does not take the size from the init image; it would stretch it to 512x512.
            settings = settings.with_size(*output_size_for(*img2img.input_size))
        wanted = (settings.width, settings.height)
        fitted = sizes.fit_to_multiple(*wanted, server.size_multiple)
        if fitted != wanted:
            warnings.append(
                f"The {server.name} only makes sizes in multiples of {server.size_multiple}, so {fitted[0]}x{fitted[1]} "
                f"was asked for instead of {wanted[0]}x{wanted[1]}."
            )
            settings = settings.with_size(*fitted)
        return settings

    def ensure_model(self, name: str, options: Options, server: ServerProfile, deadline: Deadline) -> tuple[SDModel | None, bool]:
        """Resolve ``name`` and make it the active checkpoint if it is not already. Returns ``(model, switched)``."""
        if not name:
            return None, False
        model = checkpoints.find_model(name, self.catalog.models(deadline))
        if model is None:  # maybe added since the list was cached
            available = self.catalog.models(deadline, refresh=True)
            model = checkpoints.find_model(name, available)
            if model is None and not server.can_switch_models:
                raise Unsupported(
                    f"The {server.name} at {self.client.base_url} runs the one model it was started with "
                    f"('{options.sd_model_checkpoint}') and cannot switch to {quoted(name)}; restart it with that model, "
                    "or leave the model empty."
                )
            model = model or checkpoints.resolve_model(name, available)
        if not server.can_switch_models or is_loaded(options, model, server):
            return model, False
        # No GET /options to confirm: behind a load balancer it may reach another WebUI. The request
        # carries the model in override_settings too, and info is checked afterwards.
        self.client.set_options({"sd_model_checkpoint": model.title}, deadline)
        if not server.reloads_on_options:
            try:
                self.client.reload_checkpoint(deadline)
            except MissingRoute:  # an older SD.Next: its POST /options loads; the info check tells if it did
                pass
        return model, True

    def _sampler_and_scheduler(self, settings: SamplingSettings, server: ServerProfile, deadline: Deadline) -> tuple[str | None, str | None]:
        sampler = scheduler = None
        if not (settings.sampler or settings.scheduler):
            return sampler, scheduler
        schedulers = self.catalog.schedulers(deadline, server)
        if settings.sampler:
            samplers = self.catalog.samplers(deadline)
            if server.sampler_aliases:
                samplers = names.with_aliases(samplers, server.sampler_aliases)
            sampler, scheduler = names.resolve_sampler(settings.sampler, samplers, schedulers)
        if settings.scheduler and not (schedulers is None and settings.scheduler.lower() == NO_SCHEDULER):
            if schedulers is None:
                raise Unsupported(
                    f"The {server.name} has no separate scheduler setting (no /schedulers); leave the scheduler empty."
                )
            scheduler = names.resolve_scheduler(settings.scheduler, schedulers)
        return sampler, scheduler

    def _hires_upscaler(self, settings: SamplingSettings, server: ServerProfile, deadline: Deadline) -> str | None:
        """The hires upscaler by the server's own name; by default "Latent", or the server's first latent mode
        (where latent upscalers do not enlarge the image, SD.Next 2026: "Resize Lanczos", or its first other one)."""
        if settings.hires is None:
            return None
        available = [m.name for m in self.catalog.latent_upscale_modes(deadline)]
        available += [u.name for u in self.catalog.upscalers(deadline) if u.name != "None"]
        if not server.hires_latent_upscales:
            chosen = names.resolve_upscaler(settings.hires.upscaler, available) if settings.hires.upscaler else ""
            if chosen.lower().startswith("latent"):
                raise Unsupported(
                    f"This {server.name} version does not enlarge the image with a latent hires upscaler ('{chosen}'); "
                    "choose Resize Lanczos or an ESRGAN upscaler for hires fix."
                )
            others = [name for name in available if not name.lower().startswith("latent")]
            default = "Resize Lanczos" if "Resize Lanczos" in others else (others or [""])[0]
            if not chosen and not default:
                raise Unsupported("The WebUI lists no upscalers, so hires fix cannot run; turn hires fix off.")
            return chosen or default
        if settings.hires.upscaler:
            return names.resolve_upscaler(settings.hires.upscaler, available)
        # SD.Next has no "Latent" (its latent modes are "Latent Nearest", ...) and would silently not upscale.
        latent = [name for name in available if name.lower().startswith("latent")]
        default = "Latent" if "Latent" in available else (latent or available or [""])[0]
        if not default:
            raise Unsupported("The WebUI lists no upscalers or latent modes, so hires fix cannot run; turn hires fix off.")
        return default

    def _request(
        self,
        settings: SamplingSettings,
        server: ServerProfile,
        model: SDModel | None,
        sampler: str | None,
        scheduler: str | None,
        loras: list[names.LoraUse],
        hr_upscaler: str | None,
        img2img: Img2ImgInputs | None,
    ) -> Txt2ImgRequest:
        prompt = settings.prompt
        lora_array = None
        if loras and server.lora_in_prompt:
            prompt = " ".join([prompt, *(u.tag for u in loras)]).strip()
        elif loras:
            lora_array = [LoraRef(path=u.path or u.name, multiplier=u.weight) for u in loras]
        overrides: dict[str, Any] = {}
        if model is not None and server.can_switch_models:
            overrides["sd_model_checkpoint"] = model.title
        if settings.clip_skip is not None and not server.clip_skip_as_field:
            overrides["CLIP_stop_at_last_layers"] = settings.clip_skip
        sigma = scheduler if scheduler and server.scheduler_kind == "sigma" and scheduler != "default" else None
        if sigma:
            overrides["schedulers_sigma"] = sigma
        overrides = overrides if server.takes_overrides else {}
        fields: dict[str, Any] = dict(
            prompt=prompt,
            negative_prompt=settings.negative_prompt,
            width=settings.width,
            height=settings.height,
            steps=settings.steps,
            cfg_scale=settings.cfg_scale,
            seed=settings.seed,
            batch_size=settings.batch_size,
            n_iter=1 if server.sends_n_iter else None,  # sd.cpp ignores it; batch_size is its only count
            sampler_name=sampler,
            scheduler=scheduler if server.scheduler_kind == "field" else None,
            clip_skip=settings.clip_skip if server.clip_skip_as_field else None,
            schedulers_sigma=sigma if server.sigma_field else None,
            lora=lora_array,
            override_settings=overrides or None,
            override_settings_restore_afterwards=False if overrides else None,
        )
        if not server.sends_image_flags:  # sd.cpp always sends and never saves; the fields are not read
            fields.update(send_images=None, save_images=None)
        if settings.hires is not None and img2img is None:
            hires = settings.hires
            fields.update(
                enable_hr=True,
                hr_scale=hires.scale,
                hr_upscaler=hr_upscaler,
                # Always sent with hires: without it A1111 fails with a TypeError.
                denoising_strength=hires.denoising_strength,
            )
            if hires.second_pass_steps or server.hires_steps_field == "hr_second_pass_steps":
                fields[server.hires_steps_field] = hires.second_pass_steps
            if server.hires_modules:  # Forge: TypeError 'NoneType' is not iterable without it
                fields["hr_additional_modules"] = ["Use same choices"]
            if server.hires_resize_mode:  # SD.Next 2026: mode 0 never upscales; hr_force runs the second pass
                fields.update(hr_resize_mode=1, hr_force=True)
        if img2img is None:
            return Txt2ImgRequest(**fields)
        controls = img2img.controls
        fields.update(init_images=[img2img.init_image], denoising_strength=controls.denoising_strength)
        if server.img2img_controls:
            fields["resize_mode"] = controls.resize_mode
        if img2img.mask is not None:
            fields.update(mask=img2img.mask, inpainting_mask_invert=int(controls.invert_mask))
            if server.img2img_controls:
                fields.update(
                    mask_blur=controls.mask_blur,
                    inpainting_fill=controls.inpainting_fill,
                    inpaint_full_res=controls.only_masked,
                    inpaint_full_res_padding=controls.padding,
                )
        return Img2ImgRequest(**fields)

    def _model_that_ran(self, model: SDModel | None, info: GenerationInfo, server: ServerProfile, deadline: Deadline) -> str | None:
        """The checkpoint ``info`` names, by its title; another model than the one asked for is an error.

        ``info`` is the authority, never ``GET /options``: SD.Next's options name the model last set
        even when another one is loaded, and its ``info`` carries only the loaded model's hash.
        A finished image is never thrown away on a guess: the call fails only when ``info`` positively names
        *another* checkpoint the server lists. A name or hash that matches nothing (after one refresh: Forge and
        SD.Next hash a model on its first load, and Forge names a subfolder's model by its bare file stem) is
        the model asked for.
        """
        named = info.sd_model_name or info.sd_model_hash
        if not named:
            return model.title if model else None
        matches = checkpoints.find_models(named, self.catalog.models(deadline))
        if not matches or (model is not None and not checkpoints.includes(matches, model)):
            matches = checkpoints.find_models(named, self.catalog.models(deadline, refresh=True))
        if model is None:
            return matches[0].title if len(matches) == 1 else named
        if not matches or checkpoints.includes(matches, model):
            return model.title
        if server.can_switch_models:
            raise ServerError(
                f"Asked for model '{model.title}' but the WebUI generated with '{matches[0].title}'; the switch silently "
                "failed (out of memory, or a damaged or missing file?). Check the WebUI console, then try again."
            )
        return model.title


def is_loaded(options: Options, model: SDModel, server: ServerProfile) -> bool:
    """Whether ``GET /options`` says ``model`` is the active checkpoint, in any of its forms.

    SD.Next (API mode) names the model last set even when another is loaded; its
    ``sd_checkpoint_hash`` is the sha256 of the one really loaded, so it is checked too.
    """
    if not checkpoints.is_active(options.sd_model_checkpoint, model):
        return False
    if server.reloads_on_options:
        return True
    loaded = (options.sd_checkpoint_hash or "").lower()
    return not loaded or not model.sha256 or model.sha256.lower().startswith(loaded)


def check_supported(server: ServerProfile, settings: SamplingSettings, img2img: Img2ImgInputs | None) -> None:
    """Refuse what this server would silently ignore, before anything is sent."""
    if server.max_steps is not None and settings.steps > server.max_steps:
        raise Unsupported(f"The {server.name} takes at most {server.max_steps} steps and would silently use fewer; lower steps.")
    if server.needs_prompt and not settings.prompt:
        raise InvalidInput(f"The {server.name} needs a prompt; describe the image to make.")
    if img2img is not None and not server.img2img_controls:
        ignored = img2img_controls_set(img2img.controls)
        if ignored:
            raise Unsupported(
                f"The {server.name} does not support {', '.join(ignored)} and would ignore them; leave them at their defaults."
            )


def img2img_controls_set(controls: Img2ImgControls) -> list[str]:
    """The img2img controls set to something other than their defaults (only mask and inversion are universal)."""
    default = Img2ImgControls()
    labels = {"resize_mode": "resize mode", "mask_blur": "mask blur", "inpainting_fill": "masked content",
              "only_masked": "inpaint area", "padding": "inpaint padding"}
    return [label for field_name, label in labels.items() if getattr(controls, field_name) != getattr(default, field_name)]


def decode_images(response: GenerationResponse, *, empty_answer: str = "check that it has a model loaded and look at its console for errors") -> list[GeneratedImage]:
    """The generated images only: ``len(all_seeds)`` of them from ``index_of_first_image``.

    Grids, masks and ControlNet maps that some servers add around them are skipped.
    """
    info = response.info
    start = max(0, info.index_of_first_image)
    count = len(info.all_seeds) or max(0, len(response.images) - start)
    # Take the base64 strings out of the response, and drop each one once decoded, to bound peak memory.
    encoded_images, response.images = response.images[start : start + count], []
    if not encoded_images:
        raise MalformedResponse(f"The WebUI answered without any image: {empty_answer}.")
    images = []
    for offset in range(len(encoded_images)):
        encoded, encoded_images[offset] = encoded_images[offset], None
        data, mime, ext = decode_image_base64(encoded)
        del encoded
        seed = info.all_seeds[offset] if offset < len(info.all_seeds) else info.seed
        width, height = sizes.image_size(data)
        images.append(GeneratedImage(data=data, mime_type=mime, extension=ext, seed=seed, index=offset, width=width, height=height))
        time.sleep(0)  # under gevent: let the heartbeat and other calls run between large images
    return images


_SCHEDULE = re.compile(r"Schedule type: ([^,\n]+)")
_LORA_HASHES = re.compile(r'Lora hashes: "([^"]*)"')


def _info_field(info: GenerationInfo, key: str, in_infotext: re.Pattern[str]) -> str:
    """A generation parameter from ``extra_generation_params``, else from the first infotext."""
    value = info.extra_generation_params.get(key)
    if value:
        return str(value)
    for text in info.infotexts[:1]:
        match = in_infotext.search(text)
        if match:
            return match.group(1).strip()
    return ""


def _schedule_type(info: GenerationInfo) -> str | None:
    return _info_field(info, "Schedule type", _SCHEDULE) or None


def _lora_hashes(info: GenerationInfo) -> str:
    return _info_field(info, "Lora hashes", _LORA_HASHES)


def size_warnings(images: list[GeneratedImage], settings: SamplingSettings, server: ServerProfile, *, hires: bool) -> list[str]:
    """A warning when the images are not the size asked for (the size reported is always theirs)."""
    scale = settings.hires.scale if hires and settings.hires else None
    asked = sizes.expected_size(settings.width, settings.height, scale)
    first_pass = (settings.width, settings.height) if scale else None
    got = sorted({(image.width, image.height) for image in images} - {asked})
    return [sizes.describe_difference(server.name, server.size_multiple, asked, size, first_pass) for size in got]


def fallback_warnings(
    info: GenerationInfo, server: ServerProfile, sampler: str | None, scheduler: str | None, loras: list[names.LoraUse]
) -> list[str]:
    """What the server silently did differently from what was asked (the WebUI replaces unknown names)."""
    warnings = []
    key = names.normalise
    if sampler and info.sampler_name and key(info.sampler_name) != key(sampler):
        warnings.append(f"The WebUI used sampler '{info.sampler_name}' instead of '{sampler}'.")
    ran_scheduler = _schedule_type(info)
    if scheduler and ran_scheduler and key(ran_scheduler) != key(scheduler):
        warnings.append(f"The WebUI used scheduler '{ran_scheduler}' instead of '{scheduler}'.")
    if loras and server.lora_evidence:
        hashes = key(_lora_hashes(info))
        for use in loras:
            if key(use.name) + ":" not in hashes:
                warnings.append(f"LoRA '{use.name}' does not appear in the generation info, so it was probably not applied.")
    return warnings
