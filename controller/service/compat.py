"""The one place that imports the OpenFlow framework: os-ken or Ryu, whichever is running.

`osken-manager` and `ryu-manager` each instantiate only subclasses of their own app base
class, so the app must resolve its names to the framework that loaded it. The choice is:
a framework already imported (the manager that is loading us), else LB_FRAMEWORK, else
os-ken if installed, else Ryu.
"""

from __future__ import annotations

import functools
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
HANDSHAKE_DISPATCHER = _handler.HANDSHAKE_DISPATCHER
CONFIG_DISPATCHER = _handler.CONFIG_DISPATCHER
MAIN_DISPATCHER = _handler.MAIN_DISPATCHER
DEAD_DISPATCHER = _handler.DEAD_DISPATCHER
ofproto_v1_3 = _mod("ofproto.ofproto_v1_3")
hub = _mod("lib.hub")
_ofproto_parser = _mod("ofproto.ofproto_parser")
_parse = _ofproto_parser.msg
_controller = _mod("controller.controller")
_serve_switches = _controller.OpenFlowController.__call__
ACCEPT_PAUSE_S = 0.02


# The places where the app reaches into the framework, the same in os-ken and Ryu 4.34:
def guard_messages(admit) -> None:
    """Have admit(datapath, message) see every whole message from a switch before the
    framework parses it; the framework parses only those it returns True for.

    The hook is the framework's parse entry point, ofproto_parser.msg(), which each
    connection's receive loop (Datapath._recv_loop in controller/controller.py) calls with
    one message, cut from the stream by the length in its header. Returning None from it is
    what the framework itself does with a message it cannot parse: no event."""
    def msg(datapath, version, msg_type, msg_len, xid, buf):
        if not admit(datapath, buf):
            return None
        return _parse(datapath, version, msg_type, msg_len, xid, buf)
    _ofproto_parser.msg = msg


def guard_listener(accept_failed, cannot_listen) -> None:
    """Hold the OpenFlow port alone, fail plainly when it cannot be had, and keep it accepting
    through accept() errors.

    Alone: the framework listens with eventlet.listen (Ryu's hub.StreamServer calls it
    directly, os-ken's through hub.listen), which sets SO_REUSEPORT unless told not to, and
    when two sockets of one user set it both bind one port and the kernel splits the
    connections: another controller started on our port took a share of the switches,
    silently. Without it on our socket, theirs fails to bind. (eventlet's default changes for
    the whole process.)

    Fail: the manager waits on one thread, the OpenFlow listener's (OpenFlowController's
    call); when it could not listen, that thread ended with a traceback and the manager closed
    its apps and exited 0. Here cannot_listen(address, error) is told, the thread ends
    quietly, and the manager exits 2 once it has closed every app. (os-ken's extra listener
    on the old port 6633, started when no port is given, is left as the framework has it.)

    Accepting: the framework's accept loop (hub.StreamServer.serve_forever) ends at the first
    error, EMFILE when the process is out of file descriptors, and the manager exits with it.
    Here accept_failed(error) is told, and the loop pauses a moment (pending connections wait
    in the listen backlog) and goes on."""
    hub.listen = hub.eventlet.listen = functools.partial(hub.listen, reuse_port=False)

    def serve_switches(controller):
        try:
            _serve_switches(controller)
        except OSError as exc:       # its listening socket's: bind, or the TLS files
            conf = _controller.CONF
            tls = conf.ctl_privkey is not None and conf.ctl_cert is not None
            port = controller.ofp_ssl_listen_port if tls else controller.ofp_tcp_listen_port
            cannot_listen(f"{conf.ofp_listen_host}:{port}", exc)
            _exit_after_close(2)
            raise hub.TaskExit from None
    _controller.OpenFlowController.__call__ = serve_switches

    def serve_forever(server):
        while True:
            try:
                sock, addr = server.server.accept()
            except OSError as exc:
                accept_failed(exc)
                hub.sleep(ACCEPT_PAUSE_S)
                continue
            hub.spawn(server.handle, sock, addr)
    hub.StreamServer.serve_forever = serve_forever


def _exit_after_close(status: int) -> None:
    """Have the manager exit with `status` once it has closed every app (it then returns)."""
    manager = _app_manager.AppManager.get_instance()
    close = manager.close

    def close_then_exit():
        close()
        raise SystemExit(status)
    manager.close = close_then_exit


def manager_main(argv: list[str]) -> None:
    """Run the framework's manager (what osken-manager / ryu-manager run) with these args."""
    _mod("cmd.manager").main(args=argv)
