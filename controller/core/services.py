"""Services: a virtual IP and TCP port (the spec's "services") in front of a pool of member
hosts, as a pure object: members' health, the connection table, and the interface of the
policies that pick a member. The Balancer installs the entries (docs/services.md).

Data plane. The controller answers ARP for each virtual IP with VIP_MAC. A client's SYN to
vip:port picks a healthy member with the service's policy; the connection's two directions
become two flows of the Balancer, on the path its path policy picks to that member (the
reply on the reverse of it): the forward entries match the client's 5-tuple to the VIP and
the last switch rewrites eth_dst/ipv4_dst to the member; the reverse entries match the
member's reply and the last switch rewrites eth_src/ipv4_src back to the VIP. Both are
installed before the SYN is released, so the first reply is no packet-in, and every packet of
the connection meets the same member. A connection ends when either direction's entries are
gone (idle, evicted with MAX_FLOWS_PER_PORT, or a broken path): the table is bounded as the
flows are.

Health. Every HEALTH_INTERVAL_S the controller sends each member a TCP SYN to its service port
from the VIP (a health port, HEALTH_PORTS), by packet-out at the member's switch; the member
ARPs for the VIP (answered like anyone's), its SYN-ACK meets no entry and comes up as a
table-miss packet-in, and the controller answers RST so the member holds no half-open
connection. A SYN-ACK is an answer; an RST (the server is gone, its kernel refuses) takes the
member out at once; silence for DOWN_AFTER_S does too, so a member is out within DOWN_AFTER_S
+ HEALTH_INTERVAL_S (1.6 s) of its last answer. Why a SYN and not a ping or an HTTP request: a
ping is answered by a host whose server died, and a request needs a client in the controller
(a socket, which the core has not) and the service's protocol; the SYN tests exactly what a
new connection needs, the listening socket, with no state on the member. Its round trip is
kept as the member's `rtt_ms`: the kernel answers it, so it tells a host or link that is slow,
not a queue of requests (that is what `response_ms` measures).

Response time. The reverse direction's first switch carries one more entry, above the others:
the member's FIN (OpenFlow 1.3 matches TCP flags through ONF's experimenter field, which Open
vSwitch supports), forwarded and also sent to the controller. From the SYN's packet-in to the
FIN's is the connection's response time, as the server ended it: its error is the difference
of the two packet-ins' delays through the switch and the controller's event loop
(docs/services.md has it measured). The connection is then no longer active, which is what
least-connections counts, and a learning policy is told.
"""

from __future__ import annotations

import logging
import math
import random
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from controller.core.flows import FlowKey
from controller.core.monitor import PathFeatures
from controller.core.network import HostLocation
from controller.core.spec import Service, Spec
from controller.openflow.messages import PacketOut
from controller.openflow.packets import PROTO_TCP, TCP_ACK, TCP_RST, TCP_SYN, Frame, Ipv4, Tcp, reset_for, tcp_frame

log = logging.getLogger("lb.services")

VIP_MAC = "02:4c:42:00:00:02"       # locally administered: every virtual IP is at this address
HEALTH_INTERVAL_S = 0.4
DOWN_AFTER_S = 1.2                  # silence after the last answer that takes a member out
HEALTH_PORTS = range(61440, 65536)  # the VIP's source ports for probes: above Linux's ephemeral range
PROBES_KEPT = 4                     # unanswered probes an answer may still be to (a slow controller)
EWMA = 0.3                          # weight of the newest sample in rtt_ms and response_ms
PROBE_WINDOW = 64240
RESETS_PER_S = 100                  # strays answered with an RST, at most: a flood of strays is no flood of RSTs
RETIRED = 1024                      # connections ended unfinished whose member's FIN may yet come up


class MemberLoad(NamedTuple):
    """What a member policy sees of one candidate member at a decision."""
    host: str
    weight: float
    active: int                     # connections open to it (no FIN from it yet)
    rtt_ms: float | None            # health probes' round trip (EWMA)
    response_ms: float | None       # its connections' response time (EWMA)
    path: PathFeatures | None = None    # the round trip to it from the client, its utilisation by others'
                                        # traffic, no loss or latency (Balancer._path_look; load-aware only)


class MemberPolicy:
    """How a service picks a member (the policies are in controller/policies/members.py).
    choose() is never given an empty list; it sees only healthy members."""
    name = ""
    learns = False
    load_aware = False      # wants each candidate's path features

    def choose(self, service: str, members: list[MemberLoad], key: FlowKey) -> int:
        raise NotImplementedError

    def learn(self, service: str, chosen: MemberLoad, response_s: float, after: MemberLoad) -> None:
        """A connection to `chosen` (as it was at the choice) took response_s; `after` is its
        member now (only called when `learns`)."""

    def save(self) -> None:
        """Keep what was learnt (called after each poll)."""

    def describe(self) -> dict:
        return {"policy": self.name}


@dataclass
class Member:
    host: str
    ip: str
    mac: str
    weight: float
    healthy: bool = False           # until its first answer
    last_answer: float = -math.inf
    rtt_ms: float | None = None
    response_ms: float | None = None
    active: int = 0
    chosen: int = 0
    completed: int = 0
    probes: dict[int, tuple[int, float]] = field(default_factory=dict)   # port -> (sequence, sent at)

    def load(self, path: PathFeatures | None = None) -> MemberLoad:
        return MemberLoad(self.host, self.weight, self.active, self.rtt_ms, self.response_ms, path)


@dataclass
class ServiceState:
    spec: Service
    members: list[Member]
    policy: MemberPolicy

    def member(self, ip: str) -> Member | None:
        return next((m for m in self.members if m.ip == ip), None)


@dataclass
class Connection:
    service: str
    forward: FlowKey            # client -> vip:port
    reverse: FlowKey            # member:port -> client
    member: Member
    opened_at: float
    fin_cookie: int             # the FIN watch entry's (flows.plan), on the reply's ingress
    fin_dpid: int               # where the FIN watch is: the member's switch
    syn_cookie: int             # the SYN watch entry's, on the client's ingress
    client_dpid: int            # where the SYN watch is: the client's
    client_isn: int             # its SYN's sequence number: the same again is that SYN retransmitted
    chosen: MemberLoad          # the member as the policy saw it
    finished: bool = False


def ewma(old: float | None, sample: float) -> float:
    return sample if old is None else old + EWMA * (sample - old)


class Services:
    def __init__(self, spec: Spec | None, make_policy: Callable[[], MemberPolicy] | None, seed: int = 0) -> None:
        services = spec.services if spec else ()
        if services and make_policy is None:
            raise ValueError("a spec with services needs a member policy")
        self.services: dict[str, ServiceState] = {}
        for s in services:
            members = [Member(m.host, spec.host(m.host).ip, spec.host(m.host).mac, m.weight) for m in s.members]
            self.services[s.name] = ServiceState(s, members, make_policy())
        self._at = {(s.spec.vip, s.spec.port): s for s in self.services.values()}
        self.vips = frozenset(vip for vip, _ in self._at)
        self._member_ports = {(m.ip, s.spec.port) for s in self.services.values() for m in s.members}
        self.connections: dict[FlowKey, Connection] = {}     # by either direction's key
        self._by_fin: dict[int, Connection] = {}              # by its FIN watch's cookie
        self._retired: OrderedDict[int, Connection] = OrderedDict()    # the same, ended before it (RETIRED)
        self._rng = random.Random(seed)
        self._next_port = 0
        self._resets = (-1, 0)       # (second, RSTs sent in it)

    def __bool__(self) -> bool:
        return bool(self.services)

    def at(self, vip: str, port: int | None) -> ServiceState | None:
        return self._at.get((vip, port))

    def concerns(self, ip: Ipv4) -> bool:
        """Whether an IPv4 packet is a service's business: to a VIP, or from a member's service port."""
        return ip.dst in self.vips or (ip.proto == PROTO_TCP and (ip.src, ip.src_port) in self._member_ports)

    def set_policy(self, make_policy: Callable[[], MemberPolicy], name: str | None = None) -> None:
        for s in self.services.values():
            if name in (None, s.spec.name):
                s.policy.save()     # what it learnt since the last poll, for a policy made again later
                s.policy = make_policy()
                log.info("service %s: member policy is now %s", s.spec.name, s.policy.name)

    # -- health --------------------------------------------------------------------------
    def health(self, now: float, locate: Callable[[str], HostLocation | None]) -> tuple[list[PacketOut], list[Member]]:
        """Take out members silent for DOWN_AFTER_S, and probe every member the controller
        has located; and the members it has not (never seen, or their port went down): they
        stay out, nothing can reach them, until they are found."""
        out, missing = [], []
        self._next_port = (self._next_port + 1) % len(HEALTH_PORTS)
        port = HEALTH_PORTS[self._next_port]
        for s in self.services.values():
            for m in s.members:
                if m.healthy and now - m.last_answer > DOWN_AFTER_S:
                    self._down(s, m, f"no answer for {now - m.last_answer:.2f} s")
                at = locate(m.ip)
                if at is None:
                    missing.append(m)
                    continue
                seq = self._rng.getrandbits(32)
                m.probes[port] = (seq, now)
                while len(m.probes) > PROBES_KEPT:
                    del m.probes[next(iter(m.probes))]
                syn = Tcp(port, s.spec.port, seq, 0, TCP_SYN)
                out.append(PacketOut(at.at.dpid, (at.at.port,),
                                     tcp_frame(m.mac, VIP_MAC, s.spec.vip, m.ip, syn, PROBE_WINDOW)))
        return out, missing

    def is_health_answer(self, ip: Ipv4) -> bool:
        s = self.at(ip.dst, ip.src_port)
        return s is not None and ip.dst_port in HEALTH_PORTS and s.member(ip.src) is not None

    def health_answer(self, ip: Ipv4, tcp: Tcp, at: HostLocation, now: float) -> list[PacketOut]:
        """A member's answer to a probe (is_health_answer): a SYN-ACK is met with an RST, which
        ends the half-open connection on the member, whether it answers a probe still kept or not."""
        s = self.at(ip.dst, ip.src_port)
        m = s.member(ip.src)
        probe = m.probes.get(tcp.dst_port)
        ours = probe is not None and tcp.ack == (probe[0] + 1) & 0xFFFFFFFF
        if ours:
            del m.probes[tcp.dst_port]
        if tcp.flags & TCP_RST:
            if ours:
                self._down(s, m, f"its port refuses connections (last answer {now - m.last_answer:.2f} s ago)")
            return []
        if tcp.flags & (TCP_SYN | TCP_ACK) != TCP_SYN | TCP_ACK:
            return []
        if ours:
            m.rtt_ms = ewma(m.rtt_ms, (now - probe[1]) * 1e3)
            m.last_answer = now
            if not m.healthy:
                m.healthy = True
                log.info("service %s: member %s up", s.spec.name, m.host)
        rst = Tcp(tcp.dst_port, tcp.src_port, tcp.ack, 0, TCP_RST)
        return [PacketOut(at.at.dpid, (at.at.port,), tcp_frame(m.mac, VIP_MAC, s.spec.vip, m.ip, rst))]

    @staticmethod
    def _down(s: ServiceState, m: Member, why: str) -> None:
        if m.healthy:
            log.warning("service %s: member %s down: %s", s.spec.name, m.host, why)
        m.healthy = False

    # -- connections ---------------------------------------------------------------------
    def reset(self, frame: Frame, tcp: Tcp, at: HostLocation, now: float) -> list[PacketOut]:
        """Answer a client's stray (a packet to a service that no connection owns: its path broke,
        it was evicted, the controller restarted) with an RST from the VIP, so that the client
        fails at once instead of retransmitting into silence; at most RESETS_PER_S a second."""
        second, sent = self._resets
        rst = reset_for(frame, tcp)
        if rst is None or (int(now) == second and sent >= RESETS_PER_S):
            return []
        self._resets = (int(now), sent + 1 if int(now) == second else 1)
        ip = frame.ipv4
        return [PacketOut(at.at.dpid, (at.at.port,), tcp_frame(frame.eth_src, VIP_MAC, ip.dst, ip.src, rst))]

    def candidates(self, s: ServiceState, client_ip: str) -> list[Member]:
        """The members a new connection may go to: healthy, and not the client itself (its own
        packets would have to leave by the port they came in at)."""
        return [m for m in s.members if m.healthy and m.ip != client_ip]

    def add(self, conn: Connection) -> None:
        self.connections[conn.forward] = self.connections[conn.reverse] = conn
        self._by_fin[conn.fin_cookie] = conn
        conn.member.active += 1
        conn.member.chosen += 1

    def connection(self, key: FlowKey) -> Connection | None:
        return self.connections.get(key)

    def watched(self, cookie: int) -> Connection | None:
        """The connection whose FIN watch entry sent a packet-in with this cookie: a live one,
        or one that ended before the packet-in came (a new connection on its 5-tuple won the
        race), whose FIN is then measured and goes no further."""
        return self._by_fin.get(cookie) or self._retired.get(cookie)

    def finished(self, conn: Connection, now: float) -> bool:
        """The member's FIN: the response is complete. True if the connection is live (its
        watch is still there, to delete)."""
        live = self._by_fin.pop(conn.fin_cookie, None) is not None
        self._retired.pop(conn.fin_cookie, None)
        if conn.finished:
            return live
        conn.finished = True
        m, s = conn.member, self.services[conn.service]
        if live:        # a retired connection stopped counting as active when it ended
            m.active -= 1
        m.completed += 1
        response_s = now - conn.opened_at
        m.response_ms = ewma(m.response_ms, response_s * 1e3)
        log.debug("connection %s to %s: response %.1f ms", conn.forward, m.host, response_s * 1e3)
        if s.policy.learns:
            s.policy.learn(conn.service, conn.chosen, response_s, m.load(conn.chosen.path))
        return live

    def forget(self, key: FlowKey) -> Connection | None:
        """Drop the connection one of whose directions is gone; None if the key is no connection's."""
        conn = self.connections.pop(key, None)
        if conn is None:
            return None
        self.connections.pop(conn.reverse if key == conn.forward else conn.forward, None)
        self._by_fin.pop(conn.fin_cookie, None)
        if not conn.finished:
            conn.member.active -= 1
            self._retired[conn.fin_cookie] = conn
            if len(self._retired) > RETIRED:
                self._retired.popitem(last=False)
        return conn

    def save(self) -> None:
        for s in self.services.values():
            s.policy.save()
