"""Model families: which kind of checkpoint will run, and the defaults that suit it.

Pure data and pure functions (standard library only): no HTTP here. The caller fetches what the server offers and
passes it in:

- ``GET /sd_extra_networks/metadata?page=checkpoints&item=STEM`` (A1111 and Forge, only with the UI running):
  ``{}`` until the UI has rendered its extra-networks pages once, and for a file without safetensors metadata;
  afterwards ``{"metadata": "<a JSON object as a string>"}`` for a file that has some. ``item`` must be the bare
  file stem (no folder, no extension, no ``[hash]``). An empty answer therefore means "unknown", never "SD 1.5"
  (recordings ``a1111/sdxl/get_metadata_*`` and ``forge/sdxl/get_metadata_*``; A1111/Forge
  ``modules/ui_extra_networks.py::get_metadata``, which answers ``json.dumps(metadata, indent=4)``).
- ``GET /sdapi/v1/sd-modules`` (Forge only): ``[{"model_name": "ae.safetensors", "filename": "/abs/.../ae.safetensors"}]``
  (Forge ``modules/api/api.py::get_sd_vaes_and_text_encoders``); the VAEs and text encoders a Flux or SD 3.5 file
  without them needs, sent as the ``forge_additional_modules`` option.
- The checkpoint's title, whose name often says the family (``juggernautXL``, ``flux1-dev``, ``sd3.5_large``).

Nothing in ``/sd-models``, ``/options`` or ``info`` names the family (``a1111/sdxl/README.md``,
``forge/sdxl/README.md``): Forge's ``forge_preset`` is the UI preset the user picked, not the model's type.

Every default below names its source in a comment. "Forge UI preset" means the ``sd_t2i_*`` / ``xl_t2i_*`` /
``flux_t2i_*`` options and ``on_preset_change`` in Forge's ``modules_forge/main_entry.py`` (their values are in the
recording ``forge/sdxl/get_options_before.json``: sd 512x640 CFG 7, xl 896x1152 CFG 5, flux 896x1152 CFG 1 and
distilled CFG 3.5; samplers sd/xl "Euler a" + Automatic, flux "Euler" + Simple).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

# --------------------------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preset:
    """One quality preset of a family. ``scheduler`` is a ``/schedulers`` name ("karras", "simple"), None = the
    server's automatic choice; ``distilled_cfg`` only for Flux (Forge's ``distilled_cfg_scale``)."""

    steps: int
    cfg: float
    sampler: str
    scheduler: str | None
    width: int
    height: int
    distilled_cfg: float | None = None


@dataclass(frozen=True)
class HiresDefaults:
    """Hires-fix starting point: upscale factor, upscaler ("" = the server's default latent mode), second-pass
    steps (0 = as many as the first pass), denoising strength and the second pass' CFG (Forge ``hr_cfg``)."""

    scale: float
    upscaler: str
    second_pass_steps: int
    denoising_strength: float
    cfg: float


# SDXL's training buckets (the aspect-ratio buckets of SDXL's paper, ~1 MP, sides multiples of 64), the sizes the
# brief and common SDXL guides list; also a good set for Flux and SD 3.5, which take any ~1 MP size in multiples of
# 16 (Flux) / 64 (SD 3.5's MMDiT patching and VAE, 1024x1024 in both cards).
SDXL_BUCKETS: tuple[tuple[int, int], ...] = (
    (1024, 1024), (1152, 896), (896, 1152), (1216, 832), (832, 1216), (1344, 768), (768, 1344),
    (1536, 640), (640, 1536),
)


@dataclass(frozen=True)
class Family:
    """One model family (or a variant that needs other defaults, such as Pony or Flux schnell).

    ``name``: a stable key ("sd15", "sdxl", "pony", "flux_dev", "flux_schnell", "sd35", "unknown");
    ``architecture``: what the server runs ("sd15", "sdxl", "flux", "sd35", "unknown": Pony is "sdxl");
    ``native``: the trained size (width, height); ``buckets``: the sizes it was trained at, () = keep the short
    side at ``native`` (SD 1.5); ``multiple``: what sides should be a multiple of.
    """

    name: str
    label: str
    architecture: str
    width: int
    height: int
    steps: int
    cfg: float
    sampler: str
    scheduler: str | None
    clip_skip: int | None
    distilled_cfg: float | None
    hires: HiresDefaults
    presets: Mapping[str, Preset] = field(hash=False, compare=False)
    buckets: tuple[tuple[int, int], ...] = ()
    multiple: int = 8
    native: tuple[int, int] = (512, 512)
    needs_modules: bool = False  # Forge: a file without its own VAE/text encoders needs forge_additional_modules

    @property
    def known(self) -> bool:
        return self.architecture != "unknown"

    def preset(self, name: str) -> Preset:
        """The named preset ("fast", "quality", "artistic"); KeyError for another name."""
        return self.presets[name]


SD15 = Family(
    name="sd15", label="SD 1.5", architecture="sd15",
    width=512, height=512,       # SD 1.5 model card: trained at 512x512; A1111's txt2img default 512x512
    steps=20,                    # A1111/Forge txt2img default (Sampling steps 20)
    cfg=7.0,                     # A1111 default CFG 7; Forge UI preset sd_t2i_cfg 7
    sampler="Euler a",           # Forge UI preset sd_t2i_sampler "Euler a"
    scheduler=None,              # Forge UI preset sd_t2i_scheduler "Automatic"
    clip_skip=None,              # 1 (the WebUI default CLIP_stop_at_last_layers): nothing to send
    distilled_cfg=None,
    # A1111 UI hires defaults: x2, Latent, 0 extra steps; denoising 0.7 in A1111's UI is strong for a 2x pass,
    # 0.5 is the project's choice (keeps the composition). Forge UI preset sd_t2i_hr_cfg 7.
    hires=HiresDefaults(scale=2.0, upscaler="", second_pass_steps=0, denoising_strength=0.5, cfg=7.0),
    presets={  # the project's SD 1.5 presets (sdwebui/settings.PRESETS, "the community's usual starting points")
        "fast": Preset(steps=20, cfg=7.0, sampler="Euler a", scheduler=None, width=512, height=512),
        "quality": Preset(steps=30, cfg=10.0, sampler="DPM++ 2M", scheduler="karras", width=768, height=768),
        "artistic": Preset(steps=25, cfg=9.0, sampler="DDIM", scheduler=None, width=512, height=768),
    },
    multiple=8, native=(512, 512),
)

SDXL = Family(
    name="sdxl", label="SDXL", architecture="sdxl",
    width=1024, height=1024,     # SDXL base card: 1024x1024 (Forge's xl preset portrait default is 896x1152)
    steps=25,                    # between the WebUI default 20 and the 30 of most SDXL finetune cards (project choice)
    cfg=5.0,                     # Forge UI preset xl_t2i_cfg 5
    sampler="Euler a",           # Forge UI preset xl_t2i_sampler "Euler a"
    scheduler=None,              # Forge UI preset xl_t2i_scheduler "Automatic"
    clip_skip=None,
    distilled_cfg=None,
    # x1.5 (1024 -> 1536, ~2.4 MP, what an SDXL UNet still handles); Forge UI preset xl_t2i_hr_cfg 5
    hires=HiresDefaults(scale=1.5, upscaler="", second_pass_steps=0, denoising_strength=0.4, cfg=5.0),
    presets={
        "fast": Preset(steps=20, cfg=5.0, sampler="Euler a", scheduler=None, width=1024, height=1024),
        "quality": Preset(steps=30, cfg=6.0, sampler="DPM++ 2M", scheduler="karras", width=832, height=1216),
        "artistic": Preset(steps=30, cfg=7.0, sampler="DPM++ 2M SDE", scheduler="karras", width=832, height=1216),
    },
    buckets=SDXL_BUCKETS, multiple=64, native=(1024, 1024),
)

PONY = Family(
    name="pony", label="SDXL (Pony)", architecture="sdxl",
    width=1024, height=1024,     # Pony Diffusion V6 XL card / author's notes: 1024px
    steps=25,                    # Pony card's recommended settings: Euler a, 25 steps
    cfg=7.0,                     # common Pony guides (CFG 7); the card gives no number
    sampler="Euler a",           # Pony card
    scheduler=None,
    clip_skip=2,                 # Pony card: "load this model with clip skip 2 ... otherwise low quality blobs"
    distilled_cfg=None,
    hires=HiresDefaults(scale=1.5, upscaler="", second_pass_steps=0, denoising_strength=0.4, cfg=7.0),
    presets={
        "fast": Preset(steps=20, cfg=7.0, sampler="Euler a", scheduler=None, width=1024, height=1024),
        "quality": Preset(steps=30, cfg=7.0, sampler="DPM++ 2M", scheduler="karras", width=832, height=1216),
        "artistic": Preset(steps=30, cfg=8.0, sampler="Euler a", scheduler=None, width=832, height=1216),
    },
    buckets=SDXL_BUCKETS, multiple=64, native=(1024, 1024),
)

FLUX_DEV = Family(
    name="flux_dev", label="Flux dev", architecture="flux",
    width=1024, height=1024,     # FLUX.1-dev card example: 1024x1024 (Forge's flux preset: 896x1152)
    steps=20,                    # common practice for Flux dev in Forge/ComfyUI (project choice; card example: 50)
    cfg=1.0,                     # Forge UI preset flux_t2i_cfg 1: guidance-distilled, real CFG off
    sampler="Euler",             # Forge UI preset flux_t2i_sampler "Euler"
    scheduler="simple",          # Forge UI preset flux_t2i_scheduler "Simple"
    clip_skip=None,              # Forge hides Clip skip for the flux preset
    distilled_cfg=3.5,           # Forge UI preset flux_t2i_d_cfg 3.5; FLUX.1-dev card guidance_scale=3.5
    # Forge UI preset flux_t2i_hr_cfg 1 (and hr distilled CFG 3.5)
    hires=HiresDefaults(scale=1.5, upscaler="", second_pass_steps=0, denoising_strength=0.35, cfg=1.0),
    presets={
        "fast": Preset(steps=12, cfg=1.0, sampler="Euler", scheduler="simple", width=1024, height=1024,
                       distilled_cfg=3.5),
        "quality": Preset(steps=30, cfg=1.0, sampler="Euler", scheduler="simple", width=832, height=1216,
                          distilled_cfg=3.5),
        # a lower distilled CFG gives looser, more painterly images (the card's guidance is 3.5)
        "artistic": Preset(steps=25, cfg=1.0, sampler="Euler", scheduler="simple", width=832, height=1216,
                           distilled_cfg=2.5),
    },
    buckets=SDXL_BUCKETS, multiple=16, native=(1024, 1024), needs_modules=True,
)

FLUX_SCHNELL = Family(
    name="flux_schnell", label="Flux schnell", architecture="flux",
    width=1024, height=1024,     # FLUX.1-schnell card/diffusers example: pipeline default size, 1024x1024
    steps=4,                     # FLUX.1-schnell card: num_inference_steps=4, guidance_scale=0.0 (timestep-distilled)
    cfg=1.0,                     # Forge UI preset flux_t2i_cfg 1; card guidance_scale=0.0 (no CFG)
    sampler="Euler",             # Forge UI preset
    scheduler="simple",          # Forge UI preset
    clip_skip=None,
    distilled_cfg=None,          # schnell has no guidance embedding: Forge's distilled CFG has no effect on it
    hires=HiresDefaults(scale=1.5, upscaler="", second_pass_steps=4, denoising_strength=0.35, cfg=1.0),
    presets={
        "fast": Preset(steps=2, cfg=1.0, sampler="Euler", scheduler="simple", width=1024, height=1024),
        "quality": Preset(steps=4, cfg=1.0, sampler="Euler", scheduler="simple", width=832, height=1216),
        "artistic": Preset(steps=4, cfg=1.0, sampler="Euler", scheduler="simple", width=832, height=1216),
    },
    buckets=SDXL_BUCKETS, multiple=16, native=(1024, 1024), needs_modules=True,
)

SD35 = Family(
    name="sd35", label="SD 3.5", architecture="sd35",
    width=1024, height=1024,     # SD 3.5 Large/Medium cards: 1 MP (1024x1024)
    steps=28,                    # SD 3.5 Large card: num_inference_steps=28 (Medium card: 40)
    cfg=4.5,                     # SD 3.5 Medium card guidance_scale=4.5 (Large card 3.5; a Forge fork's sd3 preset 5)
    sampler="Euler",             # the cards' FlowMatchEulerDiscrete scheduler; a Forge fork's sd3 preset "Euler"
    scheduler="simple",          # a Forge fork's sd3 preset "Simple" (upstream Forge has no sd3 preset)
    clip_skip=None,
    distilled_cfg=None,
    hires=HiresDefaults(scale=1.5, upscaler="", second_pass_steps=0, denoising_strength=0.35, cfg=4.5),
    presets={
        "fast": Preset(steps=20, cfg=4.5, sampler="Euler", scheduler="simple", width=1024, height=1024),
        "quality": Preset(steps=40, cfg=4.5, sampler="Euler", scheduler="simple", width=832, height=1216),
        "artistic": Preset(steps=28, cfg=3.5, sampler="Euler", scheduler="simple", width=832, height=1216),
    },
    buckets=SDXL_BUCKETS, multiple=64, native=(1024, 1024), needs_modules=True,
)

UNKNOWN = Family(
    name="unknown", label="unknown", architecture="unknown",
    width=512, height=512,       # the project's BASE (sdwebui/settings.BASE): what suits SD 1.5, safe elsewhere
    steps=20, cfg=7.0,
    sampler="",                  # left to the server's default
    scheduler=None, clip_skip=None, distilled_cfg=None,
    hires=HiresDefaults(scale=2.0, upscaler="", second_pass_steps=0, denoising_strength=0.5, cfg=7.0),
    presets=SD15.presets,
    multiple=8, native=(512, 512),
)

FAMILIES: dict[str, Family] = {f.name: f for f in (SD15, SDXL, PONY, FLUX_DEV, FLUX_SCHNELL, SD35, UNKNOWN)}


def family(name: str) -> Family:
    """The family called ``name`` (a key of FAMILIES, or an architecture such as "flux"); UNKNOWN otherwise."""
    key = (name or "").strip().lower()
    return FAMILIES.get(key) or {"flux": FLUX_DEV, "sd3": SD35, "sd1": SD15}.get(key, UNKNOWN)


# --------------------------------------------------------------------------------------------------------------
# Sizes
# --------------------------------------------------------------------------------------------------------------

ASPECT_RATIOS: dict[str, tuple[int, int]] = {
    "square": (1, 1), "portrait": (2, 3), "landscape": (3, 2), "wide": (16, 9), "tall": (9, 16),
    "ultrawide": (21, 9), "ultratall": (9, 21),
    "1:1": (1, 1), "2:3": (2, 3), "3:2": (3, 2), "3:4": (3, 4), "4:3": (4, 3), "4:5": (4, 5), "5:4": (5, 4),
    "9:16": (9, 16), "16:9": (16, 9), "9:21": (9, 21), "21:9": (21, 9),
}

_RATIO = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*[:x/]\s*(\d+(?:\.\d+)?)\s*$")


def aspect_ratio(aspect: str) -> float:
    """width / height for a name of ASPECT_RATIOS or an "a:b" string; ValueError otherwise."""
    key = (aspect or "").strip().lower()
    if key in ASPECT_RATIOS:
        w, h = ASPECT_RATIOS[key]
        return w / h
    match = _RATIO.match(key)
    if match and float(match.group(1)) > 0 and float(match.group(2)) > 0:
        return float(match.group(1)) / float(match.group(2))
    names = ", ".join(ASPECT_RATIOS)
    raise ValueError(f"unknown aspect ratio {aspect!r}: use one of {names}, or width:height such as 5:7")


def size_for(fam: Family | str, aspect: str) -> tuple[int, int]:
    """The family's trained size closest to ``aspect``.

    SDXL, Pony, Flux, SD 3.5: the training bucket whose ratio is nearest (on a log scale, so 2:3 and 3:2 are
    equally far from 1:1). SD 1.5 and unknown: the short side stays at 512 (the trained size) and the long one
    follows the ratio, rounded to 64 and capped at 1024 (512x768 for 2:3), as SD 1.5 users do.
    """
    fam = family(fam) if isinstance(fam, str) else fam
    ratio = aspect_ratio(aspect)
    if fam.buckets:
        return min(fam.buckets, key=lambda wh: (abs(math.log(wh[0] / wh[1] / ratio)), -wh[0] * wh[1]))
    short = min(fam.native)
    long_side = min(1024, max(short, int(round(short * max(ratio, 1 / ratio) / 64)) * 64))
    return (long_side, short) if ratio > 1 else (short, long_side)


# --------------------------------------------------------------------------------------------------------------
# Detection
# --------------------------------------------------------------------------------------------------------------

FROM_METADATA = "from the checkpoint's metadata"
FROM_NAME = "from its name"
FROM_MODULES = "from the VAE and text encoders chosen on the server"
NOT_FOUND = "unknown: neither the checkpoint's metadata nor its name says"

# kohya-ss sd-scripts library/sai_model_spec.py (ARCH_*), the values of "modelspec.architecture"; a LoRA adds
# "/lora". SD 3 is written "stable-diffusion-3" and may be followed by "-m", "-5-large", ...
_ARCHITECTURES: tuple[tuple[str, Family], ...] = (
    ("stable-diffusion-xl-v1-refiner", UNKNOWN),  # a refiner is not a text-to-image base
    ("stable-diffusion-xl", SDXL),                 # stable-diffusion-xl-v1-base (recorded: juggernautXL_rand)
    ("stable-diffusion-v1", SD15),
    ("stable-diffusion-3", SD35),
    ("stable-diffusion-v3", SD35),
    ("flux-1-schnell", FLUX_SCHNELL),
    ("flux-1-dev", FLUX_DEV),
    ("flux-1", FLUX_DEV),
    ("flux", FLUX_DEV),
)
# kohya-ss sd-scripts "ss_base_model_version": sd_v1, sd_v2(_v), sdxl_base_v1-0, sd3, flux1 (and flux1-dev,
# flux1_schnell written by other trainers).
_BASE_VERSIONS: tuple[tuple[str, Family], ...] = (
    ("sdxl", SDXL), ("sd_v1", SD15), ("sd_1", SD15), ("sd3", SD35), ("schnell", FLUX_SCHNELL), ("flux", FLUX_DEV),
)


def parse_metadata(answer: Any) -> dict[str, Any]:
    """The safetensors metadata as a dict, from the extra-networks answer (``{}`` or ``{"metadata": "<json>"}``)
    or from an already-parsed dict. Anything unreadable gives ``{}``."""
    if not isinstance(answer, Mapping):
        return {}
    inner = answer.get("metadata") if set(answer) == {"metadata"} else answer
    if isinstance(inner, str):
        try:
            inner = json.loads(inner)
        except ValueError:
            return {}
    return dict(inner) if isinstance(inner, Mapping) else {}


def from_metadata(meta: Any) -> tuple[Family, str]:
    """The family the checkpoint's own metadata states (``modelspec.architecture``, else kohya's
    ``ss_base_model_version``); Pony is told by ``modelspec.title`` or the ``ss_*`` names when they say so."""
    data = parse_metadata(meta)
    found: Family | None = None
    arch = str(data.get("modelspec.architecture") or "").strip().lower()
    if arch:
        arch = arch.split("/", 1)[0]
        found = next((fam for prefix, fam in _ARCHITECTURES if arch.startswith(prefix)), None)
    if found is None:
        version = str(data.get("ss_base_model_version") or "").strip().lower()
        found = next((fam for key, fam in _BASE_VERSIONS if key in version), None) if version else None
    if found is None:
        return UNKNOWN, NOT_FOUND
    if found is SDXL:
        title = " ".join(str(data.get(k) or "") for k in ("modelspec.title", "ss_output_name", "ss_sd_model_name"))
        if _PONY.search(title):
            found = PONY
    return found, FROM_METADATA


def _basename(name: str) -> str:
    return re.split(r"[\\/]", str(name or ""))[-1].lower()


def _module_kind(name: str) -> str:
    """"vae", "clip_l", "clip_g", "t5" or "" for a module file name or path."""
    base = _basename(name)
    stem = re.sub(r"\.(safetensors|sft|gguf|ckpt|pt|bin)$", "", base)
    if "t5" in stem:
        return "t5"
    if "clip_l" in stem or "clip-l" in stem or stem in ("clipl", "clip_vit_l"):
        return "clip_l"
    if "clip_g" in stem or "clip-g" in stem:
        return "clip_g"
    if "vae" in stem or stem == "ae" or stem.startswith(("ae_", "ae-")):
        return "vae"
    return ""


def _is_flux_vae(name: str) -> bool:
    """Flux's 16-channel VAE is BFL's ae.safetensors (or a copy named for Flux); an SD/SDXL VAE
    (vae-ft-mse-840000, sdxl_vae) would decode Flux latents into noise."""
    stem = re.sub(r"\.[a-z0-9]+$", "", _basename(name))
    return stem == "ae" or stem.startswith(("ae_", "ae-")) or ("flux" in stem and "vae" in stem)


def from_modules(module_names: Iterable[str] | None) -> tuple[Family, str]:
    """A hint from the modules chosen on a Forge server (``forge_additional_modules``): a T5 text encoder means
    Flux (or SD 3.5 when CLIP-G is chosen as well). The weakest hint: the choice may be left from another model."""
    kinds = {_module_kind(n) for n in (module_names or [])}
    if "t5" in kinds and "clip_g" in kinds:
        return SD35, FROM_MODULES
    if "t5" in kinds or any(_basename(n).startswith("ae.") for n in (module_names or [])):
        return FLUX_DEV, FROM_MODULES
    return UNKNOWN, NOT_FOUND


_PONY = re.compile(r"pony|pdxl", re.IGNORECASE)
_FLUX = re.compile(r"flux", re.IGNORECASE)
_SCHNELL = re.compile(r"schnell", re.IGNORECASE)
_SD35 = re.compile(r"sd[-_ ]?3(?:[._-]?5)?(?![0-9])|stable[-_ ]?diffusion[-_ ]?3", re.IGNORECASE)
_SDXL_WORDS = re.compile(r"sdxl|illustrious|noob|animagine|playground[-_ ]?v?2", re.IGNORECASE)
# "XL" as its own part of the name: upper-case XL not followed by a lower-case letter (juggernautXL_v9, RealVisXL,
# ponyV6XL), upper-case XL before a version (juggernautXLv9), or lower-case xl that ends a word (sd_xl_base,
# zavychromaxl_v80). Not "xl" inside ordinary words (pixlr, axle, foxlight).
_XL = re.compile(r"XL(?![a-z])|(?<=[a-z0-9])XL(?=v\d)|xl(?![a-zA-Z])")
_SD15 = re.compile(r"(?:sd|v)[-_ ]?1[._-]?5(?![0-9])|sd15", re.IGNORECASE)


def _stem(title: str) -> str:
    """The file stem of a checkpoint title: no "[hash]", no folder, no extension."""
    name = re.sub(r"\s*\[[0-9a-fA-F]{8,64}\]\s*$", "", str(title or "").strip())
    name = re.split(r"[\\/]", name)[-1]
    return re.sub(r"\.(safetensors|ckpt|gguf|sft|pt|pth|bin)$", "", name, flags=re.IGNORECASE)


def from_name(title: str) -> tuple[Family, str]:
    """The family the checkpoint's name says, if any (flux1-dev, sd3.5_large, ponyDiffusionV6XL, juggernautXL...)."""
    stem = _stem(title)
    if not stem:
        return UNKNOWN, NOT_FOUND
    if _FLUX.search(stem):
        return (FLUX_SCHNELL if _SCHNELL.search(stem) else FLUX_DEV), FROM_NAME
    if _SD35.search(stem):
        return SD35, FROM_NAME
    if _PONY.search(stem):
        return PONY, FROM_NAME
    if _SDXL_WORDS.search(stem) or _XL.search(stem):
        return SDXL, FROM_NAME
    if _SD15.search(stem):
        return SD15, FROM_NAME
    return UNKNOWN, NOT_FOUND


def detect(title: str, metadata: Any = None, modules_hint: Iterable[str] | None = None) -> tuple[Family, str]:
    """The family of the checkpoint ``title`` will run: its metadata first (it is the file's own statement),
    then its name, then the modules chosen on the server. The name refines the metadata's variant: an SDXL file
    named "pony..." is Pony, a "flux-1" file named "...schnell..." is schnell."""
    by_meta, _ = from_metadata(metadata)
    by_name, _ = from_name(title)
    if by_meta.known:
        if by_name.architecture == by_meta.architecture and by_name is not by_meta and by_meta in (SDXL, FLUX_DEV):
            return by_name, f"{FROM_METADATA} and {FROM_NAME}"
        return by_meta, FROM_METADATA
    if by_name.known:
        return by_name, FROM_NAME
    by_modules, source = from_modules(modules_hint)
    if by_modules.known:
        return by_modules, source
    return UNKNOWN, NOT_FOUND


# --------------------------------------------------------------------------------------------------------------
# Warnings and Forge modules
# --------------------------------------------------------------------------------------------------------------


def conflicts(fam: Family | str, width: int, height: int, cfg: float | None = None) -> list[str]:
    """One-sentence warnings where the request does not suit the family (empty when it does, or when unknown)."""
    fam = family(fam) if isinstance(fam, str) else fam
    if not fam.known:
        return []
    notes = []
    pixels, native = width * height, fam.native[0] * fam.native[1]
    label = ("an " if fam.label.startswith("SD") else "a ") + fam.label
    suggestion = size_for(fam, "portrait")
    if fam.architecture != "sd15" and pixels < native / 2:
        notes.append(f"{width}x{height} on {label} checkpoint: it was trained at about {fam.native[0]}x"
                     f"{fam.native[1]}, so small images come out blurred or garbled; try {fam.width}x{fam.height} "
                     f"or {suggestion[0]}x{suggestion[1]}.")
    if fam.architecture == "sd15" and (pixels > native * 2.5 or max(width, height) > 1024):
        notes.append(f"{width}x{height} on {label} checkpoint: it was trained at 512x512, so large images tend "
                     "to repeat the subject (two heads, extra limbs); generate at 512x768 or so and enlarge with "
                     "hires fix.")
    if fam.multiple > 8 and (width % fam.multiple or height % fam.multiple):
        notes.append(f"{width}x{height} on {label} checkpoint: sides that are multiples of {fam.multiple} suit it "
                     f"best (the server rounds others down to 8).")
    if cfg is not None and fam.architecture == "flux" and cfg > 1.5:
        notes.append(f"CFG {cfg:g} on a Flux checkpoint: Flux is guidance-distilled and runs at CFG 1 (Forge takes "
                     "the guidance as 'Distilled CFG', 3.5); a higher CFG doubles the time and burns the image.")
    elif cfg is not None and fam.architecture in ("sdxl", "sd35") and cfg > 12:
        notes.append(f"CFG {cfg:g} on {label} checkpoint is very high: {fam.label} works best around {fam.cfg:g}; "
                     "higher values oversaturate the image.")
    return notes


FLUX_MODULES_HINT = ("Flux checkpoints that carry only the diffusion model need a VAE (ae.safetensors) and two text "
                     "encoders (clip_l and t5xxl) in Forge's models/VAE and models/text_encoder folders")


def forge_flux_modules(available: Iterable[str]) -> list[str] | None:
    """The VAE and text encoders to send as ``forge_additional_modules`` for a Flux checkpoint, picked from what
    ``GET /sdapi/v1/sd-modules`` lists (pass its ``filename`` values, full paths: every Forge version loads those;
    newer ones also take the bare ``model_name`` and drop names they do not know, ``main_entry.modules_change``).

    Order: VAE, CLIP-L, T5 (the order Forge lists them does not matter). For T5 the fp16 file is preferred over
    fp8 ones. None when a text encoder is missing (then see :func:`flux_modules_missing`); without a VAE file only
    the text encoders are returned (a Flux file without its VAE then fails on the server: "You do not have VAE
    state dict!").
    """
    names = [str(n) for n in available or [] if str(n).strip()]
    by_kind: dict[str, list[str]] = {}
    for name in names:
        by_kind.setdefault(_module_kind(name), []).append(name)
    clip = by_kind.get("clip_l", [])
    t5 = sorted(by_kind.get("t5", []), key=lambda n: (0 if "fp16" in _basename(n) else 1 if "fp8" in _basename(n)
                                                      else 2, _basename(n)))
    if not clip or not t5:
        return None
    vaes = sorted((n for n in names if _is_flux_vae(n)), key=lambda n: (0 if _basename(n).startswith("ae.") else 1,
                                                                         _basename(n)))
    return ([vaes[0]] if vaes else []) + [clip[0], t5[0]]


def flux_modules_missing(available: Iterable[str]) -> str:
    """A plain sentence saying which Flux modules the server lacks ("" when it has them all)."""
    names = [str(n) for n in available or []]
    kinds = {_module_kind(n) for n in names}
    missing = [label for present, label in ((any(_is_flux_vae(n) for n in names), "no Flux VAE (ae.safetensors)"),
                                            ("clip_l" in kinds, "no clip_l text encoder"),
                                            ("t5" in kinds, "no t5xxl text encoder")) if not present]
    if not missing:
        return ""
    listed = missing[0] if len(missing) == 1 else ", ".join(missing[:-1]) + " and " + missing[-1]
    return (f"This Forge server lists {listed} (GET /sdapi/v1/sd-modules). {FLUX_MODULES_HINT}; a checkpoint "
            "that has them built in runs as it is, any other fails with \"You do not have CLIP state dict!\".")
