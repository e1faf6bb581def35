"""A short retrain on H1-H7, end to end, as a user runs it (scripts/retrain): real collection,
training, a paired experiment with both models, and a running controller to hot-reload. The
report's decision follows the rule from its own figures, and the model file afterwards is
either the old one, byte-identical, or the candidate, loadable and served, with the old one
kept beside it.

The model in use is the shipped one turned upside down (its output negated: it sends flows
where the shipped model predicts the most load), the case retraining is for; so the install
and the reload are what usually runs, though either decision passes if the figures back it."""

from __future__ import annotations

import dataclasses
import json
import subprocess

from models import bpann
from scripts import retrain
from tests.integration.conftest import H1H7, require_lab
from topologies.lab import ROOT, Lab, user_env


def contents(model) -> dict[str, bytes]:
    return {s: model.with_suffix(s).read_bytes() for s in (".npz", ".json")}


def test_a_short_retrain_decides_by_its_rule_and_leaves_the_files_as_decided(tmp_path):
    require_lab()
    model = tmp_path / "model" / "bpann"
    model.parent.mkdir()
    shipped = bpann.load(ROOT / "models" / "bpann")
    bpann.save(dataclasses.replace(shipped, w2=-shipped.w2, b2=-shipped.b2), model)
    before, out = contents(model), tmp_path / "retrain"
    # a controller serving that model, to be reloaded (no network: the retrain's own labs use the switch names)
    serving = Lab(H1H7, tmp_path / "serving", policy="bpann", controller_args=("--model", str(model)))
    serving.start_controller()
    try:
        run = subprocess.run([str(ROOT / "scripts" / "retrain"), "--topology", str(H1H7), "--model", str(model),
                              "--collect-s", "40", "--seeds", "1", "--experiment-s", "20", "--warmup", "4",
                              "--round", "4", "--reload-port", str(serving.rest_port), "--out", str(out)],
                             env={**user_env(), "LB_API_TOKEN": serving.api_token}, capture_output=True, text=True,
                             timeout=420)
        served = serving.api("policy")[1]
    finally:
        serving.stop_controller()
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    report = json.loads((out / "report.json").read_text())
    errors, trial = report["held_out"]["errors"], report["experiment"]["per_seed"]
    assert report["held_out"]["tested"] >= 5 and report["experiment"]["exits"] == {"current": 0, "candidate": 0}
    assert all(set(trial[m]["current"]) == set(trial[m]["candidate"]) == {"1"} for m in trial)
    replace, reasons = retrain.decide(errors, trial, report["label"], report["experiment"]["exits"])
    assert (report["decision"], report["reasons"]) == ("replaced" if replace else "kept", reasons)
    assert f"decision: {'replaced' if replace else 'kept'} {model}" in run.stdout
    candidate = json.loads((out / "candidate.json").read_text())
    for name in ("current", "candidate"):     # each experiment ran the model it is named for
        log = next((out / f"experiment-{name}" / "runs").glob("bpann-seed1")) / "controller.log"
        assert f"BPANN model {out / name} loaded" in log.read_text()
    if replace:
        assert contents(model) == contents(out / "candidate")
        assert contents(model.with_name("bpann-previous")) == before
        assert bpann.load(model).meta["trained_at"] == candidate["trained_at"]
        assert served["trained_at"] == candidate["trained_at"] and report["reload"]["model"] == str(model)
    else:
        assert contents(model) == before and not list(model.parent.glob("bpann-previous*"))
        assert served["trained_at"] == json.loads(before[".json"])["trained_at"] and report["reload"] is None

