"""An emulator of N OpenFlow 1.3 switches (no Mininet, no Open VSwitch), wired as a topology
spec says, for measuring a controller app: each switch is one TCP connection that does the
handshake, answers echo, barrier, port-description, port-statistics and flow-statistics
requests, and hands every LLDP packet-out to the neighbouring switch as a packet-in, so the app
discovers the links. Hosts are addresses at edge ports: they can announce themselves (an ARP
request) and start new flows (a UDP packet-in at their switch). A flow is set up when the
app sends that same packet back out (a packet-out carrying it), whatever it installed first.

Only the message fields an app needs are encoded, with struct, by the OpenFlow 1.3 spec.
"""

from __future__ import annotations

import asyncio
import struct
import time
from dataclasses import dataclass, field

from controller.openflow.packets import ARP_REQUEST, BROADCAST, ETH_LLDP, arp_frame
from fakes.frames import ipv4_frame
from controller.core.spec import Spec

VERSION = 4
HELLO, ERROR, ECHO_REQUEST, ECHO_REPLY = 0, 1, 2, 3
FEATURES_REQUEST, FEATURES_REPLY, GET_CONFIG_REQUEST, GET_CONFIG_REPLY = 5, 6, 7, 8
PACKET_IN, FLOW_MOD, PACKET_OUT = 10, 14, 13
MULTIPART_REQUEST, MULTIPART_REPLY, BARRIER_REQUEST, BARRIER_REPLY = 18, 19, 20, 21
ROLE_REQUEST, ROLE_REPLY = 24, 25
MP_DESC, MP_FLOW, MP_PORT_STATS, MP_PORT_DESC = 0, 1, 4, 13
HEADER = struct.Struct("!BBHI")


def message(kind: int, xid: int, body: bytes = b"") -> bytes:
    return HEADER.pack(VERSION, kind, HEADER.size + len(body), xid) + body


def features_reply(dpid: int, xid: int) -> bytes:
    return message(FEATURES_REPLY, xid, struct.pack("!QIBBxxII", dpid, 0, 254, 0, 0x4F, 0))


def packet_in(in_port: int, data: bytes) -> bytes:
    match = struct.pack("!HHIIxxxx", 1, 12, 0x80000004, in_port)     # OXM in_port, padded to 8
    return message(PACKET_IN, 0, struct.pack("!IHBBQ", 0xFFFFFFFF, len(data), 0, 0, 0) + match + b"\0\0" + data)


@dataclass
class Counters:
    flow_mods: int = 0
    packet_outs: int = 0
    stats_requests: int = 0
    echo_requests: int = 0


@dataclass
class Switch:
    dpid: int
    ports: list[int]
    writer: asyncio.StreamWriter | None = None
    task: asyncio.Task | None = None
    connected: float = field(default_factory=time.monotonic)


class Emulator:
    def __init__(self, spec: Spec, port: int, host: str = "127.0.0.1") -> None:
        self.spec, self.address = spec, (host, port)
        self.switches: dict[int, Switch] = {}
        self.wire: dict[tuple[int, int], tuple[int, int]] = {}       # (dpid, port) -> peer switch end
        self.edge: dict[str, tuple[int, int]] = {}                    # host name -> (dpid, port)
        dpid = {s.name: s.dpid for s in spec.switches}
        ports: dict[int, list[int]] = {d: [] for d in dpid.values()}
        for lk, pa, pb in spec.link_ports():
            for (a, p), (b, q) in (((lk.a, pa), (lk.b, pb)), ((lk.b, pb), (lk.a, pa))):
                if a in dpid:
                    ports[dpid[a]].append(p)
                    if b in dpid:
                        self.wire[(dpid[a], p)] = (dpid[b], q)
                    else:
                        self.edge[b] = (dpid[a], p)
        self.switches = {d: Switch(d, sorted(p)) for d, p in ports.items()}
        self.counters = Counters()
        self.waiting: dict[bytes, float] = {}        # frame -> when its packet-in was sent
        self.setup_s: list[float] = []
        self.done = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._abandoned: list[asyncio.StreamWriter] = []

    # -- connections -----------------------------------------------------------------------
    async def connect(self) -> None:
        """Connect the switches not connected yet. Raise the first error if any failed; a
        retry connects only those (a second connection for a switch would cross its replies)."""
        pending = [s for s in self.switches.values() if s.writer is None]
        errors = [e for e in await asyncio.gather(*(self._connect(s) for s in pending), return_exceptions=True)
                  if e is not None]
        if errors:
            raise errors[0]

    async def _connect(self, switch: Switch) -> None:
        reader, writer = await asyncio.open_connection(*self.address)
        switch.writer = writer
        writer.write(message(HELLO, 0))
        switch.task = asyncio.get_running_loop().create_task(self._serve(switch, reader, writer))
        self._tasks.append(switch.task)

    async def reconnect(self, dpid: int) -> None:
        """Connect a switch again, leaving its old connection open but never read or answered
        again: what a controller sees when a switch restarts behind a half-open connection."""
        switch = self.switches[dpid]
        switch.task.cancel()
        self._abandoned.append(switch.writer)
        await self._connect(switch)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for writer in [s.writer for s in self.switches.values() if s.writer] + self._abandoned:
            writer.close()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, switch: Switch, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readexactly(HEADER.size)
                _, kind, length, xid = HEADER.unpack(head)
                body = await reader.readexactly(length - HEADER.size)
                self._handle(switch, kind, xid, body)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            if switch.writer is writer:        # the controller closed it: connect() connects it again
                switch.writer = None

    def _handle(self, s: Switch, kind: int, xid: int, body: bytes) -> None:
        w = s.writer
        if kind == ECHO_REQUEST:
            self.counters.echo_requests += 1
            w.write(message(ECHO_REPLY, xid, body))
        elif kind == FEATURES_REQUEST:
            w.write(features_reply(s.dpid, xid))
        elif kind == GET_CONFIG_REQUEST:
            w.write(message(GET_CONFIG_REPLY, xid, struct.pack("!HH", 0, 0xFFFF)))
        elif kind == BARRIER_REQUEST:
            w.write(message(BARRIER_REPLY, xid))
        elif kind == ROLE_REQUEST:
            w.write(message(ROLE_REPLY, xid, body))
        elif kind == MULTIPART_REQUEST:
            self.counters.stats_requests += 1
            w.write(self._multipart(s, xid, struct.unpack_from("!H", body)[0]))
        elif kind == FLOW_MOD:
            self.counters.flow_mods += 1
        elif kind == PACKET_OUT:
            self.counters.packet_outs += 1
            self._packet_out(s, body)

    def _multipart(self, s: Switch, xid: int, kind: int) -> bytes:
        if kind == MP_PORT_DESC:
            items = [struct.pack("!I4x6s2x16sIIIIIIII", p, struct.pack("!HI", 0x0200, s.dpid << 8 | p),
                                 f"s{s.dpid}-eth{p}".encode(), 0, 4, 0, 0, 0, 0, 10_000_000, 10_000_000)
                     for p in s.ports]
        elif kind == MP_PORT_STATS:
            up = time.monotonic() - s.connected
            items = [struct.pack("!I4x12Q2I", p, *[0] * 12, int(up), int(up % 1 * 1e9)) for p in s.ports]
        elif kind == MP_DESC:
            items = [struct.pack("!256s256s256s32s256s", b"sdn-lb", b"emulator", b"1", b"0", b"")]
        else:                     # flow statistics (and anything else): nothing to report
            items = []
        return message(MULTIPART_REPLY, xid, struct.pack("!HH4x", kind, 0) + b"".join(items))

    def _packet_out(self, s: Switch, body: bytes) -> None:
        _, _, actions_len = struct.unpack_from("!IIH", body)
        actions, data = body[16:16 + actions_len], body[16 + actions_len:]
        sent = self.waiting.pop(data, None)
        if sent is not None:
            self.setup_s.append(time.monotonic() - sent)
            if not self.waiting:
                self.done.set()
            return
        if data[12:14] != ETH_LLDP.to_bytes(2, "big"):
            return
        offset = 0
        while offset + 8 <= len(actions):
            kind, length = struct.unpack_from("!HH", actions, offset)
            if kind == 0:                                 # output
                peer = self.wire.get((s.dpid, struct.unpack_from("!I", actions, offset + 4)[0]))
                if peer and self.switches[peer[0]].writer:     # not yet connected: the next probe finds it
                    self.switches[peer[0]].writer.write(packet_in(peer[1], data))
            offset += max(length, 8)

    # -- hosts ---------------------------------------------------------------------------------
    def announce(self, name: str) -> None:
        """The host's ARP request for another host: the app learns where it is."""
        h = self.spec.host(name)
        other = next(o for o in self.spec.hosts if o.name != name)
        dpid, port = self.edge[name]
        self.switches[dpid].writer.write(packet_in(port, arp_frame(ARP_REQUEST, h.mac, h.ip, "00:00:00:00:00:00",
                                                                   other.ip, eth_dst=BROADCAST)))

    def teach(self, name: str) -> None:
        """For a learning switch: every switch sees the host's address once (from the edge
        port on its own switch, from port 1 elsewhere), so every switch knows where to send."""
        h = self.spec.host(name)
        frame = arp_frame(ARP_REQUEST, h.mac, h.ip, "00:00:00:00:00:00", h.ip, eth_dst=BROADCAST)
        for s in self.switches.values():
            port = self.edge[name][1] if self.edge[name][0] == s.dpid else s.ports[0]
            s.writer.write(packet_in(port, frame))

    def new_flow(self, src: str, dst: str, sport: int, dport: int = 7000) -> None:
        a, b = self.spec.host(src), self.spec.host(dst)
        frame = ipv4_frame(a.mac, b.mac, a.ip, b.ip, 17, sport, dport)
        dpid, port = self.edge[src]
        self.waiting[frame] = time.monotonic()
        self.done.clear()
        self.switches[dpid].writer.write(packet_in(port, frame))
