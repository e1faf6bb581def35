"""OpenFlow 1.3 framing, checked before the framework parses a message from a switch.

os-ken's and Ryu's parsers walk variable-length lists (hello elements, multipart entries,
instructions, actions, OXM fields) by the length each item declares: an item of length 0
never moves the walk on, and the parser loops forever at full CPU with memory growing
(upstream faucetsdn/ryu #188 to #196, still in os-ken 4.2.2 and in Ryu 4.34); an item longer
than what is left reads past the end and raises. So every length is checked here against the
spec's minimum and against what is left, walking each list exactly as the framework will.

Only what a switch sends this controller is accepted: the handshake, echo, errors,
packet-ins, flow-removed, port status, barrier replies and the multipart replies the
controller asks for (port descriptions, port and flow statistics). Anything else (a
FLOW_MOD, a group or table-features reply nobody asked for) is refused rather than parsed,
which keeps the framework's other looping parsers out of reach.

Pure: bytes in, a reason or None out; it never raises and every walk moves forward.
"""

from __future__ import annotations

import struct

VERSION = 4                                 # OpenFlow 1.3: the only version the app speaks
HELLO_VERSIONS = {1: "1.0", 3: "1.2", 4: "1.3", 5: "1.4", 6: "1.5"}   # both frameworks parse these
TYPES = ("HELLO", "ERROR", "ECHO_REQUEST", "ECHO_REPLY", "EXPERIMENTER", "FEATURES_REQUEST",
         "FEATURES_REPLY", "GET_CONFIG_REQUEST", "GET_CONFIG_REPLY", "SET_CONFIG", "PACKET_IN",
         "FLOW_REMOVED", "PORT_STATUS", "PACKET_OUT", "FLOW_MOD", "GROUP_MOD", "PORT_MOD", "TABLE_MOD",
         "MULTIPART_REQUEST", "MULTIPART_REPLY", "BARRIER_REQUEST", "BARRIER_REPLY",
         "QUEUE_GET_CONFIG_REQUEST", "QUEUE_GET_CONFIG_REPLY", "ROLE_REQUEST", "ROLE_REPLY",
         "GET_ASYNC_REQUEST", "GET_ASYNC_REPLY", "SET_ASYNC", "METER_MOD")
HELLO, FEATURES_REPLY = TYPES.index("HELLO"), TYPES.index("FEATURES_REPLY")
HEADER = struct.Struct("!BBHI")
_U16, _U32 = struct.Struct("!H"), struct.Struct("!I")
# Match fields: the OpenFlow basic class has its sizes checked here; other classes (Nicira,
# experimenters), which a switch may add to a packet-in, only that they fit, since the
# frameworks check those sizes themselves (an error there drops the message, in one line).
OXM_BASIC, OXM_EXPERIMENTER, ONF = 0x8000, 0xFFFF, 0x4F4E4600
# OpenFlow basic OXM fields 0..39: payload bytes (doubled when masked)
OXM_SIZES = (4, 4, 8, 6, 6, 2, 2, 1, 1, 1, 1, 4, 4, 2, 2, 2, 2, 2, 2, 1, 1, 2, 4, 4, 6, 6, 16, 16, 4, 1, 1,
             16, 6, 6, 4, 1, 1, 3, 8, 2)
SET_FIELD = 25
# action type -> its length; the frameworks step over these by their own size, not the
# declared one, so the two must agree
ACTION_SIZES = {0: 16, 11: 8, 12: 8, 15: 8, 16: 8, 17: 8, 18: 8, 19: 8, 20: 8, 21: 8, 22: 8, 23: 8,
                24: 8, 26: 8, 27: 8}
GOTO_TABLE, WRITE_METADATA, METER = 1, 2, 6
INSTRUCTION_SIZES = {GOTO_TABLE: 8, WRITE_METADATA: 24, METER: 8}     # stepped over by their own size too
ACTION_LISTS = {3, 4, 5}                                            # write, apply, clear actions
MP_FLOW, MP_PORT_STATS, MP_PORT_DESC = 1, 4, 13


class _Bad(Exception):
    pass


def _need(condition: bool, reason: str) -> None:
    if not condition:
        raise _Bad(reason)


def problem(msg: bytes) -> str | None:
    """What is wrong with one whole message from a switch (header included), or None."""
    try:
        _message(msg)
    except _Bad as exc:
        return str(exc)
    return None


def _message(buf: bytes) -> None:
    size = len(buf)
    _need(size >= HEADER.size, f"{size}-byte message, shorter than the OpenFlow header")
    version, kind, length, _ = HEADER.unpack_from(buf)
    _need(length >= HEADER.size, f"length field {length}, shorter than the OpenFlow header")
    _need(length == size, f"length field {length} for a {size}-byte message")
    name = TYPES[kind] if kind < len(TYPES) else f"type {kind}"
    if kind == HELLO:
        _need(version in HELLO_VERSIONS, f"HELLO of unknown OpenFlow version 0x{version:02x}")
        if version >= VERSION:             # from 1.3 on a HELLO carries elements
            _hello_elements(buf)
        return
    if version != VERSION:
        named = HELLO_VERSIONS.get(version, f"version 0x{version:02x}")
        raise _Bad(f"OpenFlow {named} message (type {kind}) on an OpenFlow 1.3 connection")
    check = _CHECKS.get(kind)
    _need(check is not None, f"unexpected {name} from a switch")
    check(buf, size)


def _at_least(minimum: int):
    def check(buf: bytes, size: int) -> None:
        _need(size >= minimum, f"{TYPES[buf[1]]} of {size} bytes, shorter than {minimum}")
    return check


def _hello_elements(buf: bytes) -> None:
    offset = HEADER.size
    while offset < len(buf):
        _need(offset + 4 <= len(buf), f"HELLO element header cut short at byte {offset}")
        length = _U16.unpack_from(buf, offset + 2)[0]
        _need(length >= 4, f"HELLO element of length {length} at byte {offset}")
        _need(offset + length <= len(buf), f"HELLO element of length {length} at byte {offset} "
                                           f"runs past the end")
        offset += length


def _error(buf: bytes, size: int) -> None:
    _need(size >= 12, f"ERROR of {size} bytes, shorter than 12")
    _need(_U16.unpack_from(buf, 8)[0] != 0xFFFF or size >= 16, f"experimenter ERROR of {size} bytes")


def _packet_in(buf: bytes, size: int) -> None:
    end = _match(buf, 24, size, "PACKET_IN")
    _need(end + 2 <= size, f"PACKET_IN of {size} bytes ends inside its match")


def _flow_removed(buf: bytes, size: int) -> None:
    _need(size >= 56, f"FLOW_REMOVED of {size} bytes, shorter than 56")
    _match(buf, 48, size, "FLOW_REMOVED")


def _multipart_reply(buf: bytes, size: int) -> None:
    _need(size >= 16, f"MULTIPART_REPLY of {size} bytes, shorter than 16")
    kind = _U16.unpack_from(buf, 8)[0]
    if kind in (MP_PORT_DESC, MP_PORT_STATS):
        entry = 64 if kind == MP_PORT_DESC else 112
        what = "port description" if kind == MP_PORT_DESC else "port statistics"
        _need((size - 16) % entry == 0, f"{what} reply of {size - 16} bytes, not a whole number of "
                                        f"{entry}-byte entries")
    elif kind == MP_FLOW:
        offset = 16
        while offset < size:
            _need(offset + 2 <= size, f"flow statistics entry cut short at byte {offset}")
            length = _U16.unpack_from(buf, offset)[0]
            _need(length >= 56, f"flow statistics entry of length {length} at byte {offset}")
            _need(offset + length <= size, f"flow statistics entry of length {length} at byte {offset} "
                                           f"runs past the end")
            _flow_stats(buf, offset, offset + length)
            offset += length
    else:
        raise _Bad(f"unexpected multipart reply of type {kind} (not requested)")


def _flow_stats(buf: bytes, start: int, end: int) -> None:
    offset = _match(buf, start + 48, end, "flow statistics entry")
    while offset < end:
        _need(offset + 4 <= end, f"instruction header cut short at byte {offset}")
        kind, length = struct.unpack_from("!HH", buf, offset)
        if kind in ACTION_LISTS:
            _need(length >= 8, f"instruction of length {length} at byte {offset}")
        else:
            _need(kind in INSTRUCTION_SIZES, f"instruction of unknown type {kind} at byte {offset}")
            _need(length == INSTRUCTION_SIZES[kind], f"instruction of type {kind} with length {length} "
                                                     f"at byte {offset}")
        _need(offset + length <= end, f"instruction of length {length} at byte {offset} runs past its entry")
        if kind in ACTION_LISTS:
            _actions(buf, offset + 8, offset + length)
        offset += length


def _actions(buf: bytes, offset: int, end: int) -> None:
    while offset < end:
        _need(offset + 4 <= end, f"action header cut short at byte {offset}")
        kind, length = struct.unpack_from("!HH", buf, offset)
        if kind == SET_FIELD:
            _need(length >= 8 and offset + length <= end, f"set-field action of length {length} at byte {offset}")
            _oxm(buf, offset + 4, offset + length, set_field=True)
        else:
            _need(kind in ACTION_SIZES, f"action of unknown type {kind} at byte {offset}")
            _need(length == ACTION_SIZES[kind], f"action of type {kind} with length {length} at byte {offset}")
            _need(offset + length <= end, f"action of length {length} at byte {offset} runs past its instruction")
        offset += length


def _match(buf: bytes, offset: int, end: int, where: str) -> int:
    """Check the OXM match at offset; return where what follows it (after padding) begins."""
    _need(offset + 4 <= end, f"{where} too short for its match")
    length = _U16.unpack_from(buf, offset + 2)[0]
    _need(length >= 4, f"{where} with a match of length {length}")
    padded = offset + (length + 7) // 8 * 8
    _need(padded <= end, f"{where} with a match of length {length} that runs past its end")
    field, fields_end = offset + 4, offset + length
    while field < fields_end:
        field = _oxm(buf, field, fields_end)
    return padded


def _oxm(buf: bytes, offset: int, end: int, set_field: bool = False) -> int:
    """Check one OXM field at offset; return where the next one begins."""
    _need(offset + 4 <= end, f"OXM field header cut short at byte {offset}")
    header = _U32.unpack_from(buf, offset)[0]
    oxm_class, field, masked, length = header >> 16, header >> 9 & 0x7F, header >> 8 & 1, header & 0xFF
    _need(offset + 4 + length <= end, f"OXM field of length {length} at byte {offset} runs past its end")
    _need(not (set_field and masked), f"masked set-field action at byte {offset}")
    if oxm_class == OXM_BASIC:
        _need(field < len(OXM_SIZES), f"unknown OXM field {field} at byte {offset}")
        _need(length == OXM_SIZES[field] << masked, f"OXM field {field} of length {length} at byte {offset}")
    else:                 # the value (and mask) behind an experimenter's id (and ONF's type)
        prefix = 0
        if oxm_class == OXM_EXPERIMENTER:
            _need(length >= 4, f"experimenter OXM field of length {length} at byte {offset}")
            prefix = 6 if _U32.unpack_from(buf, offset + 4)[0] == ONF and field == 0 else 4
        _need((length - prefix) >> masked >= 1, f"OXM field of class {oxm_class:#06x} and length {length} "
                                                f"at byte {offset}")
    return offset + 4 + length


_CHECKS = {TYPES.index(name): check for name, check in (    # what a switch may send, and its check
    ("ERROR", _error), ("ECHO_REQUEST", _at_least(8)), ("ECHO_REPLY", _at_least(8)), ("FEATURES_REPLY", _at_least(32)),
    ("PACKET_IN", _packet_in), ("FLOW_REMOVED", _flow_removed), ("PORT_STATUS", _at_least(80)),
    ("MULTIPART_REPLY", _multipart_reply), ("BARRIER_REPLY", _at_least(8)))}
