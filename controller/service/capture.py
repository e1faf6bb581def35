"""Capture of link metrics and path features, appended to CSV files after every poll, for
retraining. Each poll's rows go to disk in a single write on an O_APPEND descriptor, so a
crash or kill leaves whole rows (at worst a last line without its newline, which readers
drop), never a file that fails to load."""

from __future__ import annotations

import os
import stat
from itertools import permutations
from pathlib import Path

from controller.core.balancer import Balancer
from controller.core.settings import ConfigError

LINK_COLUMNS = ("time_s", "src", "src_port", "dst", "dst_port", "capacity_mbps", "rate_mbps",
                "utilisation", "loss", "latency_ms", "age_s")
PATH_COLUMNS = ("time_s", "src", "dst", "path", "utilisation", "loss", "latency_ms", "hops")


class Capture:
    def __init__(self, folder: str | Path) -> None:
        """Raises ConfigError naming the folder when it cannot be written to."""
        self.folder = Path(folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._fds = {name: self._open(self.folder / f"{name}.csv", columns)
                         for name, columns in (("links", LINK_COLUMNS), ("paths", PATH_COLUMNS))}
        except OSError as exc:
            raise ConfigError(f"LB_CAPTURE: cannot write to {exc.filename or folder}: {exc.strerror}") from None

    @staticmethod
    def _open(path: Path, columns: tuple[str, ...]) -> int:
        # O_NONBLOCK: a FIFO planted there fails at once (no reader) rather than blocking
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise ConfigError(f"LB_CAPTURE: cannot write to {path}: not a regular file")
        if st.st_size == 0:
            os.write(fd, (",".join(columns) + "\n").encode())
        else:   # a killed writer may have left a partial last line: cut it off
            data = path.read_bytes()
            if not data.endswith(b"\n"):
                os.truncate(path, data.rfind(b"\n") + 1)
        return fd

    def write(self, table: str, rows: list[tuple]) -> None:
        if rows:
            os.write(self._fds[table], "".join(",".join(map(_cell, r)) + "\n" for r in rows).encode())

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)


def snapshot(balancer: Balancer, now: float, wall_s: float) -> dict[str, list[tuple]]:
    """This moment's rows: every link, and every candidate path between every two known hosts.
    The wall time keeps milliseconds (a float cell keeps only 6 significant digits)."""
    name, wall_s = balancer.net.name, f"{wall_s:.3f}"
    links = [(wall_s, name(m.src.dpid), m.src.port, name(m.dst.dpid), m.dst.port, m.capacity_mbps,
              m.rate_mbps, m.utilisation, m.loss, m.latency_ms, m.age_s)
             for m in balancer.link_metrics(now)]
    paths = []
    hosts = sorted(balancer.net.hosts.values(), key=lambda h: h.ip)
    for src, dst in permutations(hosts, 2):
        for path in balancer.paths.candidates(balancer.net, src.at.dpid, dst.at.dpid):
            f = balancer.features(path, src, dst, now)
            paths.append((wall_s, balancer.net.host_name(src), balancer.net.host_name(dst),
                          ">".join(name(d) for d in path), f.utilisation, f.loss, f.latency_ms, f.hops))
    return {"links": links, "paths": paths}


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
