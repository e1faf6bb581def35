"""The BPANN policies: a 3-layer network predicts each candidate's load; the forward pass and
its file format are in models/bpann.py. `bpann` serves the paper's model (four features, a
probe train's delay); `learned` the model that also sees capacity and predicts a transfer's
completion time (docs/models.md, "A learned path scorer")."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from controller.core.monitor import PathFeatures
from controller.core.policy import Policy
from controller.policies.heuristics import LeastLoaded
from models import bpann

log = logging.getLogger("lb.policy")
MODELS = Path(__file__).resolve().parents[2] / "models"
DEFAULT_MODEL = MODELS / "bpann"
MEMO_SIZE = 4096


class BpannPolicy(Policy):
    """Lowest load predicted by the BPANN from the path's inputs the model names. Without a
    usable model it says so and behaves as least-loaded until a good model is reloaded."""
    name = "bpann"
    load_aware = True
    default_model = DEFAULT_MODEL

    def __init__(self, model_path: str | Path | None = None) -> None:
        self.model_path = Path(model_path or self.default_model)
        # the model and its predictions, swapped as one: a reload (SIGHUP lands between any two
        # bytecodes) while candidates are scored must not clear the memo under the scoring
        self._loaded: tuple[bpann.Bpann | None, dict[PathFeatures, float]] = (None, {})
        self._fallback = LeastLoaded()
        try:
            self.reload()
        except bpann.ModelError as exc:
            log.warning("%s; using the least-loaded policy until a model loads", exc)

    def reload(self) -> None:
        """Load the model file again; on failure keep what was in use and raise ModelError."""
        self._loaded = (bpann.load(self.model_path), {})
        log.info("BPANN model %s loaded (%d hidden neurons, %d inputs, label %s)", self.model_path,
                 self.model.hidden, len(self.model.inputs), self.model.meta.get("label"))

    def score(self, features: PathFeatures) -> float:
        return self.scores([features])[0]

    def scores(self, features: list[PathFeatures]) -> list[float]:
        """Predictions are remembered per feature vector (features change once per poll, new
        flows arrive thousands of times a second); forgotten on reload and beyond 4096."""
        model, memo = self._loaded
        if model is None:
            return [self._fallback.score(f) for f in features]
        scores = [memo.get(f) for f in features]
        todo = [f for f, score in zip(features, scores) if score is None]
        if not todo:
            return scores
        x = np.array([bpann.input_row(model.inputs, f.utilisation, f.loss, f.latency_ms, f.hops, f.capacity_mbps,
                                      f.headroom_mbps) for f in todo])
        new = dict(zip(todo, model.predict(x).tolist(), strict=True))
        if len(memo) > MEMO_SIZE:
            memo.clear()
        memo.update(new)
        return [new[f] if score is None else score for f, score in zip(features, scores)]

    @property
    def model(self) -> bpann.Bpann | None:
        return self._loaded[0]

    def describe(self) -> dict:
        if self.model is None:
            return {"policy": self.name, "model": None, "fallback": self._fallback.name}
        return {"policy": self.name, "model": str(self.model_path), "hidden": self.model.hidden,
                "inputs": list(self.model.inputs), "label": self.model.meta.get("label"),
                "trained_at": self.model.meta.get("trained_at")}


class LearnedPolicy(BpannPolicy):
    """The BPANN that sees capacity: lowest predicted completion time of a 1 MB transfer,
    trained on H1-H7 and five generated networks (models/learned)."""
    name = "learned"
    default_model = MODELS / "learned"


MODEL_POLICIES = (BpannPolicy.name, LearnedPolicy.name)     # the policies a model file serves
