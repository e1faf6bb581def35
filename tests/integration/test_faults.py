"""Faults: a link of an active path fails and comes back, under a 10 ms ping train."""

from __future__ import annotations

import re
import subprocess
import time

import pytest

from tests.integration.conftest import assert_clean_log, running_lab
from topologies.lab import wait_until


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    yield from running_lab(tmp_path_factory, "faults")


def longest_gap_s(ping_output: str, interval_s: float) -> float:
    """The longest run of missing replies in a ping train, in seconds."""
    seqs = sorted({int(s) for s in re.findall(r"icmp_seq=(\d+)", ping_output)})
    assert seqs, f"no replies at all:\n{ping_output[-500:]}"
    return max((b - a - 1 for a, b in zip(seqs, seqs[1:])), default=0) * interval_s


def icmp_path(lab) -> list[str]:
    return next(f["path"] for f in lab.api("flows")[1]
                if f["proto"] == 1 and (f["src_ip"], f["dst_ip"]) == ("10.0.0.1", "10.0.0.7"))


def test_failed_link_is_routed_around_within_a_second_and_returns_as_a_candidate(lab):
    h1 = lab.net.get("h1")
    ping = h1.popen(["ping", "-i", "0.01", "-w", "6", "10.0.0.7"], stdout=subprocess.PIPE, text=True)
    time.sleep(2)
    assert icmp_path(lab) == ["s1", "s2", "s7"]
    lab.net.configLinkStatus("s2", "s7", "down")
    out, _ = ping.communicate(timeout=20)
    outage = longest_gap_s(out, 0.01)
    print(f"\noutage on link failure: {outage * 1000:.0f} ms; path now {icmp_path(lab)}")
    assert outage <= 1.0
    assert icmp_path(lab) == ["s1", "s3", "s4", "s7"]

    lab.net.configLinkStatus("s2", "s7", "up")
    wait_until(lambda: ["s1", "s2", "s7"] in [c["path"] for c in lab.api("paths?src=h1&dst=h7")[1]["candidates"]],
               15, what="s2-s7 to be a candidate again")
    assert_clean_log(lab)
