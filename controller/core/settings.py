"""Controller settings, one table: each field of Settings carries its row, and from the rows come
the LB_* variables every launcher (osken-manager, ryu-manager, python -m controller) configures
the app with, their checks, the launcher's options and docs/settings.md. A setting is added in
one place, a field below, so its variable, option, check and documentation cannot disagree."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any


class ConfigError(ValueError):
    """A setting that cannot be used; the message names the variable or option."""


@dataclass(frozen=True)
class Range:
    """The numbers a setting may take, said the same way in errors, --help and the docs."""
    lo: float
    hi: float
    low_open: bool = False      # lo itself is not allowed
    note: str = ""

    def __str__(self) -> str:
        return (f"({self.lo}, {self.hi}]" if self.low_open else f"{self.lo}..{self.hi}") + self.note

    def __call__(self, value: float) -> str | None:
        """What is wrong with value, None if nothing (NaN is in no range)."""
        inside = (self.lo < value if self.low_open else self.lo <= value) and value <= self.hi
        return None if inside else f"must be in {self}, got {value}"


def _log_level(value: str) -> str | None:
    if isinstance(logging.getLevelName(value.upper()), int):
        return None
    return f"unknown level '{value}' (DEBUG, INFO, WARNING, ERROR)"


def _one_of(*choices: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}, got '{value}'"
    return check


Q_EXPLORATIONS = ("epsilon", "count")
Q_MODELS = ("table", "linear", "relative", "correction", "baseline")
Q_WINDOWS = ("first", "flow")
SERVICE_POLICIES = ("round-robin", "least-connections", "weighted", "random", "qlearning")   # policies/members.py


def _token(value: str) -> str | None:
    if re.fullmatch(r"[!-~]{16,256}", value):
        return None
    return "must be 16 to 256 visible ASCII characters (no spaces)"   # not the value: it is a secret


@dataclass(frozen=True)
class Setting:
    """A row of the table: how a field is named, checked and explained outside the code."""
    name: str                   # the field's
    default: Any                # the field's
    option: str                 # the launcher's
    meaning: str                # for --help and docs/settings.md
    check: Callable[[Any], str | None] | None = None   # what is wrong with a value, None if nothing
    metavar: str | None = None
    unset: str = "none"         # what None means
    absolute: bool = False      # a path the app opens again while running: the launcher makes it absolute
    secret: bool = False        # out of repr; the launcher's default is the variable (command lines are public)

    @property
    def var(self) -> str:
        return "LB_" + self.name.upper()

    @property
    def kind(self) -> type:
        """What the variable's text converts to: a path or a name where the default is None."""
        return str if self.default is None else type(self.default)


def _setting(default: Any, option: str, meaning: str, check: Callable | None = None, **more: Any) -> Any:
    """A field of Settings with its row of the table."""
    return field(default=default, repr=not more.get("secret"),
                 metadata={"row": dict(option=option, meaning=meaning, check=check, **more)})


_PORT = Range(0, 65535, note=" (0: off)")
_INTERVAL = Range(0.1, 60)


@dataclass(frozen=True)
class Settings:
    """What the app runs with; each field is a row of the table (TABLE)."""
    policy: str = _setting("shortest", "--policy", "path policy")
    topology: str | None = _setting(
        None, "--topology", "topology spec (JSON): names switches, gives link capacities, tells when discovery "
        "is complete", metavar="SPEC")
    k_paths: int = _setting(4, "--k-paths", "candidate paths per switch pair", Range(1, 64))
    idle_timeout_s: int = _setting(
        10, "--idle-timeout", "seconds an unused flow entry lives (a permanent entry would never report its "
        "flow's end)", Range(1, 65535), metavar="S")
    symmetric: bool = _setting(
        False, "--symmetric", "a connection's reply takes the reverse of its request's path: one decision per "
        "connection")
    new_flow_mbps: float = _setting(
        1.0, "--new-flow-mbps", "load booked for a new flow of a kind (protocol, destination port) not measured "
        "yet, until a poll measures it (0: none)", Range(0, 100_000), metavar="MBPS")
    probe_interval_s: float = _setting(
        1.0, "--probe-interval", "seconds between LLDP probes (links and latency); a link unconfirmed for 10 "
        "intervals is gone", _INTERVAL, metavar="S")
    poll_interval_s: float = _setting(
        1.0, "--poll-interval", "seconds between port and flow statistics polls", _INTERVAL, metavar="S")
    default_capacity_mbps: float = _setting(
        1000.0, "--default-capacity", "capacity of links the topology spec does not describe",
        Range(0, 100_000, low_open=True), metavar="MBPS")
    rest_port: int = _setting(8080, "--rest-port", "JSON API port on 127.0.0.1", _PORT)
    metrics_port: int = _setting(9108, "--metrics-port", "Prometheus metrics port on 127.0.0.1", _PORT)
    capture: str | None = _setting(
        None, "--capture", "append link metrics and path features to DIR/links.csv and DIR/paths.csv every "
        "poll (for retraining)", metavar="DIR", unset="off", absolute=True)
    model: str | None = _setting(
        None, "--model", "BPANN model (.npz + .json) for --policy bpann or learned; reloaded by REST and SIGHUP",
        metavar="PATH", unset="the shipped models/bpann or models/learned", absolute=True)
    q_table: str | None = _setting(
        None, "--q-table", "Q-learning table for --policy qlearning: loaded at start, saved after each poll "
        "that learnt something", metavar="FILE", unset="memory only", absolute=True)
    q_alpha: float = _setting(
        0.05, "--q-alpha", "Q-learning's least step, for the path and member tables: a state's step is "
        "1/visits (its value the mean of what it met) until that reaches this, then this, tracking drift; the "
        "linear model's is 1/updates down to this", Range(0.001, 1))
    q_gamma: float = _setting(0.5, "--q-gamma", "Q-learning discount (the table's: the linear, relative, "
                              "correction and baseline models learn each decision's own outcome, gamma 0)", Range(0, 0.99))
    q_epsilon: float = _setting(
        0.2, "--q-epsilon", "initial exploration rate (decays x0.995 per decision to 0.02)", Range(0, 1))
    q_explore: str = _setting(
        "epsilon", "--q-explore", "Q-learning exploration: epsilon (random paths, at the decaying rate) or count "
        "(a bonus for the path states visited least; not for the linear and baseline models)", _one_of(*Q_EXPLORATIONS),
        metavar="HOW")
    q_model: str = _setting(
        "table", "--q-model", "what Q-learning learns: table (a value per path state) or linear (weights over a "
        "path's features, so a condition never met is valued from the nearest ones; epsilon exploration only) or "
        "relative (a value per standing among the candidates: utilisation over the least's, hops over the fewest) or "
        "correction (the reading plus a learnt correction per path state: how much worse than it reads a path turns out) or "
        "baseline (least-loaded's choice, left only where a candidate's measured advantage over it is shown)",
        _one_of(*Q_MODELS), metavar="KIND")
    q_window: str = _setting(
        "first", "--q-window", "what a Q-learning decision learns from: the chosen path's first measurement after "
        "it (first), or the mean of its measurements while the flow sends, up to 30 s (flow; not for the baseline "
        "model, which pairs two paths as one poll read them)",
        _one_of(*Q_WINDOWS), metavar="WHICH")
    seed: int = _setting(
        0, "--seed", "seed of the controller's random choices (Q-learning's exploration, the random path and "
        "member policies): one seed repeats a run's choices, runs meant to be independent need a seed each",
        Range(0, 2**32 - 1), metavar="N")
    service_policy: str = _setting(
        "round-robin", "--service-policy", "how a new connection to a service's virtual IP picks a member: "
        + ", ".join(SERVICE_POLICIES) + "; PUT /api/v1/services switches it live", _one_of(*SERVICE_POLICIES),
        metavar="POLICY")
    service_q_blind: bool = _setting(
        False, "--service-q-blind", "member Q-learning leaves the path to each member out of its state (the "
        "member and its open connections alone), to measure what seeing the path adds")
    service_q_table: str | None = _setting(
        None, "--service-q-table", "Q-learning table for --service-policy qlearning: loaded at start, saved "
        "after each poll that learnt something", metavar="FILE", unset="memory only", absolute=True)
    log_level: str = _setting("INFO", "--log-level", "DEBUG, INFO, WARNING or ERROR", _log_level)
    api_token: str | None = _setting(
        None, "--api-token", "token the REST API's PUT and POST need; prefer the variable: other users can "
        "read a command line", _token, metavar="TOKEN", unset="generated at start, its file named in the log",
        secret=True)

    @classmethod
    def from_env(cls, env: dict | None = None) -> Settings:
        env = os.environ if env is None else env
        settings = cls(**{row.name: _convert(row.var, env[row.var], row.kind) for row in TABLE
                          if env.get(row.var, "") != ""})
        settings.validate()
        return settings

    def validate(self) -> None:
        for row in TABLE:
            value = getattr(self, row.name)
            problem = row.check(value) if row.check and value is not None else None
            if problem:
                raise ConfigError(f"{row.var}: {problem}")
        if self.q_model in ("linear", "baseline") and self.q_explore == "count":
            raise ConfigError(f"LB_Q_EXPLORE: count exploration: a {self.q_model} Q-learning model explores by "
                              "epsilon (qlearning.py says why)")
        if self.q_model == "baseline" and self.q_window == "flow":
            raise ConfigError("LB_Q_WINDOW: flow: the baseline Q-learning model pairs two paths as one poll "
                              "read them after a decision; the flow's window is the other models'")
        if self.q_table and self.service_q_table and os.path.realpath(self.q_table) == os.path.realpath(
                self.service_q_table):
            raise ConfigError(f"LB_Q_TABLE (--q-table) and LB_SERVICE_Q_TABLE (--service-q-table): both name "
                              f"{self.q_table}; the path and the member tables need a file each")

    def env(self) -> dict[str, str]:
        """The variables that give these settings to from_env, every one of them: a None is an
        empty variable, so that one already in the environment cannot stand in for it."""
        return {row.var: "" if getattr(self, row.name) is None else str(getattr(self, row.name)) for row in TABLE}


# A field without a row is left out here, and the consistency test names it.
TABLE: tuple[Setting, ...] = tuple(Setting(f.name, f.default, **f.metadata["row"])
                                   for f in fields(Settings) if "row" in f.metadata)


def _convert(var: str, raw: str, kind: type) -> object:
    if kind is str:
        return raw
    if kind is bool:
        if raw.lower() not in ("1", "true", "yes", "0", "false", "no"):
            raise ConfigError(f"{var}: expected true or false, got '{raw}'")
        return raw.lower() in ("1", "true", "yes")
    try:
        return kind(raw)
    except ValueError:
        raise ConfigError(f"{var}: expected {kind.__name__}, got '{raw}'") from None
