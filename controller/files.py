"""Reading and writing the files the controller trusts least: the topology spec, the model
and the Q-table (and, for offline tools, the Topology Zoo networks the `topohub` package ships). An operator may point the controller at anything (a FIFO, /dev/zero, a
file of garbage) and a reload happens inside a signal handler, so reading must neither
block nor grow without bound, and every way a file can be wrong is one error line naming
the file (and, inside JSON, the field), raised as the caller's own error class.

Below everything but the core's pure values: topologies, models, policies and the service read through it.
"""

from __future__ import annotations

import json
import math
import os
import stat
import tempfile
from pathlib import Path

from controller.core.spec import Spec, TopologyError, parse_spec
from controller.core.zoo import ZOO_PREFIX, ZooNetwork, parse_zoo

MAX_JSON_BYTES = 4 << 20     # our specs, models' metadata and Q-tables are kilobytes
MAX_DIGITS = 100             # a dpid has 20 digits; Python's int() raises beyond 4300
_KINDS = {stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
          stat.S_IFDIR: "a directory", stat.S_IFSOCK: "a socket"}


def read_bytes(path: str | Path, limit: int, error: type[Exception]) -> bytes:
    """The bytes of a regular file of at most `limit` bytes. The file is opened first and
    checked after (fstat), so it cannot be swapped between check and read; O_NONBLOCK makes
    opening a FIFO return at once instead of waiting for a writer."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise error(f"{path}: not a regular file ({_KINDS.get(stat.S_IFMT(mode), 'special')})")
        with open(fd, "rb", closefd=False) as f:
            data = f.read(limit + 1)       # the size could have changed since fstat
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise error(f"{path}: larger than the {limit} bytes allowed")
    return data


def read_json(path: str | Path, error: type[Exception], limit: int = MAX_JSON_BYTES) -> object:
    """Strict JSON from a file read as above: UTF-8, integers of at most MAX_DIGITS digits,
    nesting within the interpreter's recursion limit, no NaN or infinity anywhere (Python's
    json reads NaN, Infinity and 1e999, which JSON does not have), and no key twice in one
    object (Python's json keeps the last silently, so a file could say two things)."""
    data = read_bytes(path, limit, error)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start}") from None
    try:
        value = json.loads(text, parse_int=_int, object_pairs_hook=_unique)
    except json.JSONDecodeError as exc:
        raise error(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}") from None
    except ValueError as exc:       # from _int or _unique
        raise error(f"{path}: not valid JSON: {exc}") from None
    except RecursionError:
        raise error(f"{path}: not valid JSON: nested too deeply") from None
    where = _not_finite(value)
    if where is not None:
        raise error(f"{path}: {where}: not a finite number")
    return value


def _int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_DIGITS:
        raise ValueError(f"a number of {digits} digits")
    return int(text)


def _unique(pairs: list[tuple[str, object]]) -> dict:
    out = dict(pairs)
    if len(out) < len(pairs):
        seen = set()
        key = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise ValueError(f"key {json.dumps(key)} given twice in one object")
    return out


def _not_finite(value: object) -> str | None:
    """Where (as `q["2:0 3:1"][1]`) a NaN or infinity is, or None. Iterative: data nested
    nearly as deep as the parser allows would exhaust the recursion of a recursive walk."""
    todo = [("", value)]
    while todo:
        where, v = todo.pop()
        if isinstance(v, float) and not math.isfinite(v):
            return where or "the value"
        if isinstance(v, dict):
            todo.extend((_member(where, k), x) for k, x in v.items())
        elif isinstance(v, list):
            todo.extend((f"{where}[{i}]", x) for i, x in enumerate(v))
    return None


def _member(where: str, key: str) -> str:
    if not key.isidentifier():
        return f"{where}[{json.dumps(key)}]"
    return f"{where}.{key}" if where else key


def write_atomic(path: str | Path, data: bytes, mode: int | None = None) -> None:
    """Replace `path` with `data`: a crash leaves the old file or the new one, never half of
    one. The temporary file gets a random name, created exclusively (O_CREAT | O_EXCL) in the
    same directory, so a file or symlink planted beside the target is never written through.
    It is created readable by its owner only, unless `mode` says otherwise."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with open(fd, "wb") as f:
            if mode is not None:
                os.fchmod(f.fileno(), mode)
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def load_spec(path: str | Path) -> Spec:
    """Read and validate a spec file; raise TopologyError naming the file and field."""
    return parse_spec(read_json(path, TopologyError), source=str(path))


def zoo_names() -> list[str]:
    """The Topology Zoo networks topohub ships, by file name (e.g. Bics, TataNld)."""
    import importlib.resources

    import topohub
    folder = importlib.resources.files(topohub) / "data" / "topozoo"
    return sorted(p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json"))


def load_zoo(name: str) -> ZooNetwork:
    """A Topology Zoo network by its topohub name, case-insensitive (bics, Bics, topozoo/Bics).
    topohub is imported here, late: the controller itself never needs it."""
    import topohub
    known = {n.lower(): n for n in zoo_names()}
    key = known.get(name.removeprefix(ZOO_PREFIX).lower())
    if key is None:
        raise TopologyError(f"{ZOO_PREFIX}{name}: not a Topology Zoo network topohub ships "
                            f"(try one of {', '.join(sorted(known.values())[:8])}, ...)")
    return parse_zoo(topohub.get(ZOO_PREFIX + key), key)
