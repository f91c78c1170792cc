"""End-to-end fixtures: the plugin as a `python -m main` subprocess, a stand-in WebUI, a Dify-like file server."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness.file_server import FileServer
from tests.harness.plugin_process import PluginProcess
from tests.standin.webui import StandInWebUI

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def plugin():
    with PluginProcess(str(ROOT), env={"HEARTBEAT_INTERVAL": "1"}) as process:
        yield process


@pytest.fixture
def standin():
    with StandInWebUI("forge") as server:
        yield server


@pytest.fixture(scope="session")
def files():
    with FileServer() as server:
        yield server
