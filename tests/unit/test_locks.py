"""locks/ agrees with the human-edited requirements files it is generated from (scripts/lock):
a requirement edited, added or removed without re-locking fails here, offline."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
BOOTSTRAP = "requirements-bootstrap.txt"
INPUTS = {"requirements.txt": ["requirements.txt", BOOTSTRAP],
          "requirements-ryu.txt": ["requirements-ryu.txt", BOOTSTRAP],
          BOOTSTRAP: [BOOTSTRAP]}


def read_inputs(root: Path, names: list[str]) -> dict[str, Requirement]:
    reqs = {}
    for name in names:
        for line in (root / name).read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                req = Requirement(line)
                reqs[canonicalize_name(req.name)] = req
    return reqs


def read_lock(path: Path) -> dict[str, dict]:
    """Each locked package: its version, hashes and what needs it (its '# via' lines)."""
    packages = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", path.read_text().split("\n", 2)[2]):
        head = re.match(r"([A-Za-z0-9._-]+)==(\S+) \\", block)
        assert head, f"{path}: not a pinned, hashed entry: {block[:80]!r}"
        via = re.findall(r"#\s+(?:via\s+)?(-r \S+|[A-Za-z0-9._-]+)\s*$", block, re.M)
        packages[canonicalize_name(head[1])] = {
            "version": head[2], "hashes": re.findall(r"--hash=sha256:([0-9a-f]{64})", block),
            "via": {v if v.startswith("-r") else canonicalize_name(v) for v in via}}
    return packages


def disagreements(root: Path, lock: str) -> list[str]:
    """What makes locks/<lock> differ from its inputs (empty: they agree)."""
    locked, inputs = read_lock(root / "locks" / lock), read_inputs(root, INPUTS[lock])
    problems = [f"{name} ({req}) is not locked" for name, req in inputs.items() if name not in locked]
    problems += [f"{name}=={locked[name]['version']} is locked, the input asks {req}"
                 for name, req in inputs.items()
                 if name in locked and not req.specifier.contains(locked[name]["version"], prereleases=True)]
    for name, entry in locked.items():
        as_input = any(v.startswith("-r") for v in entry["via"])
        if not entry["hashes"]:
            problems.append(f"{name} has no hash")
        if as_input != (name in inputs):
            problems.append(f"{name} is {'no longer ' if as_input else ''}an input")
        elif not as_input and not entry["via"] & locked.keys():
            problems.append(f"nothing needs {name}")
    return problems


@pytest.mark.parametrize("lock", INPUTS)
def test_each_lock_agrees_with_its_inputs(lock):
    assert disagreements(ROOT, lock) == [], f"locks/{lock} is out of date: run scripts/lock"


@pytest.mark.parametrize("lock", ["requirements.txt", "requirements-ryu.txt"])
def test_each_environment_locks_the_build_tools_exactly_as_installed_first(lock):
    """make-venv installs the bootstrap lock first; the environment's lock must not change it."""
    bootstrap, locked = read_lock(ROOT / "locks" / BOOTSTRAP), read_lock(ROOT / "locks" / lock)
    for name, entry in bootstrap.items():
        assert (locked[name]["version"], locked[name]["hashes"]) == (entry["version"], entry["hashes"]), name


@pytest.mark.parametrize("edit, problem", [
    (lambda s: s.replace("numpy==2.4.6", "numpy==2.4.7"), "numpy==2.4.6 is locked, the input asks numpy==2.4.7"),
    (lambda s: s.replace("scapy==2.8.0\n", ""), "scapy is no longer an input"),
    (lambda s: s + "six==1.17.0\n", "six is an input"),
    (lambda s: s + "attrs==25.1.0\n", "attrs (attrs==25.1.0) is not locked"),
])
def test_an_input_edited_without_relocking_is_caught(tmp_path, edit, problem):
    for name in INPUTS:
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "locks", tmp_path / "locks")
    (tmp_path / "requirements.txt").write_text(edit((ROOT / "requirements.txt").read_text()))
    assert problem in disagreements(tmp_path, "requirements.txt")
