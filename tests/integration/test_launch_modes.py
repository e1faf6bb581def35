"""Other ways to run the controller on H1-H7: under Ryu 4.34, and against Mininet's own `mn`.

Each builds the network itself, with the spec's switch names: a module of their own, so that no
module-scoped lab is up meanwhile (a second network of the same names deleted its bridges, and
its teardown then hung on a dead host).
"""

from __future__ import annotations

import subprocess

from tests.integration.conftest import H1H7, assert_clean_log, require_lab
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
