"""Generate an image through the plugin process, exactly as Dify runs it, and save it.

    python scripts/generate_image.py [--prompt TEXT] [--out DIR]

Starts the plugin as `python -m main` (stdio JSON lines, INSTALL_METHOD=local),
validates the credentials and invokes the txt2img tool. With SD_WEBUI_URL set it
talks to that WebUI (SD_WEBUI_USER, SD_WEBUI_PASSWORD and SD_WEBUI_MODEL are
optional); without it, it starts the bundled stand-in WebUI on 127.0.0.1, whose
"images" are synthetic test patterns, and says so.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.harness.plugin_process import PluginProcess  # noqa: E402
from tests.standin.webui import StandInWebUI  # noqa: E402


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompt", default="a lighthouse on a cliff at sunset, oil painting, dramatic sky")
    parser.add_argument("--out", type=Path, default=ROOT / "out")
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--height", type=int, default=512)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args(argv)

    with ExitStack() as stack:
        url = os.environ.get("SD_WEBUI_URL", "").strip()
        if url:
            print(f"Using the WebUI at SD_WEBUI_URL={url}")
        else:
            url = stack.enter_context(StandInWebUI("forge", generation_delay=0.2)).base_url
            print(f"SD_WEBUI_URL is not set: using the bundled stand-in WebUI at {url} (it draws test patterns, not art).")
        credentials = {
            "base_url": url,
            "username": os.environ.get("SD_WEBUI_USER", ""),
            "password": os.environ.get("SD_WEBUI_PASSWORD", ""),
            "default_model": os.environ.get("SD_WEBUI_MODEL", ""),
        }
        started = time.monotonic()
        plugin = stack.enter_context(PluginProcess(str(ROOT)))
        print(f"Plugin process started (first heartbeat after {time.monotonic() - started:.1f} s).")

        check = plugin.validate_credentials("sd_webui", credentials)
        if check.error:
            print(f"Credentials rejected: {check.error['message']}", file=sys.stderr)
            return 1
        print("Credentials accepted.")

        params = {"prompt": args.prompt, "width": args.width, "height": args.height, "steps": args.steps}
        result = plugin.invoke_tool("sd_webui", "txt2img", credentials, params, timeout=600)
        if result.error:
            print(f"Generation failed: {result.error['message']}", file=sys.stderr)
            return 1
        args.out.mkdir(parents=True, exist_ok=True)
        for blob in result.blobs:
            path = args.out / (blob.filename or "image.png")
            path.write_bytes(blob.data)
            print(f"Wrote {path} ({len(blob.data)} bytes, {blob.mime_type})")
        for text in result.texts:
            print(text)
        print(f"One txt2img call through the stdio runtime took {result.elapsed_s:.2f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
