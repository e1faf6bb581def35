"""Files the controller reads and writes: whatever a path holds, reading it neither blocks nor
grows without bound, each bad file is one error line naming the file (and, inside JSON, the
field), a model must score finitely, and writes never go through a planted name or over a
file that is not ours."""

import json
import logging
import os
import shutil
import threading
import time
import zipfile
from hashlib import sha256

import numpy as np
import pytest

from controller import files
from controller.service.capture import Capture
from controller.policies import DEFAULT_MODEL, BpannPolicy, QLearningPolicy
from controller.service.rest import RestApi
from controller.core.settings import ConfigError
from models import bpann
from controller.policies import qlearning as qtable
from models.bpann import ModelError
from controller.policies.qlearning import QTable, QTableError
from fakes.switches import SPEC, Booted
from controller.core.spec import TopologyError, parse_spec
from controller.files import load_spec

READERS = {"spec": (load_spec, TopologyError), "model": (bpann.load, ModelError),
           "q-table": (qtable.load, QTableError)}
HOSTILE = {
    "non-utf8": (b'{"name": "h\xff"}', "not UTF-8: byte 0xff at offset 11"),
    "digits": (b'{"hidden": ' + b"7" * 5000 + b"}", "not valid JSON: a number of 5000 digits"),
    "nesting": (b"[" * 100_000 + b"]" * 100_000, "not valid JSON: nested too deeply"),
    "nan": (b'{"q": {"h2 r4 l1": [NaN, 1]}}', 'q["h2 r4 l1"][0]: not a finite number'),
    "overflow": (b'{"rewards": [-1e999]}', "rewards[0]: not a finite number"),
    "duplicate key": (b'{"q": {"s1": 5, "s1": 7}}', 'not valid JSON: key "s1" given twice in one object'),
}


def one_line_naming(exc: Exception, path) -> str:
    text = str(exc)
    assert text.startswith(f"{path}: ") and "\n" not in text, text
    return text


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("content, message", HOSTILE.values(), ids=list(HOSTILE))
def test_hostile_json_is_one_error_line_naming_the_file_and_field(tmp_path, reader, content, message):
    load, error = READERS[reader]
    path = tmp_path / "f.json"
    path.write_bytes(content)
    with pytest.raises(error) as err:
        load(path)
    assert message in one_line_naming(err.value, path)


def plant(path, kind: str) -> None:
    """/dev/null stands for /dev/zero here: a character device that cannot eat this process's
    memory should the check regress (tests/integration/test_hostile_files.py has /dev/zero,
    read by a controller under a memory limit)."""
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "char-device":
        path.symlink_to("/dev/null")
    else:
        path.mkdir()


def within(seconds: float, work, unblock) -> None:
    """Run work() in a thread; fail if it has not returned in time (then unblock() it)."""
    done = threading.Event()

    def run():
        try:
            work()
        finally:
            done.set()
    threading.Thread(target=run, daemon=True).start()
    if not done.wait(seconds):
        unblock()
        pytest.fail(f"still reading after {seconds} s")


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("kind, what", [("fifo", "a FIFO"), ("char-device", "a character device"),
                                        ("directory", "a directory")])
def test_only_regular_files_are_read_and_a_fifo_does_not_block(tmp_path, reader, kind, what):
    load, error = READERS[reader]
    path = tmp_path / "f.json"
    plant(path, kind)
    raised = []

    def work():
        with pytest.raises(error) as err:
            load(path)
        raised.append(one_line_naming(err.value, path))

    def unblock():   # a writer that opens and closes lets the blocked reader see end of file
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
    within(5, work, unblock)
    assert raised == [f"{path}: not a regular file ({what})"]


def test_a_file_over_the_cap_is_refused_without_reading_it_all(tmp_path):
    path = tmp_path / "big.json"
    path.write_bytes(b" " * (files.MAX_JSON_BYTES + 1))
    with pytest.raises(TopologyError, match="larger than the 4194304 bytes allowed"):
        load_spec(path)


def test_a_spec_of_ten_thousand_hosts_is_checked_in_linear_time():
    """Each entry was compared with every earlier one: 4,000 hosts took 2.8 s, 10,000 17 s,
    the 4 MB a spec may have minutes."""
    n = 10_000
    raw = {"name": "big", "switches": [{"name": "s1"}],
           "hosts": [{"name": f"h{i}", "ip": f"10.{i >> 16}.{i >> 8 & 255}.{i & 255}",
                      "mac": f"00:00:00:{i >> 16:02x}:{i >> 8 & 255:02x}:{i & 255:02x}"} for i in range(1, n)],
           "links": [{"nodes": [f"h{i}", "s1"], "capacity_mbps": 1} for i in range(1, n)]}
    start = time.process_time()
    assert len(parse_spec(raw).hosts) == n - 1
    assert time.process_time() - start < 3       # 0.15 s here


# -- the model ---------------------------------------------------------------------------------
@pytest.fixture
def model_copy(tmp_path):
    for suffix in (".json", ".npz"):
        shutil.copy(DEFAULT_MODEL.with_suffix(suffix), tmp_path / f"m{suffix}")
    return tmp_path / "m"


def test_a_model_whose_scores_overflow_is_refused_and_the_old_one_kept(model_copy, caplog):
    policy = BpannPolicy(model_copy)
    before = policy.model
    npz = model_copy.with_suffix(".npz")
    arrays = dict(np.load(npz))
    arrays["w2"][:] = 1e308          # finite weights, every score infinite
    np.savez(npz, **arrays)
    meta = json.loads(model_copy.with_suffix(".json").read_text())     # one model: its .json names the new .npz
    model_copy.with_suffix(".json").write_text(json.dumps({**meta, "npz_sha256": sha256(npz.read_bytes()).hexdigest()}))
    with pytest.raises(ModelError) as err:
        policy.reload()
    assert "scores are not finite on the input range (at utilisation=" in one_line_naming(err.value, npz)
    assert policy.model is before
    assert "overflow" not in caplog.text     # numpy's warnings are not extra lines


@pytest.mark.parametrize("kind", ["fifo", "char-device"])
def test_an_npz_that_is_not_a_regular_file_is_refused(model_copy, kind):
    npz = model_copy.with_suffix(".npz")
    npz.unlink()
    plant(npz, kind)
    raised = []

    def work():
        with pytest.raises(ModelError) as err:
            bpann.load(model_copy)
        raised.append(one_line_naming(err.value, npz))
    within(5, work, lambda: os.close(os.open(npz, os.O_WRONLY | os.O_NONBLOCK)))
    assert "not a regular file" in raised[0]


@pytest.mark.parametrize("content, message", [
    (b"garbage", "not a readable .npz (BadZipFile"),
    (None, "arrays of 41943040 bytes, over the 16777216 allowed"),      # 40 MB of zeros, deflated
])
def test_an_npz_that_is_not_a_model_archive_is_refused(model_copy, content, message):
    npz = model_copy.with_suffix(".npz")
    if content is None:
        with zipfile.ZipFile(npz, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("w1.npy", bytes(40 << 20))
    else:
        npz.write_bytes(content)
    with pytest.raises(ModelError) as err:
        bpann.load(model_copy)
    assert message in one_line_naming(err.value, npz)


# -- the Q-table -------------------------------------------------------------------------------
def test_the_table_file_is_strict_json(tmp_path):
    t = QTable(alpha=0.3, gamma=0.5, epsilon=0.1, q={"s": [float("nan"), 1]})
    with pytest.raises(QTableError, match=r"q\.json: not saved: a learnt value is not a finite number"):
        t.save(tmp_path / "q.json")
    assert os.listdir(tmp_path) == []


def test_a_file_that_is_not_a_q_table_is_never_overwritten(tmp_path, caplog):
    path = tmp_path / "q.json"
    shutil.copy(SPEC, path)
    with caplog.at_level(logging.WARNING):
        policy = QLearningPolicy(path)
        policy.table.update("s", -1.0, "s")
        policy.save()
        policy.save()
    assert path.read_bytes() == SPEC.read_bytes()
    assert len(caplog.records) == 1 and str(path) in caplog.records[0].getMessage()
    with pytest.raises(QTableError) as err:
        policy.reset()
    assert "; not overwritten" in one_line_naming(err.value, path)
    assert policy.table.updates == 1 and path.read_bytes() == SPEC.read_bytes()    # nothing reset
    path.unlink()
    policy.reset()
    assert policy.table.updates == 0 and qtable.load(path).q == {}


def test_a_symlink_planted_beside_the_table_is_not_followed(tmp_path):
    folder, victim = tmp_path / "tables", tmp_path / "victim"
    folder.mkdir()
    victim.write_text("precious\n")
    planted = ["q.json.tmp", ".q.json.tmp", "q.json~", "q.tmp"]     # what a writer might name it
    for name in planted:
        (folder / name).symlink_to(victim)
    table = QTable(alpha=0.3, gamma=0.5, epsilon=0.1, q={"h2 r4 l0": [-1.0, 3]})
    table.save(folder / "q.json")
    table.save(folder / "q.json")         # the second save replaces a table of ours
    assert victim.read_text() == "precious\n"
    assert all(os.readlink(folder / name) == str(victim) for name in planted)
    assert sorted(os.listdir(folder)) == sorted([*planted, "q.json"])
    assert not (folder / "q.json").is_symlink() and qtable.load(folder / "q.json").q == {"h2 r4 l0": [-1.0, 3]}


def test_write_atomic_leaves_nothing_behind_when_it_fails(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(IsADirectoryError):
        files.write_atomic(tmp_path / "d", b"x")     # os.replace cannot put a file over a directory
    assert os.listdir(tmp_path) == ["d"] and os.listdir(tmp_path / "d") == []


# -- capture -----------------------------------------------------------------------------------
@pytest.mark.parametrize("where, message", [("file", "File exists"), ("file/sub", "Not a directory"),
                                            ("fifo", "No such device or address")])
def test_a_capture_folder_that_cannot_be_written_is_one_config_error(tmp_path, where, message):
    (tmp_path / "file").write_text("x")
    (tmp_path / "fifo").mkdir()
    fifo = tmp_path / "fifo" / "links.csv"
    os.mkfifo(fifo)
    raised = []

    def work():
        with pytest.raises(ConfigError, match=f"LB_CAPTURE: cannot write to {tmp_path}.*: {message}") as err:
            Capture(tmp_path / where)
        raised.append(str(err.value))
    within(5, work, lambda: os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)))
    assert len(raised) == 1 and "\n" not in raised[0]


def test_rest_never_sends_nan():
    booted = Booted(policy="qlearning")
    booted.balancer.policy.table.rewards.append(float("nan"))   # no file can bring one in now
    try:
        body = b"".join(RestApi(booted.balancer)({"PATH_INFO": "/api/v1/policy", "REQUEST_METHOD": "GET"},
                                                 lambda *a: None))
    except ValueError:      # the strict encoder refused it (the server makes that a 500)
        return
    json.loads(body, parse_constant=lambda name: pytest.fail(f"{name} in {body!r}"))
