"""Link discovery with our own LLDP probes, so no framework module has to be patched.

Each probe names the sending switch and port; when another switch hands it back in a
packet-in, the pair of ends is a directed link. Links not re-confirmed within a few probe
intervals expire, so a silently dead link disappears even without a port-status event.

Probes go out of host ports too, so any host can read them and write its own: each carries
an HMAC of its switch, port and time under a secret of this controller instance, and a probe
without a valid one is refused (what else a probe must satisfy is the Balancer's to check).
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from typing import NamedTuple

from controller.openflow.packets import ETH_LLDP, ethernet

LLDP_MULTICAST = "01:80:c2:00:00:0e"
_CHASSIS_PREFIX = b"dpid:"
_SYSTEM_NAME = b"sdn-lb"  # marks probes as ours; foreign LLDP (real switches, hosts) is ignored
_SENT_AT = b"\x00\x00\x00\x01"   # organisationally specific TLV: OUI 00-00-00, subtype 1
_MAC_BYTES = 16


class End(NamedTuple):
    dpid: int
    port: int


class Probe(NamedTuple):
    src: End
    sent_at: float
    authentic: bool      # False: it looks like ours, but this instance did not send it


def _mac(key: bytes, dpid: int, port: int, sent_at: float) -> bytes:
    return hmac.new(key, struct.pack("!QId", dpid, port, sent_at), hashlib.sha256).digest()[:_MAC_BYTES]


def _tlv(tlv_type: int, value: bytes) -> bytes:
    return struct.pack("!H", tlv_type << 9 | len(value)) + value


def probe(dpid: int, port: int, sent_at: float, key: bytes) -> bytes:
    """An LLDP frame that says 'sent by switch dpid on port at controller time sent_at',
    signed with key."""
    src_mac = "0e:" + ":".join(f"{b:02x}" for b in struct.pack("!HBH", dpid & 0xFFFF, 0, port & 0xFFFF))
    body = (_tlv(1, b"\x07" + _CHASSIS_PREFIX + b"%016x" % dpid)   # chassis id, locally assigned
            + _tlv(2, b"\x02" + struct.pack("!I", port))           # port id, port component
            + _tlv(3, struct.pack("!H", 120))                      # time to live
            + _tlv(5, _SYSTEM_NAME)                                # system name
            + _tlv(127, _SENT_AT + struct.pack("!d", sent_at)      # when the controller sent it,
                   + _mac(key, dpid, port, sent_at))                # and that we sent it
            + _tlv(0, b""))
    return ethernet(LLDP_MULTICAST, src_mac, ETH_LLDP, body)


def parse_probe(payload: bytes, key: bytes) -> Probe | None:
    """One of our probes (LLDP payload after the Ethernet header), authentic or not; None for
    any other LLDP."""
    tlvs = {}
    offset = 0
    while offset + 2 <= len(payload):
        header = struct.unpack_from("!H", payload, offset)[0]
        tlv_type, length = header >> 9, header & 0x1FF
        value = payload[offset + 2: offset + 2 + length]
        if tlv_type == 0 or len(value) < length:
            break
        tlvs.setdefault(tlv_type, value)
        offset += 2 + length
    chassis, port, name, sent = tlvs.get(1, b""), tlvs.get(2, b""), tlvs.get(5), tlvs.get(127, b"")
    if name != _SYSTEM_NAME or not chassis.startswith(b"\x07" + _CHASSIS_PREFIX) \
            or len(port) != 5 or port[0] != 2 or len(sent) != 12 + _MAC_BYTES or not sent.startswith(_SENT_AT):
        return None
    try:   # fromhex, not int(): int() takes signs, blanks and underscores
        dpid = int.from_bytes(bytes.fromhex(chassis[1 + len(_CHASSIS_PREFIX):].decode("ascii")), "big")
    except (UnicodeDecodeError, ValueError):
        return None
    if len(chassis) != 1 + len(_CHASSIS_PREFIX) + 16:
        return None
    src, sent_at = End(dpid, struct.unpack("!I", port[1:])[0]), struct.unpack("!d", sent[4:12])[0]
    return Probe(src, sent_at, hmac.compare_digest(sent[12:], _mac(key, src.dpid, src.port, sent_at)))


class LinkTable:
    """Directed links seen by probes, with the time each was last confirmed."""

    def __init__(self) -> None:
        self._peer: dict[End, End] = {}   # sending end -> receiving end
        self._back: dict[End, End] = {}   # receiving end -> sending end
        self._seen: dict[End, float] = {}

    def __len__(self) -> int:
        return len(self._peer)

    def seen(self, src: End, dst: End, now: float) -> bool:
        """Record that a probe sent at src arrived at dst; True if the link is new or moved."""
        changed = self._peer.get(src) != dst
        if changed:   # src now leads elsewhere, or dst is now reached from elsewhere
            self._drop([s for s in dict.fromkeys((src, self._back.get(dst))) if s in self._peer])
            self._peer[src], self._back[dst] = dst, src
        self._seen[src] = now
        return changed

    def peer(self, end: End) -> End | None:
        return self._peer.get(end)

    def is_link_port(self, end: End) -> bool:
        """True if a link leaves or enters at this port (so no host can be learned there)."""
        return end in self._peer or end in self._back

    def links(self) -> list[tuple[End, End]]:
        """All directed links, in a stable order (by sending switch and port)."""
        return sorted(self._peer.items(), key=lambda link: (link[0].dpid, link[0].port))

    def _drop(self, srcs: list[End]) -> list[tuple[End, End]]:
        gone = [(src, self._peer.pop(src)) for src in srcs]
        for src, dst in gone:
            del self._back[dst], self._seen[src]
        return gone

    def remove_end(self, end: End) -> list[tuple[End, End]]:
        """Forget the links starting or ending at this port."""
        return self._drop([s for s in dict.fromkeys((end, self._back.get(end))) if s in self._peer])

    def remove_switch(self, dpid: int) -> list[tuple[End, End]]:
        return self._drop([src for src, dst in self._peer.items() if dpid in (src.dpid, dst.dpid)])

    def expire(self, now: float, timeout_s: float) -> list[tuple[End, End]]:
        """Forget links not confirmed within timeout_s."""
        return self._drop([src for src, t in self._seen.items() if now - t > timeout_s])
