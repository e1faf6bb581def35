"""Retraining's decision and install (scripts/retrain.py): a worse candidate is refused and the
model in use left byte-identical, a better one is installed with the previous one kept beside
it, the running controller (here a real HTTP server on 127.0.0.1) is asked to reload, and
every way this can fail is one error naming the file or the peer, with nothing half-installed."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from controller.core.spec import TopologyError
from controller.files import load_spec, load_zoo
from models import bpann
from models.bpann import ModelError
from models.dataset import COLUMNS, LABEL, TRANSFER_COLUMNS, TRANSFER_LABEL, load_dataset
from models.evaluation import time_blocked_folds
from models.train import fit_bpann
from scripts import retrain
from topologies.generate import zoo
from topologies.lab import free_port

N = 240   # one sample a second


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> Path:
    """A probe-label samples file whose delay explodes as utilisation nears 1 (queueing)."""
    rng = np.random.default_rng(3)
    util, loss, latency = rng.uniform(0, 0.95, N), rng.uniform(0, 0.1, N), rng.uniform(0, 20, N)
    hops = rng.integers(2, 5, N)
    delay = 5 / (1 - util) + 2 * hops + 30 * loss + rng.normal(0, 0.2, N)
    path = tmp_path_factory.mktemp("data") / "h1h7.csv"
    rows = [f"{1.7e9 + i:.3f},h1,h7,s1>s2>s7,{u:.4f},{lo:.4f},{la:.4f},{h},{d:.4f},0"
            for i, (u, lo, la, h, d) in enumerate(zip(util, loss, latency, hops, delay))]
    path.write_text(",".join(COLUMNS) + "\n" + "\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="module")
def split(samples):
    data = load_dataset(samples)
    train, test = time_blocked_folds(data.times, retrain.HOLDOUT_BLOCKS)[-1]
    return data, train, test


@pytest.fixture(scope="module")
def models(split, tmp_path_factory) -> dict[str, Path]:
    """A good model (fit on the relation) and a bad one (fit on shuffled labels), as files."""
    data, train, _ = split
    folder = tmp_path_factory.mktemp("models")
    shuffled = np.random.default_rng(0).permutation(data.y[train])
    made = {"good": fit_bpann(data.x[train], data.y[train], 5), "bad": fit_bpann(data.x[train], shuffled, 5)}
    return {name: bpann.save(dataclasses.replace(m, meta={"label": data.label}), folder / name)[0].with_suffix("")
            for name, m in made.items()}


def place(model: Path, folder: Path, name: str) -> Path:
    """A copy of a model's two files as folder/name."""
    for s in (".npz", ".json"):
        (folder / name).with_suffix(s).write_bytes(model.with_suffix(s).read_bytes())
    return folder / name


def contents(model: Path) -> dict[str, bytes]:
    return {s: model.with_suffix(s).read_bytes() for s in (".npz", ".json")}


def settle(split, current: Path, candidate: Path, trial: dict, out: Path, port: int | None = None,
           exits: dict | None = None, errors: dict | None = None):
    data, _, test = split
    errors = errors or retrain.heldout_errors(data, test, bpann.load(current), bpann.load(candidate))
    report = {"model": str(current), "label": data.label, "reload_port": port,
              "held_out": {"trained": len(split[1]), "tested": len(test)}}
    return retrain.settle(report, errors, trial, candidate, current, contents(current), port, out, exits)


def rtt(current: float | None, candidate: float | None, loss: tuple = (0.0, 0.0)) -> dict:
    """The probe label's experiment figures, one seed: RTT mean and loss of each model."""
    return {"rtt_mean_ms": {"current": {"1": current}, "candidate": {"1": candidate}},
            "loss": {"current": {"1": loss[0]}, "candidate": {"1": loss[1]}}}


class Controller:
    """A real HTTP server on 127.0.0.1 answering the REST calls retraining makes, recording them."""

    def __init__(self, status: int = 200, model: str = "", reply: bytes | None = None) -> None:
        self.calls: list[tuple[str, str, str | None]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                owner.calls.append((self.command, self.path, self.headers.get("Authorization")))
                body = reply if reply is not None else (json.dumps({"policy": "bpann", "model": model}) if status == 200
                        else json.dumps({"error": "bpann.npz: not a readable .npz"})).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]

    def __enter__(self) -> Controller:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_the_held_out_samples_come_after_every_trained_one(split):
    data, train, test = split
    assert len(test) == N // retrain.HOLDOUT_BLOCKS
    assert data.times[train].max() < data.times[test].min() - retrain.GAP_S


def test_a_worse_candidate_is_refused_and_the_model_in_use_left_byte_identical(split, models, tmp_path):
    current = place(models["good"], tmp_path, "bpann")
    before = contents(current)
    code, report = settle(split, current, models["bad"], rtt(5.0, 5.0), tmp_path)
    assert code == 0 and report["decision"] == "kept"
    assert contents(current) == before
    assert not list(tmp_path.glob("bpann-previous*"))
    errors = report["held_out"]["errors"]
    assert errors["candidate"]["mae"] > errors["current"]["mae"]
    assert report["reasons"][0] == (f"held-out MAE: candidate {errors['candidate']['mae']:.4g} > in use "
                                    f"{errors['current']['mae']:.4g} (not better)")
    assert json.loads((tmp_path / "report.json").read_text()) == report
    assert retrain.describe(report).startswith(f"decision: kept {current} unchanged\n  - held-out MAE: candidate ")


def test_a_better_candidate_is_installed_with_the_previous_kept_and_the_controller_reloaded(
        split, models, tmp_path, monkeypatch):
    current = place(models["bad"], tmp_path, "bpann")
    before = contents(current)
    monkeypatch.setenv("LB_API_TOKEN", "sesame")
    with Controller(model=str(current)) as controller:
        code, report = settle(split, current, models["good"], rtt(5.0, 4.0), tmp_path, controller.port)
    assert code == 0 and report["decision"] == "replaced", report
    assert contents(current) == contents(models["good"])
    assert contents(tmp_path / "bpann-previous") == before and report["backup"] == str(tmp_path / "bpann-previous")
    bpann.load(current), bpann.load(tmp_path / "bpann-previous")
    assert controller.calls == [("POST", "/api/v1/model/reload", "Bearer sesame")]
    assert report["reload"] == {"policy": "bpann", "model": str(current)}
    assert "-20.0% (one seed: no interval) (not worse)" in report["reasons"][1]
    assert f"controller 127.0.0.1:{controller.port} reloaded: {current}" in retrain.describe(report)


@pytest.mark.parametrize("maes, trial, replaced", [
    ((2.0, 1.0), rtt(5.0, 6.0), False),      # fits better, but the experiment's RTT is worse
    ((2.0, 2.0), rtt(5.0, 4.0), False),      # a tie on held-out MAE keeps the model in use
    ((2.0, 1.0), rtt(5.0, 5.0), True),       # a tie in the experiment is not worse
    ((2.0, 1.0), rtt(5.0, None), False),     # the candidate's experiment measured nothing on its seed
    ((2.0, 1.0), rtt(None, 5.0), True),      # only the model in use measured nothing: not worse
    ((2.0, 1.0), rtt(5.0, 4.0, (0.0, 0.2)), False),   # lower RTT, but more probes lost
    ((2.0, 1.0), rtt(5.0, 4.0, (0.2, 0.2)), True),    # the same loss is not worse
    ((float("nan"), 1.0), rtt(5.0, 4.0), False),      # a figure that is not finite is not better
])
def test_the_rule(maes, trial, replaced):
    errors = {"current": {"mae": maes[0]}, "candidate": {"mae": maes[1]}}
    assert retrain.decide(errors, trial, LABEL)[0] is replaced


def test_a_seed_only_the_model_in_use_measured_counts_as_worse():
    errors = {"current": {"mae": 2.0}, "candidate": {"mae": 1.0}}
    trial = {"rtt_mean_ms": {"current": {"1": 5.0, "2": 5.0}, "candidate": {"1": 1.0}},
             "loss": {"current": {"1": 0.0, "2": 0.0}, "candidate": {"1": 0.0}}}
    replaced, reasons = retrain.decide(errors, trial, LABEL)
    assert not replaced and reasons[1] == ("experiment rtt_mean_ms (lower is better): the candidate measured "
                                           "nothing on seed(s) 2 (worse)")


def test_the_rule_pairs_seeds_and_reads_throughput_as_higher_is_better():
    errors = {"current": {"mae": 2.0}, "candidate": {"mae": 1.0}}
    trial = {"throughput_mbps": {"current": {"1": 10.0, "2": 20.0}, "candidate": {"1": 11.0, "2": 21.0, "3": 9.0}}}
    replaced, reasons = retrain.decide(errors, trial, TRANSFER_LABEL)
    assert replaced and reasons[1].startswith("experiment throughput_mbps (higher is better), 2 paired seed(s): "
                                              "candidate 16 vs in use 15, +7.5% [")
    assert reasons[1].endswith("(not worse); seed(s) 3 only the candidate measured (not worse)")


def test_an_experiment_that_exited_non_zero_refuses_the_candidate(split, models, tmp_path):
    current = place(models["bad"], tmp_path, "bpann")
    before = contents(current)
    code, report = settle(split, current, models["good"], rtt(5.0, 4.0), tmp_path, exits={"current": 0, "candidate": 1})
    assert code == 1 and report["decision"] == "kept" and contents(current) == before
    assert report["error"] == report["reasons"][-1] == ("experiment: the run with the candidate model exited 1: "
                                                        "not judged (not better)")
    assert json.loads((tmp_path / "report.json").read_text())["experiment"]["exits"] == {"current": 0, "candidate": 1}


def test_an_unreachable_controller_is_reported_by_name_after_the_install(split, models, tmp_path, monkeypatch):
    current = place(models["bad"], tmp_path, "bpann")
    monkeypatch.setenv("LB_API_TOKEN", "sesame")
    port = free_port()
    code, report = settle(split, current, models["good"], rtt(5.0, 4.0), tmp_path, port)
    assert code == 1 and report["decision"] == "replaced" and report["reload"] is None
    assert report["error"].startswith(f"127.0.0.1:{port}: no controller answers POST /api/v1/model/reload")
    assert contents(current) == contents(models["good"])     # installed whole; the next reload or start loads it


def test_a_reload_the_controller_refuses_is_reported_with_its_answer(split, models, tmp_path, monkeypatch):
    current = place(models["bad"], tmp_path, "bpann")
    monkeypatch.setenv("LB_API_TOKEN", "sesame")
    with Controller(status=422) as controller:
        code, report = settle(split, current, models["good"], rtt(5.0, 4.0), tmp_path, controller.port)
    assert code == 1 and report["error"] == (f"127.0.0.1:{controller.port}: POST /api/v1/model/reload answered "
                                             "422: bpann.npz: not a readable .npz")


def test_a_corrupt_candidate_or_a_model_changed_meanwhile_installs_nothing(split, models, tmp_path):
    current = place(models["good"], tmp_path, "bpann")
    before = contents(current)
    broken = place(models["bad"], tmp_path, "broken")
    broken.with_suffix(".npz").write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(retrain.RetrainError, match=r"^candidate .*broken.npz: .*: nothing installed$"):
        retrain.install(broken, current, before)
    with pytest.raises(retrain.RetrainError, match=r"bpann.npz/.json changed while retraining: nothing installed"):
        retrain.install(models["bad"], current, {".npz": b"other", ".json": before[".json"]})
    assert contents(current) == before and not list(tmp_path.glob("bpann-previous*"))
    (tmp_path / "bpann-previous.json").mkdir()       # where the backup goes, something it cannot replace
    with pytest.raises(retrain.RetrainError, match=r"bpann-previous.json: cannot write the backup .*: nothing installed"):
        retrain.install(models["bad"], current, before)
    assert contents(current) == before


def test_a_pair_of_files_of_two_models_is_refused_by_name(models, tmp_path):
    mixed = place(models["good"], tmp_path, "mixed")
    mixed.with_suffix(".npz").write_bytes(models["bad"].with_suffix(".npz").read_bytes())
    with pytest.raises(ModelError, match=r"mixed.npz: its SHA-256 is not the npz_sha256 of mixed.json"):
        bpann.load(mixed)


@pytest.mark.parametrize("args, message", [
    (["--model", "{tmp}/missing"], "error: {tmp}/missing.json: cannot read: No such file or directory\n"),
    (["--model", "{tmp}/corrupt"], "error: {tmp}/corrupt.json: not valid JSON: Expecting value at line 1\n"),
    (["--topology", "topozoo/NoSuchNet"], "error: topozoo/NoSuchNet: not a Topology Zoo network topohub ships"),
    (["--topology", "{tmp}/no.json"], "error: {tmp}/no.json: cannot read: No such file or directory\n"),
    (["--src", "h9"], "error: --src/--dst: two different hosts of"),
    (["--reload-port", "{port}"], "error: 127.0.0.1:{port}: no controller answers GET /api/v1/policy"),
])
def test_hostile_inputs_are_one_line_naming_the_file_peer_or_field(models, samples, tmp_path, capsys, args, message):
    place(models["good"], tmp_path, "bpann")
    (tmp_path / "corrupt.json").write_text("")
    (tmp_path / "corrupt.npz").write_text("")
    port = str(free_port())
    argv = [a.format(tmp=tmp_path, port=port) for a in args]
    if "--model" not in argv:
        argv += ["--model", str(tmp_path / "bpann")]
    assert retrain.main([*argv, "--data", str(samples), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message.format(tmp=tmp_path, port=port)) and err.count("\n") == 1, err
    assert not (tmp_path / "out" / "report.json").exists()


def test_a_controller_serving_another_model_is_refused_before_any_work(models, samples, tmp_path, capsys):
    place(models["good"], tmp_path, "bpann")
    with Controller(model="/elsewhere/bpann") as controller:
        code = retrain.main(["--model", str(tmp_path / "bpann"), "--reload-port", str(controller.port),
                             "--data", str(samples), "--out", str(tmp_path / "out")])
    assert code == 2 and f"127.0.0.1:{controller.port}: serves policy 'bpann' with model '/elsewhere/bpann'" \
        in capsys.readouterr().err


def test_a_model_in_use_with_other_inputs_than_the_samples_is_refused_by_name(split, tmp_path, capsys):
    """A completion-time model trained before models saw capacity has the paper's inputs: its
    errors on capacity samples cannot be computed, so retraining stops before any work."""
    data, train, _ = split
    bpann.save(dataclasses.replace(fit_bpann(data.x[train], data.y[train], 3), meta={"label": TRANSFER_LABEL}),
               tmp_path / "old")
    rows = [f"{1.7e9 + i},net,h1,h2,s1>s2,0.1,0,1,1,10,9,1000000,0.9,0" for i in range(60)]
    (tmp_path / "t.csv").write_text(",".join(TRANSFER_COLUMNS) + "\n" + "\n".join(rows) + "\n")
    assert retrain.main(["--model", str(tmp_path / "old"), "--data", str(tmp_path / "t.csv"),
                         "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path}/old.json: inputs ['utilisation', 'loss', 'latency_ms', 'hops'], but ")
    assert err.count("\n") == 1 and not (tmp_path / "out" / "report.json").exists()


def test_a_capacity_model_is_retrained_with_its_penalty_and_tried_under_the_learned_policy(tmp_path, monkeypatch):
    rng = np.random.default_rng(4)
    rows = []
    for i in range(160):
        util, thin = rng.uniform(0, 0.9), i % 2
        rows.append(f"{1.7e9 + i},net,h1,h2,{'s1>s2' if thin else 's1>s3>s2'},{util:.3f},0,1,{1 + (1 - thin)},"
                    f"{10 if thin else 50},{(10 if thin else 50) * (1 - util):.3f},1000000,"
                    f"{(0.8 if thin else 0.16) / (1 - util):.4f},0")
    (tmp_path / "t.csv").write_text(",".join(TRANSFER_COLUMNS) + "\n" + "\n".join(rows) + "\n")
    data = load_dataset(tmp_path / "t.csv")
    bpann.save(dataclasses.replace(fit_bpann(data.x, data.y, 3, inputs=data.inputs, alpha=10.0),
                                   meta={"label": TRANSFER_LABEL, "alpha": 10.0}), tmp_path / "learned")
    runs = []
    monkeypatch.setattr(retrain.experiment, "main", lambda argv: runs.append(argv) or 1)
    assert retrain.main(["--model", str(tmp_path / "learned"), "--data", str(tmp_path / "t.csv"),
                         "--out", str(tmp_path / "out"), "--sizes", "3"]) == 1     # the runs "failed"
    assert [argv[argv.index("--policies") + 1] for argv in runs] == ["learned", "learned"]
    assert bpann.load(tmp_path / "out" / "candidate").meta["alpha"] == 10.0


def test_a_model_in_use_whose_penalty_is_not_a_number_is_refused_by_name(split, tmp_path, capsys):
    data, train, _ = split
    bpann.save(dataclasses.replace(fit_bpann(data.x[train], data.y[train], 3), meta={"label": LABEL, "alpha": "ten"}),
               tmp_path / "m")
    assert retrain.main(["--model", str(tmp_path / "m"), "--data", "/nonexistent.csv"]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path}/m.json: alpha 'ten' is not a penalty in (0, 1000]\n"


def test_a_topology_zoo_name_becomes_the_spec_the_generator_makes(tmp_path):
    path = retrain.topology_file("topozoo/Abilene", 1, 4, tmp_path)
    assert json.loads(path.read_text()) == zoo(load_zoo("Abilene"), 1, 4)
    assert [h.name for h in load_spec(path).hosts] == ["h1", "h2", "h3", "h4"]
    with pytest.raises(TopologyError, match=r"^topozoo/Abilene: --hosts: must be in 2\.\.11"):
        retrain.topology_file("topozoo/Abilene", 1, 99, tmp_path)


def test_a_figure_that_is_not_finite_is_written_as_null_and_printed_as_n_a(split, models, tmp_path):
    current = place(models["bad"], tmp_path, "bpann")
    nan = float("nan")
    errors = {"current": {"mae": 2.0, "mre": nan}, "candidate": {"mae": nan, "mre": nan},
              "persistence": {"mae": nan, "mre": 1.0}}
    code, report = settle(split, current, models["good"], rtt(5.0, 4.0), tmp_path, errors=errors)
    assert code == 0 and report["decision"] == "kept"
    assert json.loads((tmp_path / "report.json").read_text()) == report
    assert report["held_out"]["errors"]["candidate"] == {"mae": None, "mre": None}
    assert report["reasons"][0] == "held-out MAE: candidate n/a vs in use 2 (not better)"
    assert "mean relative error candidate n/a%, in use n/a%; persistence baseline MAE n/a" in retrain.describe(report)


def test_an_interrupted_install_rolls_back_npz_first_and_still_writes_the_report(split, models, tmp_path,
                                                                                 monkeypatch):
    current = place(models["bad"], tmp_path, "bpann")
    before = contents(current)
    writes, load = [], bpann.load
    write_atomic = retrain.files.write_atomic

    def record(path, data, mode):
        writes.append(Path(path).name)
        write_atomic(path, data, mode)

    def interrupted(path):
        if Path(path).with_suffix("") == current:      # the installed model: as if Ctrl-C came now
            raise KeyboardInterrupt
        return load(path)

    monkeypatch.setattr(retrain.files, "write_atomic", record)
    monkeypatch.setattr(retrain.bpann, "load", interrupted)
    with pytest.raises(KeyboardInterrupt):
        settle(split, current, models["good"], rtt(5.0, 4.0), tmp_path,
               errors={"current": {"mae": 2.0, "mre": 1.0}, "candidate": {"mae": 1.0, "mre": 1.0},
                       "persistence": {"mae": 3.0, "mre": 1.0}})
    assert writes[-3:] == ["bpann.npz", "bpann.json", "report.json"]    # .npz back first, then .json
    assert contents(current) == before
    assert json.loads((tmp_path / "report.json").read_text())["decision"] == "kept"


@pytest.mark.parametrize("reply, serves", [
    (b"[1]", "policy None with model [1]"),
    (b'{"policy": "bpann", "model": "/elsewhere/bpann"}', "policy 'bpann' with model '/elsewhere/bpann'"),
    (b'{"policy": "least-loaded", "model": null}', "policy 'least-loaded' with model None"),
])
def test_a_reload_answer_that_does_not_serve_the_candidate_is_an_error(split, models, tmp_path, monkeypatch,
                                                                        reply, serves):
    current = place(models["bad"], tmp_path, "bpann")
    monkeypatch.setenv("LB_API_TOKEN", "sesame")
    with Controller(reply=reply) as controller:
        code, report = settle(split, current, models["good"], rtt(5.0, 4.0), tmp_path, controller.port)
    assert code == 1 and report["decision"] == "replaced"
    assert report["error"] == f"127.0.0.1:{controller.port}: reloaded but serves {serves}, not {current}"


def test_an_error_answer_that_is_not_json_is_reported_with_its_start(split, models, tmp_path, monkeypatch):
    current = place(models["bad"], tmp_path, "bpann")
    monkeypatch.setenv("LB_API_TOKEN", "sesame")
    with Controller(status=502, reply=b"<html>Bad Gateway" + b"x" * 300) as controller:
        code, report = settle(split, current, models["good"], rtt(5.0, 4.0), tmp_path, controller.port)
    assert code == 1 and report["error"] == (f"127.0.0.1:{controller.port}: POST /api/v1/model/reload answered "
                                             f"502: <html>Bad Gateway{'x' * 183}")


def test_the_shipped_model_names_its_npz_hash_so_a_first_install_over_it_is_protected(tmp_path):
    shipped = retrain.ROOT / "models" / "bpann"
    meta = json.loads(shipped.with_suffix(".json").read_text())
    assert meta["npz_sha256"] == hashlib.sha256(shipped.with_suffix(".npz").read_bytes()).hexdigest()
    bpann.load(shipped)
    older = place(shipped, tmp_path, "older")      # other users' models, from before the field, still load
    older.with_suffix(".json").write_text(json.dumps({k: v for k, v in meta.items() if k != "npz_sha256"}))
    bpann.load(older)
