"""Hostile files and signals against a real controller process (no Mininet: its switches are
emulated by benchmarks/emulator.py, so paths can be scored).

- A model replaced by a non-UTF-8 byte, a 5000-digit number, deep nesting, a FIFO, /dev/zero or
  weights whose scores overflow, then reloaded by SIGHUP and by REST: the process lives, never
  blocks (REST answers within a second), its memory does not grow, one warning line names the
  file, REST answers a JSON 4xx naming it, and the previous model goes on scoring paths.
- Q-tables: one with NaN is refused in one line and REST output stays JSON; a file that is not a
  Q-table is not overwritten by a reset; a symlink planted beside the table is not followed.
- Launch-time mistakes (bad spec, model, Q-table, LB_* variable, --listen, --capture) are one
  line and a non-zero exit.

Each controller runs under a 1 GiB address-space limit: should reading /dev/zero regress, it
fails with MemoryError there instead of taking this shared machine's memory.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from benchmarks.emulator import Emulator
from controller.policies import DEFAULT_MODEL
from models import bpann
from controller.policies import qlearning as qtable
from tests.integration.conftest import H1H7
from topologies.lab import ROOT, free_port, interrupt, user_env, wait_until
from controller.files import load_spec

MEMORY_LIMIT = 1 << 30


def strict_json(data: bytes):
    return json.loads(data, parse_constant=lambda name: pytest.fail(f"{name} is not JSON: {data[:300]!r}"))


def limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


class Controller:
    """`python -m controller` on free ports, its log in a file; with `switches`, the H1-H7
    switches emulated on an asyncio loop in a thread, the topology discovered and h1, h7 known."""

    def __init__(self, workdir: Path, *args: str, switches: bool = False, manager: dict | None = None) -> None:
        """With `manager` (LB_* variables), osken-manager runs the app, configured by those
        variables alone (the topology and REST port among them), instead of the launcher."""
        self.ofp_port, self.rest_port = free_port(), free_port()
        self.log_path = workdir / "controller.log"
        self.token = secrets.token_urlsafe(32)        # for a REST API that wants one on PUT and POST
        env = {**user_env(), "LB_API_TOKEN": self.token}
        if manager is None:
            command = [sys.executable, "-m", "controller", "--topology", str(H1H7), "--ofp-port", str(self.ofp_port),
                       "--rest-port", str(self.rest_port), "--metrics-port", "0", *args]
        else:
            command = [str(Path(sys.executable).parent / "osken-manager"), "--ofp-listen-host", "127.0.0.1",
                       "--ofp-tcp-listen-port", str(self.ofp_port), *args, "controller/app.py"]
            env.update({"LB_TOPOLOGY": str(H1H7), "LB_REST_PORT": str(self.rest_port), "LB_METRICS_PORT": "0",
                        **manager})
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True, preexec_fn=limit_memory)
        self.loop = self.emulator = None
        try:
            wait_until(self._answers, 30, what=f"the controller's REST API (log: {self.log_path})")
            if switches:
                self._emulate()
        except BaseException:
            self.stop()
            raise

    def _answers(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"controller exited with {self.proc.returncode}: {self.log()[-2000:]}")
        try:
            return self.api("topology")[0] == 200
        except OSError:
            return False

    def _emulate(self) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.emulator = Emulator(load_spec(H1H7), self.ofp_port)
        asyncio.run_coroutine_threadsafe(self.emulator.connect(), self.loop).result(10)
        wait_until(lambda: self.api("topology")[1]["complete"], 30, what="every H1-H7 link discovered")
        for host in ("h1", "h7"):
            self.loop.call_soon_threadsafe(self.emulator.announce, host)
        wait_until(lambda: self.api("paths?src=h1&dst=h7")[0] == 200, 10, what="h1 and h7 known")

    def api(self, resource_: str, method: str = "GET", body: dict | None = None,
            timeout: float = 5) -> tuple[int, object]:
        """(status, the body as strict JSON); for an error status, (status, the raw body)."""
        data, headers = None, {}
        if method != "GET":
            data = json.dumps(body or {}).encode()
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"}
        request = urllib.request.Request(f"http://127.0.0.1:{self.rest_port}/api/v1/{resource_}",
                                         method=method, data=data, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, strict_json(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def rss_kb(self) -> int:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))

    def stop(self) -> None:
        interrupt(self.proc)              # first: switches leaving would be logged as faults
        if self.emulator is not None:
            asyncio.run_coroutine_threadsafe(self.emulator.close(), self.loop).result(10)
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.loop.stop)


@pytest.fixture
def controller(tmp_path):
    started = []

    def start(*args: str, switches: bool = False, manager: dict | None = None) -> Controller:
        started.append(Controller(tmp_path, *args, switches=switches, manager=manager))
        return started[-1]
    yield start
    for c in started:
        c.stop()


# -- the model, reloaded by SIGHUP and by REST --------------------------------------------------
def replace_with(path: Path, kind: str) -> None:
    if kind == "non-utf8":
        path.write_bytes(path.read_bytes().replace(b'"logistic"', b'"logistic\xff"'))
    elif kind == "digits":
        path.write_bytes(b'{"hidden": ' + b"7" * 5000 + b"}")
    elif kind == "nesting":
        path.write_bytes(b"[" * 100_000 + b"]" * 100_000)
    elif kind == "fifo":
        path.unlink()
        os.mkfifo(path)
    elif kind == "dev-zero":
        path.unlink()
        path.symlink_to("/dev/zero")
    elif kind == "huge-weights":          # finite, but every score overflows to inf
        arrays = dict(np.load(path))
        arrays["w2"][:] = 1e308
        np.savez(path, **arrays)


def scores(c: Controller) -> list[tuple[list[float], float]]:
    """Each h1 -> h7 candidate's features and score, as REST gives them."""
    status, body = c.api("paths?src=h1&dst=h7", timeout=1)
    assert status == 200, body
    return [([p["utilisation"], p["loss"], p["latency_ms"], p["hops"]], p["score"]) for p in body["candidates"]]


@pytest.mark.parametrize("suffix, kind", [(".json", "non-utf8"), (".json", "digits"), (".json", "nesting"),
                                          (".json", "fifo"), (".json", "dev-zero"), (".npz", "fifo"),
                                          (".npz", "huge-weights")])
def test_a_hostile_model_reload_is_one_line_and_the_previous_model_keeps_scoring(tmp_path, controller, suffix, kind):
    model = tmp_path / "m"
    for s in (".json", ".npz"):
        shutil.copy(DEFAULT_MODEL.with_suffix(s), model.with_suffix(s))
    original = bpann.load(model)
    c = controller("--policy", "bpann", "--model", str(model), switches=True)
    hostile = model.with_suffix(suffix)
    replace_with(hostile, kind)
    rss_before = c.rss_kb()

    c.proc.send_signal(signal.SIGHUP)
    assert c.api("policy", timeout=1)[0] == 200           # not blocked: answers within a second
    wait_until(lambda: "SIGHUP" in c.log(), 10, what="the SIGHUP warning")
    assert c.proc.poll() is None
    lines = [line for line in c.log().splitlines() if str(hostile) in line]
    assert len(lines) == 1 and " WARNING lb.app: SIGHUP: " in lines[0], lines

    status, body = c.api("model/reload", method="POST", timeout=1)
    assert 400 <= status < 500, (status, body)
    error = strict_json(body)["error"]
    assert str(hostile) in error and "Traceback" not in error and "\n" not in error

    for features, score in scores(c):                     # the model loaded at start scores, finitely
        assert score == pytest.approx(original.predict(np.array([features]))[0], abs=1e-5)
    assert c.proc.poll() is None and "Traceback" not in c.log()
    assert c.rss_kb() < rss_before + 20_000, "reading the file grew the controller's memory"


# -- the Q-table --------------------------------------------------------------------------------
def q_json(q: dict, rewards: list) -> str:
    """A table as Python's json writes NaN (what the controller used to write)."""
    return json.dumps({"format": 2, "alpha": 0.3, "gamma": 0.5, "epsilon": 0.0, "decisions": 3, "updates": 3,
                       "rewards": rewards, "q": q})


def test_a_q_table_with_nan_is_refused_in_one_line_and_rest_stays_json(tmp_path, controller):
    table = tmp_path / "q.json"
    c = controller("--policy", "shortest", "--q-table", str(table))
    table.write_text(q_json({"h2 r4 l0": [float("nan"), 1], "h3 r5 l0": [-1.0, 2]}, [float("nan"), -1.0]))
    status, body = c.api("policy", method="PUT", body={"policy": "qlearning"})
    assert status == 200, body
    status, body = c.api("policy")                       # strict_json: no NaN, no Infinity
    assert status == 200 and body["policy"] == "qlearning" and body["states"] == 0, body
    lines = [line for line in c.log().splitlines() if str(table) in line]
    assert len(lines) == 1 and "not a finite number" in lines[0], lines


def test_reset_does_not_overwrite_a_file_that_is_not_a_q_table(tmp_path, controller):
    table = tmp_path / "q.json"
    c = controller("--policy", "qlearning", "--q-table", str(table))
    shutil.copy(H1H7, table)                              # someone's file, where the table was to go
    status, body = c.api("qtable/reset", method="POST")
    assert status == 409, (status, body)
    error = strict_json(body)["error"]
    assert error.startswith(f"{table}: ") and "not overwritten" in error and "\n" not in error
    assert table.read_bytes() == H1H7.read_bytes()
    assert c.proc.poll() is None and "Traceback" not in c.log()


def test_a_symlink_planted_at_a_temporary_name_is_not_followed(tmp_path, controller):
    folder, victim = tmp_path / "tables", tmp_path / "victim"
    folder.mkdir()
    victim.write_text("precious\n")
    planted = ["q.json.tmp", ".q.json.tmp", "q.json~", "q.tmp", ".q.json.swp"]
    for name in planted:
        (folder / name).symlink_to(victim)
    table = folder / "q.json"
    c = controller("--policy", "qlearning", "--q-table", str(table))
    assert c.api("qtable/reset", method="POST")[0] == 200
    assert c.api("qtable/reset", method="POST")[0] == 200      # and over a table of ours
    assert victim.read_text() == "precious\n"
    assert all(os.readlink(folder / name) == str(victim) for name in planted)
    assert sorted(os.listdir(folder)) == sorted([*planted, "q.json"])
    assert not table.is_symlink() and qtable.load(table).q == {}


# -- launch-time mistakes -----------------------------------------------------------------------
def launch(command: list[str], env: dict | None = None) -> tuple[int | None, list[str]]:
    """Exit code and stderr lines; (None, ...) if it was still running after 30 s."""
    try:
        run = subprocess.run(command, cwd=ROOT, env={**user_env(), **(env or {})}, capture_output=True,
                             text=True, timeout=30, preexec_fn=limit_memory, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        return None, (exc.stderr or b"").decode(errors="replace").splitlines()
    return run.returncode, run.stderr.splitlines()


def controller_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "controller", "--ofp-port", str(free_port()), "--rest-port", "0",
            "--metrics-port", "0", *args]


def hostile_json(path: Path, kind: str) -> None:
    path.write_bytes({"non-utf8": b'{"name": "h\xff"}', "nesting": b"[" * 100_000 + b"]" * 100_000,
                      "digits": b'{"format": ' + b"1" * 5000 + b"}"}[kind])


@pytest.mark.parametrize("kind", ["non-utf8", "nesting", "digits"])
@pytest.mark.parametrize("what", ["spec", "model", "q-table"])
def test_a_hostile_file_at_launch_is_one_error_line(tmp_path, what, kind):
    if what == "model":
        shutil.copy(DEFAULT_MODEL.with_suffix(".npz"), tmp_path / "m.npz")
        bad, args = tmp_path / "m.json", ("--policy", "bpann", "--model", str(tmp_path / "m"))
    elif what == "spec":
        bad, args = tmp_path / "spec.json", ("--topology", str(tmp_path / "spec.json"))
    else:
        bad, args = tmp_path / "q.json", ("--policy", "qlearning", "--q-table", str(tmp_path / "q.json"))
    hostile_json(bad, kind)
    code, stderr = launch(controller_command(*args))
    assert code == 2 and len(stderr) == 1 and stderr[0].startswith(f"error: {bad}: "), (code, stderr)


def test_a_nan_q_table_at_launch_is_one_error_line_naming_the_entry(tmp_path):
    table = tmp_path / "q.json"
    table.write_text(q_json({"2:0 3:0": [-1.0, float("nan")]}, []))
    code, stderr = launch(controller_command("--policy", "qlearning", "--q-table", str(table)))
    assert (code, stderr) == (2, [f'error: {table}: q["2:0 3:0"][1]: not a finite number'])


def test_osken_manager_runs_the_app_as_its_lb_variables_say(controller):
    """README's second way to run: `LB_TOPOLOGY=... osken-manager controller/app.py`. Each
    variable shows: the spec (discovery completes, hosts by name), the REST port, the policy,
    k paths (2 of H1-H7's 3 h1 -> h7 paths), the token, and the metrics port."""
    metrics_port = free_port()
    c = controller(switches=True, manager={"LB_POLICY": "least-loaded", "LB_K_PATHS": "2",
                                           "LB_METRICS_PORT": str(metrics_port)})
    assert c.api("policy")[1]["policy"] == "least-loaded"
    paths = c.api("paths?src=h1&dst=h7")[1]
    assert (paths["policy"], [p["path"] for p in paths["candidates"]]) == \
        ("least-loaded", [["s1", "s2", "s7"], ["s1", "s3", "s4", "s7"]])
    assert c.api("policy", method="PUT", body={"policy": "shortest"})[0] == 200      # LB_API_TOKEN
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
        assert "lb_datapath_connects_total 8.0" in r.read().decode()


@pytest.mark.parametrize("env, named", [({"LB_K_PATHS": "soon"}, "LB_K_PATHS: expected int"),
                                        ({"LB_POLICY": "fastest"}, "policy: unknown 'fastest'"),
                                        ({"LB_TOPOLOGY": "/nonexistent.json"}, "/nonexistent.json: cannot read"),
                                        ({"LB_CAPTURE": "/proc/capture"}, "LB_CAPTURE: cannot write")])
def test_osken_manager_with_a_bad_variable_is_one_error_line(env, named):
    manager = Path(sys.executable).parent / "osken-manager"
    code, stderr = launch([str(manager), "--ofp-listen-host", "127.0.0.1", "--ofp-tcp-listen-port",
                           str(free_port()), "controller/app.py"], {"LB_REST_PORT": "0", "LB_METRICS_PORT": "0", **env})
    ours = [line for line in stderr if line.startswith("error: ")]
    assert code not in (0, None) and ours == [line for line in stderr if named in line] and len(ours) == 1, stderr
    assert not any("Traceback" in line for line in stderr), stderr


def test_listen_on_an_unresolvable_host_is_one_error_line():
    code, stderr = launch(controller_command("--listen", "no-such-host.invalid"))
    assert code == 2 and len(stderr) == 1 and stderr[0].startswith("error: --listen, --ofp-port: "), (code, stderr)
    assert "no-such-host.invalid" in stderr[0]


@pytest.mark.parametrize("where", ["file", "file/sub", "fifo"])
def test_capture_to_a_bad_path_is_one_error_line(tmp_path, where):
    (tmp_path / "file").write_text("x")
    (tmp_path / "fifo").mkdir()
    os.mkfifo(tmp_path / "fifo" / "links.csv")
    code, stderr = launch(controller_command("--capture", str(tmp_path / where)))
    assert code == 2 and len(stderr) == 1 and stderr[0].startswith(f"error: --capture: cannot write to {tmp_path}"), \
        (code, stderr)
