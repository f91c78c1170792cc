"""The plugin as Dify loads and installs it: the SDK's loader, the daemon-only rules, and the .difypkg."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import package  # noqa: E402

LOADER = """
import os, sys, json
sys.path.insert(0, os.getcwd())
from dify_plugin.config.config import DifyPluginEnv
from dify_plugin.core.plugin_registration import PluginRegistration
reg = PluginRegistration(DifyPluginEnv(INSTALL_METHOD="local"))
print(json.dumps({p: {t: [c.__name__, [x.name for x in cfg.parameters]] for t, (cfg, c) in tools.items()}
                  for p, (_, _, tools) in reg.tools_mapping.items()}))
"""
# The daemon's whitelist (manifest_entities/tags.go) and regexes (CONTRACT §5).
DAEMON_TAGS = set("search image videos weather finance design travel social news medical productivity education business "
                  "entertainment utilities agent rag other trigger".split())


def load_with_sdk(plugin_dir: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", LOADER], cwd=plugin_dir, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    import json

    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_sdk_loader_finds_the_provider_and_every_tool():
    mapping = load_with_sdk(ROOT)
    tools = mapping["sd_webui"]
    assert {name: cls for name, (cls, _) in tools.items()} == {
        "txt2img": "Txt2ImgTool", "img2img": "Img2ImgTool", "upscale": "UpscaleTool", "list_resources": "ListResourcesTool",
        "interrogate": "InterrogateTool", "png_info": "PngInfoTool", "check_server": "CheckServerTool"}
    assert "prompt" in tools["txt2img"][1] and "image" in tools["img2img"][1]


def test_manifest_follows_the_daemons_rules():
    manifest = yaml.safe_load((ROOT / "manifest.yaml").read_text())
    assert re.fullmatch(r"[a-z0-9_-]{1,64}", manifest["author"])
    assert re.fullmatch(r"[a-z0-9_-]{1,128}", manifest["name"])
    for version in (manifest["version"], manifest["meta"]["version"]):
        assert re.fullmatch(r"\d{1,4}(\.\d{1,4}){2}(-\w{1,16})?", str(version))
    assert set(manifest["tags"]) <= DAEMON_TAGS
    assert (ROOT / "_assets" / manifest["icon"]).is_file() and (ROOT / "_assets" / manifest["icon_dark"]).is_file()
    for provider_path in manifest["plugins"]["tools"]:
        provider = yaml.safe_load((ROOT / provider_path).read_text())
        assert (ROOT / "_assets" / provider["identity"]["icon"]).is_file()
        assert (ROOT / "_assets" / provider["identity"]["icon_dark"]).is_file()
        assert set(provider["identity"]["tags"]) <= DAEMON_TAGS
        for tool_path in provider["tools"]:
            assert (ROOT / tool_path).is_file()


def test_dependencies_are_in_requirements_and_not_in_a_pyproject():
    assert not (ROOT / "pyproject.toml").exists(), "the daemon would prefer pyproject.toml over requirements.txt"
    requirements = (ROOT / "requirements.txt").read_text()
    assert re.search(r"^dify_plugin==0\.10\.\d+$", requirements, re.M)
    for name in ("requests", "pydantic", "Pillow"):
        assert re.search(rf"^{name}\b", requirements, re.M)
    assert "pytest" not in requirements and "responses" not in requirements


def test_no_folder_is_named_like_what_difyignore_drops():
    dropped = {"lib", "build", "dist", "env", "var", "parts", "lib64"}
    for path in package.plugin_files(ROOT):
        assert not dropped & set(path.split("/")[:-1]), path


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return package.build(ROOT, tmp_path_factory.mktemp("pkg"))


def test_package_holds_the_plugin_and_nothing_else(built):
    with zipfile.ZipFile(built) as archive:
        names = archive.namelist()
        assert archive.comment == b""  # unsigned
    assert names == sorted(names)
    assert not any(n.endswith("/") for n in names)
    for required in ("manifest.yaml", "main.py", "requirements.txt", "README.md", "PRIVACY.md", "provider/sd_webui.yaml",
                     "provider/sd_webui.py", "tools/txt2img.yaml", "tools/txt2img.py", "sdwebui/client.py", "_assets/icon.svg"):
        assert required in names
    for name in names:
        assert not name.startswith(("tests/", ".venv/", ".git/", "scripts/", ".ci/")), name
        assert "__pycache__" not in name and not name.endswith(".pyc")
    assert sum(info.file_size for info in zipfile.ZipFile(built).infolist()) < package.MAX_UNCOMPRESSED


def test_the_unpacked_package_still_loads(built, tmp_path):
    with zipfile.ZipFile(built) as archive:
        archive.extractall(tmp_path)
    assert set(load_with_sdk(tmp_path)["sd_webui"]) == {"txt2img", "img2img", "upscale", "list_resources", "interrogate", "png_info", "check_server"}


@pytest.mark.parametrize(
    ("path", "ignored"),
    [("tests/test_x.py", True), ("a/__pycache__/m.pyc", True), (".venv/bin/python", True), ("tools/txt2img.py", False),
     ("sdwebui/lib/x.py", False), ("x.difypkg", True), ("README.md", False)],
)
def test_ignore_rules(path, ignored):
    assert package.is_ignored(path, package.read_ignore_rules(ROOT)) is ignored
