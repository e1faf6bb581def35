"""Hosts that lie, on real Open vSwitch and Mininet: frames sent from inside a host's
namespace with the real bytes (issue items 5-8). Each test asserts what the attack must not
achieve, then what the operator sees (the counter, the one log line). The forged frames are
built here, byte by byte or with scapy, independently of the controller's own code."""

from __future__ import annotations

import os
import struct
import sys

import pytest
from scapy.all import ARP, IP, UDP, Ether, raw

from tests.integration.conftest import counter, running_lab
from topologies.lab import wait_until

LLDP_MULTICAST = "01:80:c2:00:00:0e"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    yield from running_lab(tmp_path_factory, "hostile-hosts")   # every host has pinged every other


def frames_io(lab, host: str, *args: str) -> str:
    h = lab.net.get(host)
    out = h.cmd(f"timeout 20 {sys.executable} -m tests.integration.frames_io {args[0]} "
                f"--iface {h.defaultIntf().name} {' '.join(args[1:])}; echo exit=$?")
    out, _, code = out.rstrip().rpartition("exit=")
    assert code == "0", f"frames_io on {host} failed: {out[-500:]}"
    return out


def send(lab, host: str, *frames: bytes) -> None:
    """Through a file: a host's shell reads a command line of at most 4 KB."""
    path = lab.workdir / f"frames-{host}.hex"
    path.write_text("\n".join(f.hex() for f in frames) + "\n")
    frames_io(lab, host, "send", "--file", str(path))


def counted(lab, name: str, before: float, more: int = 1) -> bool:
    """Wait until the controller has counted `more` events of a kind (False if it does not
    within 5 s, as when it does not see the attack at all)."""
    try:
        return bool(wait_until(lambda: counter(lab, name) >= before + more, 5, what=name))
    except TimeoutError:
        return False


def where(lab, ip: str) -> tuple[str, int] | None:
    hosts = {h["ip"]: (h["switch"], h["port"]) for h in lab.api("topology")[1]["hosts"]}
    return hosts.get(ip)


def host(lab, name: str):
    return lab.spec.host(name)


def probe_frame(dpid: int, port: int, sent_at: float, tail: bytes) -> bytes:
    """An LLDP frame in the controller's probe format (chassis 'dpid:%016x', port, TTL,
    system name 'sdn-lb', sent-at TLV), with `tail` after the time: nothing (the format before
    probes were signed) or a made-up signature."""
    def tlv(kind: int, value: bytes) -> bytes:
        return struct.pack("!H", kind << 9 | len(value)) + value
    body = (tlv(1, b"\x07dpid:" + b"%016x" % dpid) + tlv(2, b"\x02" + struct.pack("!I", port))
            + tlv(3, struct.pack("!H", 120)) + tlv(5, b"sdn-lb")
            + tlv(127, b"\x00\x00\x00\x01" + struct.pack("!d", sent_at) + tail) + tlv(0, b""))
    return raw(Ether(src="0e:00:00:00:00:01", dst=LLDP_MULTICAST, type=0x88CC)) + body


def test_item5_a_host_sending_as_another_does_not_take_its_place(lab):
    h2, h7 = host(lab, "h2"), host(lab, "h7")
    home = where(lab, h2.ip)
    assert home is not None and home[0] == "s2"
    spoofed = counter(lab, "spoofed_frames")
    send(lab, "h5", raw(Ether(src=h2.mac, dst=h7.mac) / IP(src=h2.ip, dst=h7.ip) / UDP(sport=1234, dport=5678)))
    seen = counted(lab, "spoofed_frames", spoofed)
    assert where(lab, h2.ip) == home
    reached = lab.rtt_probe("h7", "h2", sport=47001, count=5)     # a new h7 -> h2 flow
    assert reached["received"] == 5, reached
    assert seen and counter(lab, "spoofed_frames") == spoofed + 1
    assert f"dropped spoofed frame at s5:1: sender {h2.mac} {h2.ip} is not the host bound there" in lab.log_text()


def test_item6_a_forged_arp_reply_does_not_poison_another_hosts_cache(lab):
    h1, h5, h7 = host(lab, "h1"), host(lab, "h5"), host(lab, "h7")
    h1node = lab.net.get("h1")
    assert h7.mac in h1node.cmd(f"ip neigh show {h7.ip}")               # pingall filled it
    spoofed = counter(lab, "spoofed_frames")
    send(lab, "h5", raw(Ether(src=h5.mac, dst=h1.mac) / ARP(op=2, hwsrc=h5.mac, psrc=h7.ip, hwdst=h1.mac, pdst=h1.ip)))
    seen = counted(lab, "spoofed_frames", spoofed)
    assert h5.mac not in h1node.cmd(f"ip neigh show {h7.ip}")
    assert seen and counter(lab, "spoofed_frames") == spoofed + 1
    assert where(lab, h7.ip)[0] == "s7"


def test_item7_a_frame_with_a_foreign_source_address_is_not_routed(lab):
    h1, h7 = host(lab, "h1"), host(lab, "h7")
    spoofed = counter(lab, "spoofed_frames")
    send(lab, "h1", raw(Ether(src=h1.mac, dst=h7.mac) / IP(src="192.168.66.6", dst=h7.ip) / UDP(sport=1, dport=9)))
    seen = counted(lab, "spoofed_frames", spoofed)
    entries = [f for s in lab.spec.switches for f in lab.flows(s.name) if f["match"].get("nw_src") == "192.168.66.6"
               or f["match"].get("ipv4_src") == "192.168.66.6"]
    assert entries == []
    assert not [f for f in lab.api("flows")[1] if f["src_ip"] == "192.168.66.6"]
    assert seen and counter(lab, "spoofed_frames") == spoofed + 1


def links(lab) -> set[tuple]:
    return {(lk["src"], lk["src_port"], lk["dst"], lk["dst_port"]) for lk in lab.api("topology")[1]["links"]}


def test_item8_forged_probes_make_no_link_and_no_latency(lab):
    known = links(lab)
    rejected = counter(lab, "rejected_probes")
    send(lab, "h2", probe_frame(5, 99, 1.0, b""), probe_frame(5, 99, 1.0, os.urandom(16)),
         probe_frame(1, 1, -1e6, os.urandom(16)))
    seen = counted(lab, "rejected_probes", rejected, 2)
    assert links(lab) == known
    assert not [lk for lk in lab.api("links")[1] if (lk["latency_ms"] or 0) > 1000]
    assert seen and counter(lab, "rejected_probes") == rejected + 2   # the unsigned old format is not ours at all


def replay(lab, catcher: str, sender: str) -> None:
    """The catcher keeps one of the controller's probes it received; the sender replays it."""
    captured = frames_io(lab, catcher, "capture", "--ethertype", "0x88cc", "--count", "1", "--seconds", "5").split()
    assert captured, f"no probe reached {catcher} within 5 s"
    send(lab, sender, bytes.fromhex(captured[0]))


def test_item8_a_probe_replayed_by_colluding_hosts_on_linked_switches_makes_no_link(lab):
    """h1 (on s1) keeps a probe the controller sent it and h2 (on s2, which the spec links to s1)
    replays it: no link s1:1 -> s2:1, h2's port stays a host's."""
    known = links(lab)
    rejected = counter(lab, "rejected_probes")
    replay(lab, "h1", "h2")
    seen = counted(lab, "rejected_probes", rejected)
    assert links(lab) == known
    assert where(lab, host(lab, "h2").ip)[0] == "s2"
    assert seen and "rejected LLDP probe at s2:1 claiming s1:1: through a host's port" in lab.log_text()


def test_item8_hosts_that_flap_their_ports_to_be_forgotten_still_make_no_link(lab):
    """Port amnesia: a host that takes its link down and up is forgotten as a host there; the
    spec's one s1-s2 link, already known, still tells the replay from a link."""
    for name in ("h1", "h2"):
        lab.net.get(name).defaultIntf().ifconfig("down")
    wait_until(lambda: where(lab, host(lab, "h1").ip) is None and where(lab, host(lab, "h2").ip) is None, 10,
               what="the unplugged hosts to be forgotten")
    for name in ("h1", "h2"):
        lab.net.get(name).defaultIntf().ifconfig("up")
    known = links(lab)
    rejected = counter(lab, "rejected_probes")
    replay(lab, "h1", "h2")
    seen = counted(lab, "rejected_probes", rejected)
    assert links(lab) == known
    assert seen and "rejected LLDP probe at s2:1 claiming s1:1: a second link where the spec lists one" in lab.log_text()
    for name in ("h1", "h2"):     # and they are hosts again as soon as they speak
        lab.net.get(name).cmd("ping -c 1 -W 1 10.0.0.7")
    assert where(lab, host(lab, "h1").ip) == ("s1", 1) and where(lab, host(lab, "h2").ip) == ("s2", 1)


def test_a_flood_of_spoofed_frames_is_counted_in_full_and_logged_in_a_few_lines(lab):
    h2, h7 = host(lab, "h2"), host(lab, "h7")
    spoofed = counter(lab, "spoofed_frames")
    lines = lab.log_text().count("dropped spoofed frame")
    send(lab, "h5", *(raw(Ether(src=h2.mac, dst=h7.mac) / IP(src=h2.ip, dst=h7.ip) / UDP(sport=2000 + i, dport=9))
                      for i in range(200)))
    assert counted(lab, "spoofed_frames", spoofed, 200)
    assert lab.log_text().count("dropped spoofed frame") - lines <= 20
