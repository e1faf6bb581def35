"""Launcher: `python -m controller [options]` validates the options, then runs the app under
os-ken or Ryu, listening on 127.0.0.1 unless told otherwise.

It can run Ryu 4.34 on Python 3.10+, which ryu-manager cannot: Ryu needs
`eventlet.wsgi.ALREADY_HANDLED`, gone from the eventlet releases that run on new Pythons, so
the launcher provides the sentinel before Ryu is imported.
"""

from __future__ import annotations

if __name__ == "__main__":
    # The framework's manager monkey-patches threading when it starts; done here, before
    # anything (logging first) creates a lock, eventlet can green every lock instead of logging
    # "1 RLock(s) were not greened" at the top of every run. Eventlet >= 0.36 warns that it is
    # deprecated; os-ken still depends on it.
    import warnings
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
    import eventlet
    eventlet.monkey_patch()

import argparse
import logging
import os
import socket
import sys
import warnings
from pathlib import Path

from controller.service.capture import Capture
from controller.policies import DEFAULT_MODEL, POLICIES, BpannPolicy, make_policy
from controller.core.settings import TABLE, ConfigError, Settings
from models import bpann
from controller.policies import qlearning as qtable
from models.bpann import ModelError
from controller.policies.qlearning import QTableError
from controller.core.spec import TopologyError
from controller.files import load_spec

def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m controller", description=__doc__.split("\n\n")[0])
    p.add_argument("--policy", default=Settings.policy, help=f"one of: {', '.join(sorted(POLICIES))}")
    p.add_argument("--topology", metavar="SPEC", help="topology spec file (JSON); gives link capacities")
    p.add_argument("--ofp-port", type=int, default=6653, help="OpenFlow listen port (default 6653)")
    p.add_argument("--listen", default="127.0.0.1", help="OpenFlow listen address (default 127.0.0.1)")
    p.add_argument("--k-paths", type=int, default=Settings.k_paths, help="candidate paths per host pair")
    p.add_argument("--idle-timeout", type=int, default=Settings.idle_timeout_s, metavar="S",
                   help="seconds an unused flow entry lives")
    p.add_argument("--symmetric", action="store_true",
                   help="route a connection's reply on the reverse of its forward path (one decision per connection)")
    p.add_argument("--new-flow-mbps", type=float, default=Settings.new_flow_mbps, metavar="MBPS",
                   help="load booked for a new flow of a kind not yet measured, until a poll measures it")
    p.add_argument("--probe-interval", type=float, default=Settings.probe_interval_s, metavar="S",
                   help="seconds between LLDP probes")
    p.add_argument("--poll-interval", type=float, default=Settings.poll_interval_s, metavar="S",
                   help="seconds between statistics polls")
    p.add_argument("--default-capacity", type=float, default=Settings.default_capacity_mbps,
                   metavar="MBPS", help="capacity of links the spec does not describe")
    p.add_argument("--rest-port", type=int, default=Settings.rest_port,
                   help=f"JSON API port on 127.0.0.1, 0 to disable (default {Settings.rest_port})")
    p.add_argument("--metrics-port", type=int, default=Settings.metrics_port,
                   help=f"Prometheus port on 127.0.0.1, 0 to disable (default {Settings.metrics_port})")
    p.add_argument("--capture", metavar="DIR", help="append link metrics and path features to DIR/*.csv")
    p.add_argument("--model", metavar="PATH", help="BPANN model for --policy bpann (default: models/bpann)")
    p.add_argument("--q-table", metavar="FILE", help="Q-learning table for --policy qlearning: loaded at "
                   "start, saved as it learns (default: kept in memory only)")
    p.add_argument("--q-alpha", type=float, default=Settings.q_alpha, help="Q-learning rate")
    p.add_argument("--q-gamma", type=float, default=Settings.q_gamma, help="Q-learning discount")
    p.add_argument("--q-epsilon", type=float, default=Settings.q_epsilon, help="initial exploration rate")
    p.add_argument("--log-level", default=Settings.log_level, help="DEBUG, INFO, WARNING or ERROR")
    p.add_argument("--api-token", default=os.environ.get("LB_API_TOKEN") or None, metavar="TOKEN",
                   help="token REST PUT and POST need (default: $LB_API_TOKEN, else one is generated "
                        "and its file named in the log); other users can read a command line")
    p.add_argument("--framework", choices=("auto", "os_ken", "ryu"), default="auto",
                   help="OpenFlow framework (default: os-ken if installed, else Ryu)")
    args = p.parse_args(argv)
    if not 1 <= args.ofp_port <= 65535:
        p.error(f"--ofp-port: must be in 1..65535, got {args.ofp_port}")
    return args


def settings_env(args: argparse.Namespace) -> dict[str, str]:
    """Validate the options as the app will, and return them as its LB_* variables."""
    settings = Settings(policy=args.policy, topology=args.topology, k_paths=args.k_paths,
                        idle_timeout_s=args.idle_timeout, symmetric=args.symmetric,
                        new_flow_mbps=args.new_flow_mbps, probe_interval_s=args.probe_interval,
                        poll_interval_s=args.poll_interval, default_capacity_mbps=args.default_capacity,
                        rest_port=args.rest_port, metrics_port=args.metrics_port,
                        capture=str(Path(args.capture).resolve()) if args.capture else None,
                        model=str(Path(args.model).resolve()) if args.model else None,
                        q_table=str(Path(args.q_table).resolve()) if args.q_table else None,
                        q_alpha=args.q_alpha, q_gamma=args.q_gamma, q_epsilon=args.q_epsilon,
                        log_level=args.log_level.upper(), api_token=args.api_token)
    settings.validate()
    if settings.topology:
        load_spec(settings.topology)
    # Files named at launch must load: the app would only warn and fall back (least-loaded,
    # an empty table), which suits a reload at run time, not a typo at the command line.
    if settings.model or settings.policy == BpannPolicy.name:
        bpann.load(settings.model or DEFAULT_MODEL)
    if settings.q_table and os.path.lexists(settings.q_table):
        qtable.load(settings.q_table)
    make_policy(settings.policy, settings)     # the name (its files load: checked above)
    if settings.capture:
        Capture(settings.capture).close()
    return settings.env()


def check_listen(host: str, port: int) -> None:
    """The OpenFlow address must be one to listen on: the framework would print a traceback
    from its listener thread and exit 0."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET    # as the framework decides
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
    except OSError as exc:   # socket.gaierror too
        raise ConfigError(f"--listen, --ofp-port: cannot listen on {host}:{port}: {exc.strerror}") from None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        env = settings_env(args)
        check_listen(args.listen, args.ofp_port)
    except (ConfigError, TopologyError, ModelError, QTableError) as exc:
        message = str(exc)
        for row in TABLE:
            message = message.replace(row.var, row.option)
        print(f"error: {message}", file=sys.stderr)
        return 2
    os.environ.update(env)
    if args.framework != "auto":
        os.environ["LB_FRAMEWORK"] = args.framework
    # eventlet >= 0.36 warns at import that it is deprecated; os-ken still depends on it.
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
    if args.framework == "ryu" and sys.version_info >= (3, 10):
        import eventlet.wsgi
        if not hasattr(eventlet.wsgi, "ALREADY_HANDLED"):
            eventlet.wsgi.ALREADY_HANDLED = object()
    from controller.service import compat
    framework_level = logging.DEBUG if args.log_level.upper() == "DEBUG" else logging.WARNING
    compat.manager_main(["--ofp-listen-host", args.listen, "--ofp-tcp-listen-port",
                         str(args.ofp_port), "--default-log-level", str(framework_level),
                         "controller.app"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
