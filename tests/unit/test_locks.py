"""locks/ agrees with the human-edited requirements files it is generated from (scripts/lock):
an input edited, or a lock edited by hand, without re-locking fails here, offline. The
checksums that scripts/lock appends catch any change; the checks of what is pinned say what
the change was."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
BOOTSTRAP = {"requirements.txt": "requirements-bootstrap.txt",
             "requirements-ryu.txt": "requirements-ryu-bootstrap.txt"}
INPUTS = {"requirements.txt": ["requirements.txt", BOOTSTRAP["requirements.txt"]],
          "requirements-ryu.txt": ["requirements-ryu.txt", BOOTSTRAP["requirements-ryu.txt"]],
          **{tools: [tools] for tools in BOOTSTRAP.values()}}
TRAILER = re.compile(r"# locked from (.+): inputs sha256 ([0-9a-f]{64}), body sha256 ([0-9a-f]{64})\n\Z")


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
    body = TRAILER.sub("", path.read_text())
    for block in re.split(r"\n(?=[A-Za-z0-9])", body.split("\n", 2)[2].rstrip("\n")):
        head = re.match(r"([A-Za-z0-9._-]+)==(\S+) \\", block)
        assert head, f"{path}: not a pinned, hashed entry: {block[:80]!r}"
        via = re.findall(r"#\s+(?:via\s+)?(-r \S+|[A-Za-z0-9._-]+)\s*$", block, re.M)
        packages[canonicalize_name(head[1])] = {
            "version": head[2], "hashes": re.findall(r"--hash=sha256:([0-9a-f]{64})", block),
            "via": {v if v.startswith("-r") else canonicalize_name(v) for v in via}}
    return packages


def checksums(root: Path, lock: str) -> list[str]:
    """Whether the lock's trailer still matches its inputs and its own body."""
    text = (root / "locks" / lock).read_text()
    trailer = TRAILER.search(text)
    if trailer is None:
        return ["no 'locked from' trailer"]
    inputs = hashlib.sha256(b"".join((root / name).read_bytes() for name in INPUTS[lock])).hexdigest()
    body = hashlib.sha256(text[:trailer.start()].encode()).hexdigest()
    return ([] if trailer[1].split() == INPUTS[lock] else [f"locked from {trailer[1]}, not {INPUTS[lock]}"]) + \
        ([] if trailer[2] == inputs else ["an input changed since"]) + ([] if trailer[3] == body else ["edited by hand"])


def disagreements(root: Path, lock: str) -> list[str]:
    """What makes locks/<lock> differ from its inputs (empty: they agree)."""
    locked, inputs = read_lock(root / "locks" / lock), read_inputs(root, INPUTS[lock])
    problems = checksums(root, lock) + [f"{name} ({req}) is not locked" for name, req in inputs.items() if name not in locked]
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


@pytest.mark.parametrize("lock", BOOTSTRAP)
def test_each_environment_locks_the_build_tools_exactly_as_installed_first(lock):
    """make-venv installs the build tools' lock first; the environment's lock must not change them."""
    bootstrap, locked = read_lock(ROOT / "locks" / BOOTSTRAP[lock]), read_lock(ROOT / "locks" / lock)
    for name, entry in bootstrap.items():
        assert (locked[name]["version"], locked[name]["hashes"]) == (entry["version"], entry["hashes"]), name


@pytest.mark.parametrize("edit, problems", [
    (lambda s: s.replace("numpy==2.4.6", "numpy==2.4.7"), ["numpy==2.4.6 is locked, the input asks numpy==2.4.7"]),
    (lambda s: s.replace("scapy==2.8.0\n", ""), ["scapy is no longer an input"]),
    (lambda s: s + "six==1.17.0\n", ["six is an input"]),
    (lambda s: s + "colorama==0.4.6\n", ["colorama (colorama==0.4.6) is not locked"]),
    (lambda s: s.replace("hypothesis==", "hypothesis[numpy]=="), []),    # what only the checksum sees
    (lambda s: s.replace("numpy==2.4.6", "numpy>=2"), []),
])
def test_an_input_edited_without_relocking_is_caught(tmp_path, edit, problems):
    copy(tmp_path)
    (tmp_path / "requirements.txt").write_text(edit((ROOT / "requirements.txt").read_text()))
    found = disagreements(tmp_path, "requirements.txt")
    assert "an input changed since" in found and set(problems) <= set(found)


@pytest.mark.parametrize("edit", [
    lambda s: re.sub(r"\nidna==\S+ \\\n(    .*\n)+", "\n", s, count=1),            # a block deleted
    lambda s: s.replace("idna==3.20", "idna==3.1"),                                   # a version changed
])
def test_a_lock_edited_by_hand_is_caught(tmp_path, edit):
    copy(tmp_path)
    lock = tmp_path / "locks" / "requirements.txt"
    edited = edit(lock.read_text())
    assert edited != lock.read_text()
    lock.write_text(edited)
    assert "edited by hand" in disagreements(tmp_path, "requirements.txt")


def copy(tmp_path: Path) -> None:
    for name in INPUTS:
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "locks", tmp_path / "locks")
