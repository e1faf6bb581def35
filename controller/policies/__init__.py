"""Path selection policies, chosen by name: the heuristics, the BPANNs and Q-learning, each
implementing controller.core.policy.Policy."""

from __future__ import annotations

from controller.core.policy import Policy
from controller.core.settings import ConfigError, Settings
from controller.policies.bpann import DEFAULT_MODEL, BpannPolicy, LearnedPolicy
from controller.policies.heuristics import Ecmp, LeastLoaded, RandomPath, RoundRobin, ShortestPath, Widest
from controller.policies.qlearning import QLearningPolicy

POLICIES: dict[str, type[Policy]] = {p.name: p for p in (ShortestPath, LeastLoaded, Widest, RoundRobin, Ecmp,
                                                          BpannPolicy, LearnedPolicy, QLearningPolicy, RandomPath)}


def make_policy(name: str, settings: Settings | None = None) -> Policy:
    settings = settings or Settings()
    if name not in POLICIES:
        raise ConfigError(f"policy: unknown '{name}' (known: {', '.join(sorted(POLICIES))})")
    if name in (BpannPolicy.name, LearnedPolicy.name):
        return POLICIES[name](settings.model)
    if name == QLearningPolicy.name:
        return QLearningPolicy(settings.q_table, settings.q_alpha, settings.q_gamma, settings.q_epsilon,
                               settings.q_explore, settings.seed, settings.q_model)
    if name == RandomPath.name:
        return RandomPath(settings.seed)
    return POLICIES[name]()
