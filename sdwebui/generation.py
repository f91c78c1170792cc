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
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from sdwebui import checkpoints, names
from sdwebui.catalog import Catalog
from sdwebui.client import WebUIClient
from sdwebui.deadline import Deadline
from sdwebui.errors import MalformedResponse, ServerError, Unsupported
from sdwebui.images import decode_image_base64
from sdwebui.models import GenerationInfo, GenerationResponse, Img2ImgRequest, LoraRef, Options, SDModel, Txt2ImgRequest
from sdwebui.server import ServerInfo
from sdwebui.settings import Img2ImgControls, SamplingSettings


@dataclass(frozen=True)
class GeneratedImage:
    data: bytes
    mime_type: str
    extension: str
    seed: int | None
    index: int

    @property
    def filename(self) -> str:
        return f"sd-{self.seed if self.seed is not None else self.index}.{self.extension}"


@dataclass
class GenerationResult:
    images: list[GeneratedImage]
    info: GenerationInfo
    server: ServerInfo
    model: str | None  # the checkpoint title asked for, or the active one
    sampler: str | None
    scheduler: str | None
    loras: list[names.LoraUse] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    model_switched: bool = False
    elapsed_s: float = 0.0

    @property
    def seeds(self) -> list[int]:
        return [img.seed for img in self.images if img.seed is not None]

    def summary(self) -> dict[str, Any]:
        """What the JSON message and the workflow variables carry (never image bytes)."""
        info = self.info
        return {
            "seeds": self.seeds,
            "seed": self.seeds[0] if self.seeds else None,
            "model": info.sd_model_name or self.model,
            "model_hash": info.sd_model_hash,
            "sampler": info.sampler_name or self.sampler,
            "scheduler": _schedule_type(info) or self.scheduler,
            "steps": info.steps,
            "cfg_scale": info.cfg_scale,
            "width": info.width,
            "height": info.height,
            "loras": [{"name": u.name, "weight": u.weight} for u in self.loras],
            "server": self.server.flavor,
            "infotexts": info.infotexts,
            "warnings": self.warnings,
            "images": [{"filename": i.filename, "mime_type": i.mime_type, "size_bytes": len(i.data), "seed": i.seed} for i in self.images],
            "elapsed_s": round(self.elapsed_s, 3),
        }


@dataclass(frozen=True)
class Img2ImgInputs:
    """What img2img adds to the shared sampling settings (images already in base64)."""

    init_image: str
    controls: Img2ImgControls
    mask: str | None = None


class Generation:
    def __init__(self, client: WebUIClient, *, default_model: str = "", catalog: Catalog | None = None) -> None:
        self.client = client
        self.default_model = (default_model or "").strip()
        self.catalog = catalog or Catalog(client)

    def txt2img(self, settings: SamplingSettings, deadline: Deadline) -> GenerationResult:
        return self._run(settings, deadline, None)

    def img2img(self, settings: SamplingSettings, inputs: Img2ImgInputs, deadline: Deadline) -> GenerationResult:
        return self._run(settings, deadline, inputs)

    # ------------------------------------------------------------------ steps

    def _run(self, settings: SamplingSettings, deadline: Deadline, img2img: Img2ImgInputs | None) -> GenerationResult:
        started = time.monotonic()
        wanted = settings.model or self.default_model
        self._route_by_model(wanted, deadline)
        options = self.client.options(deadline)
        server = self.catalog.server(deadline, options)
        model, switched = self.ensure_model(wanted, options, server, deadline)
        self._route_by_model(model.title if model else options.sd_model_checkpoint or "", deadline)
        sampler, scheduler = self._sampler_and_scheduler(settings, server, deadline)
        loras = names.resolve_loras(settings.loras, self.catalog.loras(deadline)) if settings.loras else []
        hr_upscaler = self._hires_upscaler(settings, deadline)

        request = self._request(settings, server, model, sampler, scheduler, loras, hr_upscaler, img2img)
        if img2img is None:
            response = self.client.txt2img(request, deadline)
        else:
            response = self.client.img2img(request, deadline)

        images = decode_images(response)
        self._check_model(model, response.info, server)
        warnings = fallback_warnings(response.info, server, sampler, scheduler, loras)
        return GenerationResult(
            images=images,
            info=response.info,
            server=server,
            model=model.title if model else options.sd_model_checkpoint,
            sampler=sampler,
            scheduler=scheduler,
            loras=loras,
            warnings=warnings,
            model_switched=switched,
            elapsed_s=time.monotonic() - started,
        )

    def _route_by_model(self, name: str, deadline: Deadline) -> None:
        """Send ``X-SD-Model`` on the call's next requests, so a hash balancer keeps them on the WebUI that owns the
        checkpoint (:mod:`sdwebui.routing`). Resolved against the cached ``/sd-models``; with no model asked, the
        active one the WebUI reported. An unknown name sends none (``ensure_model`` reports it)."""
        model = checkpoints.find_model(name, self.catalog.models(deadline)) if name else None
        self.client.route_by_model(model.title if model else None)

    def ensure_model(self, name: str, options: Options, server: ServerInfo, deadline: Deadline) -> tuple[SDModel | None, bool]:
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
                    f"('{options.sd_model_checkpoint}') and cannot switch to '{name}'; restart it with that model, "
                    "or leave the model empty."
                )
            model = model or checkpoints.resolve_model(name, available)
        if not server.can_switch_models or checkpoints.is_active(options.sd_model_checkpoint, model):
            return model, False
        # No GET /options to confirm: behind a load balancer it may reach another WebUI. The request
        # carries the model in override_settings too, and info.sd_model_name is checked afterwards.
        self.client.set_options({"sd_model_checkpoint": model.title}, deadline)
        return model, True

    def _sampler_and_scheduler(self, settings: SamplingSettings, server: ServerInfo, deadline: Deadline) -> tuple[str | None, str | None]:
        sampler = scheduler = None
        if not (settings.sampler or settings.scheduler):
            return sampler, scheduler
        schedulers = self.catalog.schedulers(deadline) if server.has_schedulers else None
        if settings.sampler:
            sampler, scheduler = names.resolve_sampler(settings.sampler, self.catalog.samplers(deadline), schedulers)
        if settings.scheduler:
            if schedulers is None:
                raise Unsupported(
                    f"The {server.name} has no separate scheduler setting; leave the scheduler empty "
                    "(on SD.Next the sampler name carries it)."
                )
            scheduler = names.resolve_scheduler(settings.scheduler, schedulers)
        return sampler, scheduler

    def _hires_upscaler(self, settings: SamplingSettings, deadline: Deadline) -> str | None:
        if settings.hires is None:
            return None
        available = [m.name for m in self.catalog.latent_upscale_modes(deadline)]
        available += [u.name for u in self.catalog.upscalers(deadline) if u.name != "None"]
        return names.resolve_upscaler(settings.hires.upscaler, available)

    def _request(
        self,
        settings: SamplingSettings,
        server: ServerInfo,
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
        fields: dict[str, Any] = dict(
            prompt=prompt,
            negative_prompt=settings.negative_prompt,
            width=settings.width,
            height=settings.height,
            steps=settings.steps,
            cfg_scale=settings.cfg_scale,
            seed=settings.seed,
            batch_size=settings.batch_size,
            n_iter=1,
            sampler_name=sampler,
            scheduler=scheduler if server.has_schedulers else None,
            clip_skip=settings.clip_skip if server.clip_skip_as_field else None,
            lora=lora_array,
            override_settings=overrides or None,
            override_settings_restore_afterwards=False if overrides else None,
        )
        if settings.hires is not None and img2img is None:
            fields.update(
                enable_hr=True,
                hr_scale=settings.hires.scale,
                hr_upscaler=hr_upscaler,
                hr_second_pass_steps=settings.hires.second_pass_steps,
                # Always sent with hires: without it A1111 fails with a TypeError.
                denoising_strength=settings.hires.denoising_strength,
            )
        if img2img is None:
            return Txt2ImgRequest(**fields)
        controls = img2img.controls
        fields.update(init_images=[img2img.init_image], denoising_strength=controls.denoising_strength, resize_mode=controls.resize_mode)
        if img2img.mask is not None:
            fields.update(
                mask=img2img.mask,
                mask_blur=controls.mask_blur,
                inpainting_fill=controls.inpainting_fill,
                inpaint_full_res=controls.only_masked,
                inpaint_full_res_padding=controls.padding,
                inpainting_mask_invert=int(controls.invert_mask),
            )
        return Img2ImgRequest(**fields)

    def _check_model(self, model: SDModel | None, info: GenerationInfo, server: ServerInfo) -> None:
        """A different model than the one asked for is an error: the images are not what was wanted."""
        if model is None or not server.can_switch_models:
            return
        if info.sd_model_name:
            ran = info.sd_model_name
            ok = ran.lower() in {a.lower() for a in checkpoints.aliases(model)}
        elif info.sd_model_hash and (model.hash or model.sha256):
            ran = info.sd_model_hash
            ok = ran.lower() in {(model.hash or "").lower(), (model.sha256 or "")[:10].lower(), (model.sha256 or "").lower()}
        else:
            return
        if not ok:
            raise ServerError(
                f"Asked for model '{model.title}' but the WebUI generated with '{ran}'; the switch silently failed "
                "(out of memory, or a damaged or missing file?). Check the WebUI console, then try again."
            )


def decode_images(response: GenerationResponse) -> list[GeneratedImage]:
    """The generated images only: ``len(all_seeds)`` of them from ``index_of_first_image``.

    Grids, masks and ControlNet maps that some servers add around them are skipped.
    """
    info = response.info
    start = max(0, info.index_of_first_image)
    count = len(info.all_seeds) or max(0, len(response.images) - start)
    # Take the base64 strings out of the response, and drop each one once decoded, to bound peak memory.
    encoded_images, response.images = response.images[start : start + count], []
    if not encoded_images:
        raise MalformedResponse(
            "The WebUI answered without any image; check that it has a model loaded and look at its console for errors."
        )
    images = []
    for offset in range(len(encoded_images)):
        encoded, encoded_images[offset] = encoded_images[offset], None
        data, mime, ext = decode_image_base64(encoded)
        del encoded
        seed = info.all_seeds[offset] if offset < len(info.all_seeds) else info.seed
        images.append(GeneratedImage(data=data, mime_type=mime, extension=ext, seed=seed, index=offset))
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


def fallback_warnings(
    info: GenerationInfo, server: ServerInfo, sampler: str | None, scheduler: str | None, loras: list[names.LoraUse]
) -> list[str]:
    """What the server silently did differently from what was asked (the WebUI replaces unknown names)."""
    warnings = []
    key = names.normalise
    if sampler and info.sampler_name and key(info.sampler_name) != key(sampler):
        warnings.append(f"The WebUI used sampler '{info.sampler_name}' instead of '{sampler}'.")
    ran_scheduler = _schedule_type(info)
    if scheduler and ran_scheduler and key(ran_scheduler) != key(scheduler):
        warnings.append(f"The WebUI used scheduler '{ran_scheduler}' instead of '{scheduler}'.")
    if loras and server.flavor in ("a1111", "forge"):
        hashes = key(_lora_hashes(info))
        for use in loras:
            if key(use.name) + ":" not in hashes:
                warnings.append(f"LoRA '{use.name}' does not appear in the generation info, so it was probably not applied.")
    return warnings
