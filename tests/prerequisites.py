"""What the integration tests need from the machine, said in one line each, so that a missing
piece reads as 'run this' rather than as a traceback deep in a test."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def lab_missing() -> str | None:
    """Why a lab (root, Mininet, a running Open vSwitch) cannot start here, or None."""
    if os.geteuid() != 0:
        return "needs root (Mininet, Open vSwitch)"
    if importlib.util.find_spec("mininet") is None:
        return "no Mininet Python package: run scripts/setup.sh"
    for tool in ("mn", "mnexec", "ovs-vsctl", "ovs-ofctl", "iperf3", "ethtool"):
        if shutil.which(tool) is None:
            return f"'{tool}' not installed: run scripts/setup.sh"
    if subprocess.run(["ovs-vsctl", "--timeout=3", "show"], capture_output=True).returncode != 0:
        return "Open vSwitch is not running: run scripts/setup.sh"
    return None


def browser_missing() -> str | None:
    """Why the web page cannot be tested in a real browser here (Selenium driving Debian's
    headless Chromium), or None."""
    if importlib.util.find_spec("selenium") is None:
        return "no selenium in .venv: run scripts/setup.sh"
    for tool, package in (("chromium", "chromium"), ("chromedriver", "chromium-driver")):
        if shutil.which(tool) is None:
            return f"'{tool}' not installed (Debian package {package}): run scripts/setup.sh"
    return None


def venv_problem(name: str) -> str | None:
    """Why an environment (main: .venv, ryu: .venv-ryu) is missing, stale or broken, or None:
    scripts/make-venv's own check, so the test and the set-up agree on what complete means."""
    check = subprocess.run([str(ROOT / "scripts" / "make-venv"), "--check", name],
                           capture_output=True, text=True, timeout=60)
    return None if check.returncode == 0 else (check.stdout + check.stderr).strip()
