"""An OpenFlow error from real Open vSwitch, provoked through the real controller process,
is tied by its xid to the request it answers: the log line names the switch, the error and
the flow-mod (its cookie is the flow's, as REST reports it), and the error is counted under
the request's kind in Prometheus and REST.

The error is one a production switch gives: a full flow table. Open vSwitch limits a table
with the Flow_Table row's flow_limit and, by default, refuses an ADD beyond it with
OFPET_FLOW_MOD_FAILED / OFPFMFC_TABLE_FULL, echoing the flow-mod's xid."""

from __future__ import annotations

import re
import subprocess

from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import H1H7, require_lab
from topologies.lab import Lab, wait_until


def ofp_errors(lab: Lab) -> dict[tuple[str, str], float]:
    return {(s.labels["request"], s.labels["type"]): s.value
            for family in text_string_to_metric_families(lab.metrics_text()) if family.name == "lb_ofp_errors"
            for s in family.samples if s.name == "lb_ofp_errors_total"}


def test_a_flow_mod_refused_by_a_full_table_is_named_and_counted(tmp_path_factory):
    require_lab()
    with Lab(H1H7, tmp_path_factory.mktemp("ofp-errors")) as lab:
        assert ofp_errors(lab) == {}
        # s1 (h1's switch) keeps its base entries but takes no new one
        subprocess.run(["ovs-vsctl", "--", "--id=@ft", "create", "Flow_Table", "flow_limit=1",
                        "overflow_policy=refuse", "--", "set", "Bridge", "s1", "flow_tables:0=@ft"], check=True)
        h1, h7 = lab.net.get("h1"), lab.net.get("h7")
        h1.cmd(f"ping -c 2 -W 1 {h7.IP()}")
        wait_until(lambda: ofp_errors(lab).get(("flow_mod", "OFPET_FLOW_MOD_FAILED"), 0) >= 1, 10,
                   what="an OpenFlow error counted against a flow_mod")
        flows = {f["cookie"]: f for f in lab.api("flows")[1]}
        assert not any("10.0.0.1" in f["match"].get("nw_src", "") for f in lab.flows("s1")), "s1 took an entry"
        lines = [line for line in lab.log_text().splitlines() if "OpenFlow error" in line]
        errors = ofp_errors(lab)
        assert lines, lab.log_text()[-2000:]
        # each line names the flow-mod that s1 refused: a flow of ours through s1, by its cookie
        # and its match (the ping's request, and its reply, whose egress entry is at s1)
        pattern = re.compile(r"OpenFlow error from s1: OFPET_FLOW_MOD_FAILED OFPFMFC_TABLE_FULL, in answer to "
                             r"flow_mod cookie (0x[0-9a-f]+) priority 100 match in_port=\d+,eth_type=0x800,"
                             r"ipv4_src=([\d.]+),ipv4_dst=([\d.]+),ip_proto=1 \(xid \d+\)$")
        named = set()
        for line in lines:
            found = pattern.search(line)
            assert found, line
            cookie, src, dst = found.groups()
            assert cookie in flows, f"{line}: no flow has cookie {cookie}"
            flow = flows[cookie]
            assert (flow["src_ip"], flow["dst_ip"], flow["proto"]) == (src, dst, 1) and "s1" in flow["path"], line
            named.add((src, dst))
        assert ("10.0.0.1", "10.0.0.7") in named
        # every error answered a flow-mod: none unknown, none of another kind
        assert set(errors) == {("flow_mod", "OFPET_FLOW_MOD_FAILED")}
        assert errors["flow_mod", "OFPET_FLOW_MOD_FAILED"] >= len(lines)
        status, counters = lab.api("counters")
        assert status == 200
        (row,) = counters["ofp_errors"]
        assert (row["request"], row["type"]) == ("flow_mod", "OFPET_FLOW_MOD_FAILED") and row["count"] >= len(lines)
