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

from controller.core.settings import TABLE, ConfigError, Range, Setting, Settings
from controller.core.spec import TopologyError
from controller.files import load_spec
from controller.policies import POLICIES, BpannPolicy, make_policy, members, qlearning
from controller.policies.bpann import MODEL_POLICIES
from controller.service.capture import Capture
from models import bpann
from models.bpann import ModelError


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m controller", description=__doc__.split("\n\n")[0])
    for row in TABLE:
        if row.kind is bool:
            p.add_argument(row.option, dest=row.name, action="store_true", help=_help(row))
        else:
            p.add_argument(row.option, dest=row.name, type=row.kind, metavar=row.metavar, help=_help(row),
                           default=os.environ.get(row.var) or None if row.secret else row.default)
    p.add_argument("--ofp-port", type=int, default=6653, help="OpenFlow listen port (default 6653)")
    p.add_argument("--listen", default="127.0.0.1", help="OpenFlow listen address (default 127.0.0.1)")
    p.add_argument("--framework", choices=("auto", "os_ken", "ryu"), default="auto",
                   help="OpenFlow framework (default: os-ken if installed, else Ryu)")
    p.add_argument("--settings-markdown", action="store_true",
                   help="print docs/settings.md, the table of the settings above, and exit")
    args = p.parse_args(argv)
    if not 1 <= args.ofp_port <= 65535:
        p.error(f"--ofp-port: must be in 1..65535, got {args.ofp_port}")
    return args


def _meaning(row: Setting) -> str:
    names = f": {', '.join(sorted(POLICIES))}" if row.name == "policy" else ""   # the core cannot know them
    return row.meaning + names + (f"; {row.check}" if isinstance(row.check, Range) else "")


def _default(row: Setting) -> str:
    if row.default is None:
        return f"${row.var}, else {row.unset}" if row.secret else row.unset
    return "off" if row.default is False else str(row.default)


def _help(row: Setting) -> str:
    return f"{_meaning(row)} (default: {_default(row)})"


def settings_markdown() -> str:
    """docs/settings.md: the settings table as --help says it, for readers of the repository."""
    rows = "".join(f"| `{row.option}` | `{row.var}` | {_default(row)} | {_meaning(row)} |\n" for row in TABLE)
    return ("# Settings\n\n"
            "<!-- Generated from controller/core/settings.py, where a setting is added: "
            "python -m controller --settings-markdown > docs/settings.md -->\n\n"
            "Each setting is an option of the launcher (`python -m controller`) and a variable for "
            "`osken-manager` and `ryu-manager`;\nboth take the same values and are checked alike.\n\n"
            "| launcher option | variable for the managers | default | meaning |\n"
            "| --- | --- | --- | --- |\n" + rows +
            "\nThe launcher's own options (`--ofp-port`, `--listen`, `--framework`: where it listens for "
            "switches, which\nframework runs the app) are in `python -m controller --help`.\n")


def launch_settings(args: argparse.Namespace) -> Settings:
    """The options as the app's settings: paths it opens again made absolute, the level upper-cased."""
    values = {row.name: getattr(args, row.name) for row in TABLE}
    values.update({row.name: str(Path(values[row.name]).resolve()) for row in TABLE
                   if row.absolute and values[row.name]})
    return Settings(**values | {"log_level": args.log_level.upper()})


def settings_env(args: argparse.Namespace) -> dict[str, str]:
    """Validate the options as the app will, and return them as its LB_* variables."""
    settings = launch_settings(args)
    settings.validate()
    if settings.topology:
        load_spec(settings.topology)
    # Files named at launch must load: the app would only warn and fall back (least-loaded,
    # an empty table), which suits a reload at run time, not a typo at the command line.
    if settings.model or settings.policy in MODEL_POLICIES:
        bpann.load(settings.model or POLICIES.get(settings.policy, BpannPolicy).default_model)
    if settings.q_table and os.path.lexists(settings.q_table):
        qlearning.load(settings.q_table, qlearning.MODELS[settings.q_model])
    if settings.service_q_table and os.path.lexists(settings.service_q_table):
        qlearning.load(settings.service_q_table, members.MemberQTable)
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
    if args.settings_markdown:
        print(settings_markdown(), end="")
        return 0
    try:
        env = settings_env(args)
        check_listen(args.listen, args.ofp_port)
    except (ConfigError, TopologyError, ModelError, qlearning.QTableError) as exc:
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
