"""Integration tests: a real controller process, real Open vSwitch, real Mininet hosts and
traffic. Missing prerequisites skip a test locally; with CI=true they fail it, because in CI
a skip would hide a broken install."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from topologies.lab import ROOT, Lab

H1H7 = ROOT / "topologies" / "h1h7.json"
RYU_PYTHON = ROOT / ".venv-ryu" / "bin" / "python"


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


def require(condition: bool, why: str) -> None:
    if not condition:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and a prerequisite is missing: {why}")
        pytest.skip(why)


def require_lab() -> None:
    require(os.geteuid() == 0, "needs root (Mininet, Open vSwitch)")
    for tool in ("mn", "mnexec", "ovs-vsctl", "ovs-ofctl", "iperf3", "ethtool"):
        require(shutil.which(tool) is not None, f"'{tool}' not installed: run scripts/setup.sh")
    ovs = subprocess.run(["ovs-vsctl", "--timeout=3", "show"], capture_output=True)
    require(ovs.returncode == 0, "Open vSwitch is not running: run scripts/setup.sh")


def assert_clean_log(lab: Lab) -> None:
    """No traceback, no OpenFlow error, no error-level line in the controller's log."""
    text = lab.log_text()
    bad = [line for line in text.splitlines()
           if "Traceback" in line or "OpenFlow error" in line or " ERROR " in line]
    assert bad == [], f"controller log {lab.log_path} has:\n" + "\n".join(bad[:20])


def running_lab(tmp_path_factory, name: str, **kwargs):
    """Body of a module fixture: a started H1-H7 lab whose hosts have all pinged each other."""
    require_lab()
    with Lab(H1H7, tmp_path_factory.mktemp(name), **kwargs) as lab:
        assert lab.pingall()[0] == 0
        yield lab


@pytest.fixture(scope="module")
def h1h7_lab(tmp_path_factory):
    require_lab()
    with Lab(H1H7, tmp_path_factory.mktemp("h1h7")) as lab:
        yield lab


@pytest.fixture
def ryu_python() -> Path:
    require(RYU_PYTHON.exists(), "no .venv-ryu: run scripts/setup.sh --with-ryu")
    return RYU_PYTHON
