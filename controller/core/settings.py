"""Controller settings, read from LB_* environment variables so that every launcher
(osken-manager, ryu-manager, python -m controller) configures the app the same way."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field


class ConfigError(ValueError):
    """A setting that cannot be used; the message names the variable or option."""


@dataclass(frozen=True)
class Settings:
    policy: str = "shortest"
    topology: str | None = None      # path of a topology spec (recommended: gives capacities)
    k_paths: int = 4                 # candidate paths considered per host pair
    idle_timeout_s: int = 10         # a flow entry unused this long is removed by the switch
    symmetric: bool = False          # a connection's reply takes the reverse of its forward path
    new_flow_mbps: float = 1.0       # booked for a new flow of a kind never measured (see bookings.py)
    probe_interval_s: float = 1.0    # LLDP probe period (also the latency sampling period)
    poll_interval_s: float = 1.0     # port and flow statistics period
    default_capacity_mbps: float = 1000.0   # for links the topology spec does not describe
    rest_port: int = 8080            # JSON API on 127.0.0.1; 0 disables it
    metrics_port: int = 9108         # Prometheus metrics on 127.0.0.1; 0 disables them
    capture: str | None = None       # folder to append link metrics and path features to
    model: str | None = None         # BPANN model (.npz + .json); default: the shipped models/bpann
    q_table: str | None = None       # Q-learning table file: loaded at start, saved after learning
    q_alpha: float = 0.3             # Q-learning rate
    q_gamma: float = 0.5             # Q-learning discount
    q_epsilon: float = 0.2           # initial exploration rate (decays x0.995 per decision to 0.02)
    log_level: str = "INFO"
    api_token: str | None = field(default=None, repr=False)   # for PUT/POST; none: generated at start

    ENV = {"policy": "LB_POLICY", "topology": "LB_TOPOLOGY", "k_paths": "LB_K_PATHS",
           "idle_timeout_s": "LB_IDLE_TIMEOUT_S", "symmetric": "LB_SYMMETRIC", "new_flow_mbps": "LB_NEW_FLOW_MBPS", "probe_interval_s": "LB_PROBE_INTERVAL_S",
           "poll_interval_s": "LB_POLL_INTERVAL_S", "default_capacity_mbps": "LB_DEFAULT_CAPACITY_MBPS",
           "rest_port": "LB_REST_PORT", "metrics_port": "LB_METRICS_PORT", "capture": "LB_CAPTURE",
           "model": "LB_MODEL", "q_table": "LB_Q_TABLE", "q_alpha": "LB_Q_ALPHA", "q_gamma": "LB_Q_GAMMA",
           "q_epsilon": "LB_Q_EPSILON", "log_level": "LB_LOG_LEVEL", "api_token": "LB_API_TOKEN"}

    @classmethod
    def from_env(cls, env: dict | None = None) -> Settings:
        env = os.environ if env is None else env
        values = {}
        for field, var in cls.ENV.items():
            if var in env and env[var] != "":
                values[field] = _convert(var, env[var], type(getattr(cls, field)))
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if not 1 <= self.k_paths <= 64:
            raise ConfigError(f"LB_K_PATHS: must be in 1..64, got {self.k_paths}")
        if not 1 <= self.idle_timeout_s <= 65535:   # 0 (permanent) would never report a flow's end
            raise ConfigError(f"LB_IDLE_TIMEOUT_S: must be in 1..65535, got {self.idle_timeout_s}")
        if not 0 <= self.new_flow_mbps <= 100_000:
            raise ConfigError(f"LB_NEW_FLOW_MBPS: must be in 0..100000, got {self.new_flow_mbps}")
        for var, value in (("LB_PROBE_INTERVAL_S", self.probe_interval_s),
                           ("LB_POLL_INTERVAL_S", self.poll_interval_s)):
            if not 0.1 <= value <= 60:
                raise ConfigError(f"{var}: must be in 0.1..60, got {value}")
        if not 0 < self.default_capacity_mbps <= 100_000:
            raise ConfigError(f"LB_DEFAULT_CAPACITY_MBPS: must be in (0, 100000], got {self.default_capacity_mbps}")
        for var, port in (("LB_REST_PORT", self.rest_port), ("LB_METRICS_PORT", self.metrics_port)):
            if not 0 <= port <= 65535:
                raise ConfigError(f"{var}: must be in 0..65535 (0: off), got {port}")
        for var, value, lo, hi in (("LB_Q_ALPHA", self.q_alpha, 0.001, 1), ("LB_Q_GAMMA", self.q_gamma, 0, 0.99),
                                   ("LB_Q_EPSILON", self.q_epsilon, 0, 1)):
            if not lo <= value <= hi:
                raise ConfigError(f"{var}: must be in {lo}..{hi}, got {value}")
        if not isinstance(logging.getLevelName(self.log_level.upper()), int):
            raise ConfigError(f"LB_LOG_LEVEL: unknown level '{self.log_level}' "
                              "(DEBUG, INFO, WARNING, ERROR)")
        if self.api_token is not None and not re.fullmatch(r"[!-~]{16,256}", self.api_token):
            raise ConfigError("LB_API_TOKEN: must be 16 to 256 visible ASCII characters (no spaces)")


def _convert(var: str, raw: str, kind: type) -> object:
    if kind is str or kind is type(None):
        return raw
    if kind is bool:
        if raw.lower() not in ("1", "true", "yes", "0", "false", "no"):
            raise ConfigError(f"{var}: expected true or false, got '{raw}'")
        return raw.lower() in ("1", "true", "yes")
    try:
        return kind(raw)
    except ValueError:
        raise ConfigError(f"{var}: expected {kind.__name__}, got '{raw}'") from None
