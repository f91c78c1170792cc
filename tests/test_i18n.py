"""Every text Dify shows is translated into its four languages; the LLM-facing texts stay English.

Walks manifest.yaml, provider/sd_webui.yaml and the generated tools/*.yaml (and checks that the
generated files are up to date with scripts/toolspec/).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
LANGUAGES = ("en_US", "zh_Hans", "ja_JP", "pt_BR")
TOOL_FILES = sorted((ROOT / "tools").glob("*.yaml"))
DOCUMENTS = [ROOT / "manifest.yaml", ROOT / "provider" / "sd_webui.yaml", *TOOL_FILES]


def _load(path: Path):
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _i18n_objects(node, where: str = ""):
    """Yield (path, mapping) for every mapping with an en_US key."""
    if isinstance(node, dict):
        if "en_US" in node:
            yield where, node
        for key, value in node.items():
            yield from _i18n_objects(value, f"{where}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _i18n_objects(value, f"{where}[{index}]")


def _ids(paths):
    return [str(path.relative_to(ROOT)) for path in paths]


def test_tool_yamls_found():
    assert {path.stem for path in TOOL_FILES} >= {"txt2img", "img2img", "upscale", "list_resources"}


@pytest.mark.parametrize("path", DOCUMENTS, ids=_ids(DOCUMENTS))
def test_every_i18n_object_has_all_languages(path):
    objects = list(_i18n_objects(_load(path)))
    assert objects, f"no I18n objects found in {path.name}"
    problems = []
    for where, mapping in objects:
        for language in LANGUAGES:
            value = mapping.get(language)
            if not isinstance(value, str) or not value.strip():
                problems.append(f"{where}: {language} missing or empty")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", TOOL_FILES, ids=_ids(TOOL_FILES))
def test_tool_identity_and_descriptions(path):
    tool = _load(path)
    assert set(LANGUAGES) <= set(tool["identity"]["label"])
    assert set(LANGUAGES) <= set(tool["description"]["human"])
    llm = tool["description"]["llm"]
    assert isinstance(llm, str) and llm.strip(), "description.llm is empty"
    assert llm.isascii(), "description.llm must stay English"


@pytest.mark.parametrize("path", TOOL_FILES, ids=_ids(TOOL_FILES))
def test_tool_parameters_are_described(path):
    parameters = _load(path)["parameters"]
    assert parameters
    for parameter in parameters:
        name = parameter["name"]
        for field in ("label", "human_description"):
            assert isinstance(parameter.get(field), dict), f"{name}: no {field}"
            assert set(LANGUAGES) <= set(parameter[field]), f"{name}: {field} lacks a language"
        for option in parameter.get("options") or []:
            assert set(LANGUAGES) <= set(option["label"]), f"{name}: option {option['value']} lacks a language"
        if parameter.get("form") == "llm":
            description = parameter.get("llm_description")
            assert isinstance(description, str) and description.strip(), f"{name}: form llm needs llm_description"
        if "llm_description" in parameter:
            assert isinstance(parameter["llm_description"], str), f"{name}: llm_description must be a plain string"
            assert parameter["llm_description"].isascii(), f"{name}: llm_description must stay English"


def test_generated_tool_yamls_are_up_to_date():
    spec = importlib.util.spec_from_file_location("build_tool_yaml", ROOT / "scripts" / "build_tool_yaml.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--check"]) == 0, "tools/*.yaml are stale: run python scripts/build_tool_yaml.py"
