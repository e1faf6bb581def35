"""What the controller sent under each xid, so that an OpenFlow error (which carries the xid of
the request it answers) can say which request failed.

Each connection numbers its requests with its own counter (the framework's, Datapath.xid, so
that its own messages and ours never share an xid) and remembers the last REMEMBERED of them
in a ring indexed by xid: memory is fixed per connection, whatever a switch sends back, and an
error whose xid is not among them answers "an unknown request".

Error names come from the framework's ofproto_v1_3 constants (error_names), passed in: this
module imports no framework.
"""

from __future__ import annotations

from collections.abc import Iterable

from controller.openflow.messages import (
    EchoRequest,
    FlowDelete,
    FlowMod,
    FlowStatsRequest,
    PacketOut,
    PortStatsRequest,
)

REMEMBERED = 1024             # requests remembered per connection (a power of two)
MAX_XID = 0xFFFFFFFF
UNKNOWN = "unknown"
KINDS = {FlowMod: "flow_mod", FlowDelete: "flow_delete", PacketOut: "packet_out",
         PortStatsRequest: "port_stats", FlowStatsRequest: "flow_stats", EchoRequest: "echo"}
PORT_DESC = "port_desc"       # the adapter's own request, not the core's
# ofp_error_type -> the prefix of its codes' names (OpenFlow 1.3 spec, section A.4.4)
CODE_PREFIXES = {0: "OFPHFC_", 1: "OFPBRC_", 2: "OFPBAC_", 3: "OFPBIC_", 4: "OFPBMC_", 5: "OFPFMFC_",
                 6: "OFPGMFC_", 7: "OFPPMFC_", 8: "OFPTMFC_", 9: "OFPQOFC_", 10: "OFPSCFC_", 11: "OFPRRFC_",
                 12: "OFPMMFC_", 13: "OFPTFFC_"}


class Sent:
    """The last REMEMBERED requests of one connection, by xid. A request is remembered as
    what describe() needs: a flow-mod or flow-delete itself (frozen, small), any other message
    by its kind only (a packet-out's frame is not kept)."""

    __slots__ = ("_xids", "_requests")
    _MASK = REMEMBERED - 1

    def __init__(self) -> None:
        self._xids: list[int | None] = [None] * REMEMBERED
        self._requests: list[object] = [None] * REMEMBERED

    def add(self, xid: int, request: object) -> None:
        i = xid & self._MASK
        self._xids[i], self._requests[i] = xid, request

    def get(self, xid: int) -> object | None:
        """The request sent under xid, None if it is not among the last REMEMBERED."""
        i = xid & self._MASK
        return self._requests[i] if self._xids[i] == xid else None


def remembered(m: object) -> object:
    """What Sent keeps of a core message: a statistics request itself (its reply needs the
    poll it answers), a flow-mod or flow-delete (an error describes it), else its kind."""
    return m if type(m) in (FlowMod, FlowDelete, PortStatsRequest, FlowStatsRequest) else KINDS[type(m)]


def kind(request: object | None) -> str:
    if request is None:
        return UNKNOWN
    return request if isinstance(request, str) else KINDS[type(request)]


def describe(request: object | None) -> str:
    """One phrase for a log line: the kind, and a flow-mod's cookie, priority and match."""
    if request is None:
        return "an unknown request"
    if isinstance(request, FlowMod):
        match = ",".join(f"{k}={v:#x}" if k == "eth_type" else f"{k}={v}" for k, v in request.match.oxm().items())
        return f"flow_mod cookie {request.cookie:#x} priority {request.priority} match {match or 'any'}"
    if isinstance(request, FlowDelete):
        return f"flow_delete cookie {request.cookie:#x}/{request.cookie_mask:#x}"
    return kind(request)


def error_names(ofproto) -> tuple[dict[int, str], dict[tuple[int, int], str]]:
    """(type -> OFPET_* name, (type, code) -> code name) from an ofproto_v1_3 module."""
    names = [(n, v) for n, v in vars(ofproto).items() if n.startswith("OFP") and isinstance(v, int)]
    types = {v: n for n, v in names if n.startswith("OFPET_")}
    codes = {(t, v): n for t, prefix in CODE_PREFIXES.items() for n, v in names if n.startswith(prefix)}
    return types, codes


class ErrorNames:
    """Names for an error's type and code; a number the tables do not have stays a number
    (and its type counts as 'unknown', so a switch cannot mint metric labels)."""

    def __init__(self, ofproto) -> None:
        self.types, self.codes = error_names(ofproto)

    def type(self, type_: int) -> str:
        return self.types.get(type_, UNKNOWN)

    def describe(self, type_: int, code: int | None) -> str:
        t = self.types.get(type_, f"type {type_}")
        if code is None:
            return t
        return f"{t} {self.codes.get((type_, code), f'code {code}')}"


def label_pairs(counts: Iterable[tuple[tuple[str, str], int]]) -> list[dict]:
    """Counts keyed (request kind, error type) as rows, sorted, for JSON."""
    return [{"request": r, "type": t, "count": n} for (r, t), n in sorted(counts)]
