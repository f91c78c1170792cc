"""Build an unsigned .difypkg: a plain zip of the plugin, filtered by .difyignore.

Mirrors dify-plugin-daemon's packager: plugin-root-relative paths with "/",
files only (no directory entries), sorted, Deflate, no zip comment (unsigned),
at most 50 MiB uncompressed. Ignore rules follow gitignore syntax; as in the
daemon, negations ("!x") have no effect.

    python scripts/package.py [--output DIR]   # prints the package path
"""

from __future__ import annotations

import argparse
import fnmatch
import re
import sys
import zipfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
MAX_UNCOMPRESSED = 50 * 1024 * 1024


def read_ignore_rules(root: Path) -> list[str]:
    path = root / ".difyignore"
    if not path.exists():
        path = root / ".gitignore"
    rules = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "!")):
            rules.append(line)
    return rules


def is_ignored(relative: str, rules: list[str]) -> bool:
    parts = relative.split("/")
    for rule in rules:
        dir_only = rule.endswith("/")
        pattern = rule.strip("/")
        anchored = rule.startswith("/") or "/" in pattern
        # A path is ignored if the rule matches it or any folder above it.
        candidates = range(1, len(parts)) if dir_only else range(1, len(parts) + 1)
        for depth in candidates:
            prefix = "/".join(parts[:depth])
            if anchored and fnmatch.fnmatchcase(prefix, pattern):
                return True
            if not anchored and fnmatch.fnmatchcase(parts[depth - 1], pattern):
                return True
    return False


def plugin_files(root: Path) -> list[str]:
    rules = read_ignore_rules(root)
    files = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            relative = path.relative_to(root).as_posix()
            if not is_ignored(relative, rules):
                files.append(relative)
    return sorted(files)


def build(root: Path = ROOT, output_dir: Path | None = None) -> Path:
    manifest = yaml.safe_load((root / "manifest.yaml").read_text(encoding="utf-8"))
    files = plugin_files(root)
    total = sum((root / f).stat().st_size for f in files)
    if total > MAX_UNCOMPRESSED:
        raise SystemExit(f"package would be {total} bytes uncompressed, over the 50 MiB limit")
    if not re.fullmatch(r"\d{1,4}(\.\d{1,4}){2}", str(manifest["version"])):
        raise SystemExit(f"manifest version {manifest['version']!r} is not X.Y.Z")
    out_dir = output_dir or root
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{manifest['name']}-{manifest['version']}.difypkg"
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for relative in files:
            archive.writestr(zipfile.ZipInfo(relative, date_time=(2026, 1, 1, 0, 0, 0)), (root / relative).read_bytes(), zipfile.ZIP_DEFLATED)
    return target


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=None, help="folder for the .difypkg (default: the project root)")
    args = parser.parse_args(argv)
    target = build(ROOT, args.output)
    sys.stdout.write(f"{target} ({target.stat().st_size} bytes)\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
