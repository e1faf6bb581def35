"""Both environments build from locks/ alone, every file hash-checked, and neither a failed nor
an interrupted build touches the environment in use. These need the package index (or pip's
cache): in CI they always run; elsewhere they are skipped only when neither answers."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.prerequisites import ROOT
from tests.unit.test_locks import read_lock
from topologies.lab import wait_until

pytestmark = pytest.mark.network
MAKE_VENV = str(ROOT / "scripts" / "make-venv")
LOCKS = {"main": "requirements.txt", "ryu": "requirements-ryu.txt"}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """Both environments, each built once from the lock into a temporary folder."""
    where = tmp_path_factory.mktemp("venvs")
    probe = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--require-hashes",
                            "-d", str(where / "probe"), "-r", str(ROOT / "locks" / "requirements-bootstrap.txt")],
                           capture_output=True, text=True, timeout=300)
    if probe.returncode != 0 and os.environ.get("CI") != "true":
        pytest.skip(f"neither the package index nor pip's cache answers: {probe.stderr.strip()[-200:]}")
    dirs = {}
    for name in LOCKS:
        dirs[name] = where / f"venv-{name}"
        run = subprocess.run([MAKE_VENV, name, str(dirs[name])], capture_output=True, text=True, timeout=1200)
        assert run.returncode == 0, f"make-venv {name} failed:\n{run.stdout}\n{run.stderr}"
    return dirs


def installed(venv: Path) -> dict[str, str]:
    freeze = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "freeze", "--all"],
                            capture_output=True, text=True, check=True).stdout
    return {re.sub(r"[-_.]+", "-", n).lower(): v for n, v in re.findall(r"^([^=\s]+)==(\S+)$", freeze, re.M)}


def check(venv: Path, name: str = "ryu", **env) -> subprocess.CompletedProcess:
    return subprocess.run([MAKE_VENV, "--check", name, str(venv)], capture_output=True, text=True,
                          env={**os.environ, **env})


@pytest.mark.parametrize("name", LOCKS)
def test_an_environment_holds_exactly_what_its_lock_pins(built, name):
    locked = {n: e["version"] for n, e in read_lock(ROOT / "locks" / LOCKS[name]).items()}
    assert installed(built[name]) == locked
    assert check(built[name], name).returncode == 0


def changed_locks(tmp_path: Path, edit) -> Path:
    """A copy of locks/ with the Ryu lock edited."""
    locks = tmp_path / "locks"
    shutil.copytree(ROOT / "locks", locks)
    lock = locks / "requirements-ryu.txt"
    lock.write_text(edit(lock.read_text()))
    assert lock.read_text() != (ROOT / "locks" / "requirements-ryu.txt").read_text()
    return locks


def test_a_lock_with_a_wrong_hash_fails_and_leaves_the_environment_as_it_was(built, tmp_path):
    venv = built["ryu"]
    before, target = installed(venv), os.readlink(venv)
    bad = changed_locks(tmp_path, lambda t: re.sub(r"(ryu==4\.34 \\\n\s+--hash=sha256:)[0-9a-f]{64}",
                                                    r"\g<1>" + "0" * 64, t))
    run = subprocess.run([MAKE_VENV, "ryu", str(venv)], capture_output=True, text=True, timeout=600,
                         env={**os.environ, "LOCKS": str(bad)})
    assert run.returncode == 1
    assert "DO NOT MATCH THE HASHES" in run.stderr
    assert f"installing requirements-ryu.txt failed; {venv} is as it was. Retry: scripts/make-venv ryu" in run.stderr
    assert os.readlink(venv) == target and installed(venv) == before
    assert sorted(p.name for p in Path(f"{venv}.d").iterdir()) == [".lock", Path(target).name]
    assert check(venv).returncode == 0


def test_a_build_killed_midway_leaves_the_environment_in_use_working(built, tmp_path):
    """As by the OOM killer or a CI time-out: no signal handler gets to run."""
    venv = built["ryu"]
    target = os.readlink(venv)
    newer = changed_locks(tmp_path, lambda t: "# a change that makes this another lock\n" + t)
    proc = subprocess.Popen([MAKE_VENV, "ryu", str(venv)], env={**os.environ, "LOCKS": str(newer)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_until(lambda: len(list(Path(f"{venv}.d").glob("*/bin/pip"))) > 1, 120, 0.05,
                   what="the new build to start installing")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert os.readlink(venv) == target
    assert check(venv).returncode == 0
    assert "up to date" not in check(venv, LOCKS=str(newer)).stdout     # and the next run builds it
    rerun = subprocess.run([MAKE_VENV, "ryu", str(venv)], capture_output=True, text=True, timeout=600,
                           env={**os.environ, "LOCKS": str(newer)})
    assert rerun.returncode == 0, rerun.stderr
    assert check(venv, LOCKS=str(newer)).returncode == 0 and os.readlink(venv) != target
