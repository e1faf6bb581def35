"""The one place that imports the OpenFlow framework: os-ken or Ryu, whichever is running.

`osken-manager` and `ryu-manager` each instantiate only subclasses of their own app base
class, so the app must resolve its names to the framework that loaded it. The choice is:
a framework already imported (the manager that is loading us), else LB_FRAMEWORK, else
os-ken if installed, else Ryu.
"""

from __future__ import annotations

import importlib
import os
import sys

FRAMEWORKS = ("os_ken", "ryu")


def _pick() -> str:
    for name in FRAMEWORKS:
        if f"{name}.base.app_manager" in sys.modules:
            return name
    wanted = os.environ.get("LB_FRAMEWORK", "")
    if wanted:
        if wanted not in FRAMEWORKS:
            raise ImportError(f"LB_FRAMEWORK: unknown framework '{wanted}' (os_ken or ryu)")
        return wanted
    for name in FRAMEWORKS:
        try:
            importlib.import_module(f"{name}.base.app_manager")
            return name
        except ImportError:
            continue
    raise ImportError("neither os-ken nor Ryu is installed: run scripts/setup.sh")


FRAMEWORK = _pick()


def _mod(path: str):
    return importlib.import_module(f"{FRAMEWORK}.{path}")


_app_manager = _mod("base.app_manager")
AppBase = getattr(_app_manager, "OSKenApp", None) or _app_manager.RyuApp
ofp_event = _mod("controller.ofp_event")
_handler = _mod("controller.handler")
set_ev_cls = _handler.set_ev_cls
CONFIG_DISPATCHER = _handler.CONFIG_DISPATCHER
MAIN_DISPATCHER = _handler.MAIN_DISPATCHER
DEAD_DISPATCHER = _handler.DEAD_DISPATCHER
ofproto_v1_3 = _mod("ofproto.ofproto_v1_3")
hub = _mod("lib.hub")


def manager_main(argv: list[str]) -> None:
    """Run the framework's manager (what osken-manager / ryu-manager run) with these args."""
    _mod("cmd.manager").main(args=argv)
