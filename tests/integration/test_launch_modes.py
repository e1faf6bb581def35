"""Other ways to run the controller on H1-H7: under Ryu 4.34, and against Mininet's own `mn`.

Each builds the network itself, with the spec's switch names: a module of their own, so that no
module-scoped lab is up meanwhile (a second network of the same names deleted its bridges, and
its teardown then hung on a dead host).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import types
from importlib.machinery import SourceFileLoader

import pytest
from mininet.util import customClass

from tests.integration.conftest import H1H7, assert_clean_log, require_lab
from topologies.build import LBRemoteController
from topologies.lab import Lab


def test_pingall_under_ryu_4_34(tmp_path, ryu_python):
    require_lab()
    with Lab(H1H7, tmp_path, python=str(ryu_python), framework="ryu") as lab:
        assert "load balancer on ryu" in lab.log_text()
        loss, _ = lab.pingall()
        assert loss == 0
        assert_clean_log(lab)


def test_mn_custom_builds_the_same_network(tmp_path):
    """`mn --custom topologies/h1h7.py --topo h1h7` against our controller: pingall passes."""
    require_lab()
    lab = Lab(H1H7, tmp_path)
    try:
        lab.start_controller()
        out = subprocess.run(
            ["mn", "--custom", "topologies/h1h7.py", "--topo", "h1h7",
             "--controller", f"remote,ip=127.0.0.1,port={lab.ofp_port}", "--test", "pingall"],
            cwd=H1H7.parent.parent, capture_output=True, text=True, timeout=120)
    finally:
        lab.stop_controller()
    assert "Results: 0% dropped" in out.stdout + out.stderr, out.stdout + out.stderr


# OFPT_HELLO, version 1.3, with an xid that is not UTF-8: what Mininet's telnet probe read back
BINARY_HELLO = bytes.fromhex("04000008") + b"\xc3\x28\xff\xfe"
PROBES = 300


def mn_remote_controller():
    """The class `mn --custom topologies/h1h7.py --controller remote` builds c0 with: the `mn`
    script's own reading of the custom file and of the controller name."""
    loader = SourceFileLoader("mn_script", shutil.which("mn"))
    mn = types.ModuleType(loader.name)
    loader.exec_module(mn)      # defines MininetRunner; runs nothing outside __main__
    runner = object.__new__(mn.MininetRunner)   # without __init__, which would start a network
    runner.custom(None, "--custom", str(H1H7.with_suffix(".py")), None)
    return customClass(mn.CONTROLLERS, "remote")


@pytest.mark.parametrize("custom", [False, True], ids=["lab", "mn-custom"])
def test_the_remote_controller_probe_survives_a_binary_hello(custom):
    """A controller that greets first, as OpenFlow's do: the probe finds it listening, where
    Mininet's own telnet probe raised UnicodeDecodeError on the hello's xid (in 1 of 100 probes
    here, 1 of 10 when they start a controller: hence 300, which Mininet's rarely survives)."""
    require_lab()
    cls = mn_remote_controller() if custom else LBRemoteController
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(10)   # the greeter ends by itself
        port = server.getsockname()[1]
        greeted = threading.Event()

        def greet():
            while True:
                try:
                    peer, _ = server.accept()
                except OSError:
                    return
                with peer:
                    try:
                        peer.sendall(BINARY_HELLO)
                    except OSError:    # the probe closed first: it still connected
                        continue
                    greeted.set()
        threading.Thread(target=greet, daemon=True).start()
        controller = cls("c0", ip="127.0.0.1", port=port)   # probes the port as it starts
        try:
            assert greeted.wait(5)
            assert all(controller.isListening("127.0.0.1", port) for _ in range(PROBES))
        finally:
            controller.terminate()
