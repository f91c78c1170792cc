"""How long Read generation info takes to find and parse the infotext in a large PNG (prints, asserts nothing).

    .venv/bin/python scripts/bench_image_info.py [--size 2048] [--repeat 200]

A random-pixel PNG (about 3 bytes per pixel, like a photo) carries the infotext once before the pixels (where
the WebUIs write it) and once after them (where some tools append it), to show the walk skips pixel data.
"""

from __future__ import annotations

import argparse
import io
import random
import struct
import sys
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image  # noqa: E402

from sdwebui.png_info import read_image_info  # noqa: E402

TEXT = ("a red apple <lora:detail:0.5>\nNegative prompt: blurry\n"
        "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, Model: sd15")


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    pixels = random.Random(1).randbytes(args.size * args.size * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (args.size, args.size), pixels).save(out, "PNG", compress_level=1)
    png = out.getvalue()
    text = chunk(b"tEXt", b"parameters\0" + TEXT.encode())
    ihdr_end, iend = 33, png.rindex(b"IEND") - 4
    cases = {"text before pixels": png[:ihdr_end] + text + png[ihdr_end:], "text after pixels": png[:iend] + text + png[iend:]}
    print(f"{'case':<20} {'PNG MB':>7} {'ms per read':>12}")
    for name, data in cases.items():
        started = time.perf_counter()
        for _ in range(args.repeat):
            info = read_image_info(data)
        elapsed = (time.perf_counter() - started) / args.repeat * 1000
        found = "" if info.found else "  (infotext not found!)"
        print(f"{name:<20} {len(data) / 1e6:>7.1f} {elapsed:>12.3f}{found}")


if __name__ == "__main__":
    main()
