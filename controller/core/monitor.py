"""From switch counters to link metrics and the paper's four path features.

Per directed link a -> b (a = sending port, b = receiving port):

- utilisation = bytes sent at a per second, over the *measured* interval between two
  snapshots (the switch's own port duration where it reports one), x 8 / capacity from the
  spec, clamped to [0, 1].
- loss = 1 - (packets/s received at b) / (packets/s offered to a), clamped to [0, 1]. "Offered"
  is the larger of a's transmit counter and the packets our flow entries sent towards a: the
  userspace datapath drops packets that a shaped link cannot take before the port counts them,
  so only the flow counters see them. Drop counters at either end raise the estimate if larger.
  Below MIN_PACKETS offered in a window loss is 0 (nothing to lose). A window in which a's rate
  more than doubled or halved (or that follows one under MIN_PACKETS), or our entries towards a
  that appeared (or were replaced) carried over 5% of its packets, is no evidence: the two ends'
  snapshots are taken moments apart, and when traffic starts between them a loss-free link read
  loss 0.2 for that window; so is a window whose replies to its poll are not all in (_whole).
  Such a window reads the estimate each poll keeps (keep_losses: the last window that was
  evidence) while it is fresh (max_age_s), else 0: on a loaded machine such windows are common,
  and when they read 0 a path losing 35% read 0 in 3 of 5 windows. A decision's outcome takes a
  kept estimate only if its window began after the decision. A flow entry's
  rate is the increase of its counters between two replies, never its total over its
  duration: Open vSwitch resets an entry's duration when an ADD replaces it but keeps its
  counters, and a loss-free link then read loss 0.94 to 0.997. The window is the entry's own
  duration's increase; where that disagrees (by over a tenth) with the switch's clock (the
  duration of its longest-lived port, which flow-mods do not restart), or the entry is younger
  than the window, it was replaced and that window gives no rate. What an entry offered is the
  lower of its last two windows' rates: Open vSwitch adds to an entry's counters only every 500 ms
  (its revalidator; measured: +223 packets each 0.5 s at 447 packets/s), so a 1 s window that
  catches a third addition reads 1.5x, and a late one shifts packets into the next window (a
  loss-free link read 0.012 on a loaded machine); only real drops show in two windows running.
  Timing entries by the ports' clock
  alone read a loss-free link at up to 0.05 loss on real OVS; by the controller's receive times,
  which carry its event-loop delays, a reply handled 950 ms late made a 4 Mbit/s flow read 80.
- latency = LLDP probe travel time (sent by the controller via a, received from b) minus half
  of each switch's echo round trip, clamped at 0; the minimum of the last LATENCY_WINDOW
  probes, because delays inside the controller (a busy event loop) only ever add to a sample,
  while queueing on a loaded link shows in every one.

Per path from host to host: bottleneck utilisation (max over its inter-switch links), end-to-end
loss 1 - prod(1 - loss), summed latency, and hop count (inter-switch links). The two host access
links count in loss: the switch facing the destination host shows (by its flow and port
counters) packets it could not send to the host; the source host's link shows its rate but no
loss, and access links carry no probes, so their latency is taken as 0. They do not count in
utilisation: every candidate between two hosts shares them, so where one is the busiest link
(always, where all links have one capacity) every candidate read the same and flows from a host
never spread.

Counters are untrusted: all-ones means "unsupported", a smaller value is a reset (that window
is unknown) unless the drop is so large it can only be a 64-bit wrap. A rate older than the
caller's max_age_s is unknown, not the last value seen (a link last measured saturated must
not read saturated an hour later), and so is a kept loss estimate; a port that goes down, or
whose counters reset, forgets its rates and the loss kept for what it sends.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple

from controller.core.discovery import End

UNSUPPORTED = 2**64 - 1
MIN_PACKETS = 20
LATENCY_WINDOW = 3       # probes
RTT_EWMA = 0.3


def counter_delta(prev: int | None, cur: int | None) -> int | None:
    """Increase of a 64-bit counter, or None when it cannot be known (unsupported, reset)."""
    if prev is None or cur is None or UNSUPPORTED in (prev, cur):
        return None
    if cur >= prev:
        return cur - prev
    if prev - cur > 2**63:           # wrapped past 2^64
        return cur + 2**64 - prev
    return None                      # reset (port re-created, switch restarted)


@dataclass(frozen=True)
class PortStat:
    """One port's counters as a switch reported them (None where not reported)."""
    port: int
    rx_packets: int
    tx_packets: int
    rx_bytes: int
    tx_bytes: int
    rx_dropped: int = 0
    tx_dropped: int = 0
    duration_s: float | None = None   # how long the port has existed, by the switch's clock


@dataclass(frozen=True)
class FlowStat:
    """One flow entry's counters: where it outputs and how much it sent."""
    cookie: int
    out_port: int
    packets: int
    bytes: int = 0
    duration_s: float | None = None   # how long the entry has existed; restarts when replaced


class FlowRate(NamedTuple):
    pps: float
    bps: float
    at: float             # controller time the second snapshot arrived
    packets: int          # in the window


@dataclass(frozen=True)
class PortRate:
    interval_s: float
    tx_bps: float
    rx_bps: float
    tx_pps: float
    rx_pps: float
    tx_packets: int
    drop_pps: float
    at: float             # controller time the second snapshot arrived
    steady: bool = False  # the window before carried traffic at a rate within 2x of this one's
    polls: tuple[float | None, float | None] = (None, None)   # the polls its two snapshots answer (None: not known)


@dataclass(frozen=True)
class LinkMetrics:
    src: End
    dst: End
    capacity_mbps: float
    rate_mbps: float
    utilisation: float
    loss: float
    latency_ms: float
    age_s: float          # since the older of the two ends was last measured
    known: bool = True    # rate, utilisation and loss measured recently (else they read 0)


@dataclass(frozen=True)
class PathFeatures:
    utilisation: float    # bottleneck: the busiest link
    loss: float           # 1 - prod(1 - loss_i)
    latency_ms: float     # sum over links
    hops: int             # inter-switch links
    unknown: int = 0      # links without recent statistics (their load reads 0)
    headroom_mbps: float = math.inf   # the least capacity left on a link (inf: no inter-switch link)
    capacity_mbps: float = math.inf   # the thinnest link's capacity (inf: no inter-switch link)

    def as_dict(self) -> dict:
        return {"utilisation": self.utilisation, "loss": self.loss, "latency_ms": self.latency_ms,
                "hops": self.hops, "unknown": self.unknown,
                "headroom_mbps": self.headroom_mbps if math.isfinite(self.headroom_mbps) else None,
                "capacity_mbps": self.capacity_mbps if math.isfinite(self.capacity_mbps) else None}


def round_trip(there: PathFeatures, back: PathFeatures) -> PathFeatures:
    """A path and the way back, each feature the worse direction's (so a load level of it is
    the busier direction's, on the one-way thresholds): a service's member takes the request
    one way and answers the other, and its answers are most of the bytes, so a member behind a
    link busy only in its answers' direction is as far as one behind a link busy both ways."""
    return PathFeatures(max(there.utilisation, back.utilisation), max(there.loss, back.loss),
                        max(there.latency_ms, back.latency_ms), there.hops, max(there.unknown, back.unknown),
                        min(there.headroom_mbps, back.headroom_mbps), min(there.capacity_mbps, back.capacity_mbps))


def clamp01(x: float) -> float:
    return 0.0 if not math.isfinite(x) or x < 0 else min(x, 1.0)


class Monitor:
    def __init__(self) -> None:
        self._ports: dict[End, tuple[PortStat, float, float | None]] = {}   # last snapshot, when, its poll
        self.rates: dict[End, PortRate] = {}
        # (dpid, cookie) -> last counters, when they arrived, the switch's clock then, the rate
        # they ended (None until an entry's second reply)
        self._flows: dict[tuple[int, int], tuple[FlowStat, float, tuple | None, FlowRate | None]] = {}
        self._clock: dict[int, tuple[int, float]] = {}   # dpid -> (its reference port, that port's duration)
        self._flow_round: dict[int, float] = {}   # dpid -> the poll its last whole flow reply answers
        # port -> (when our entries towards it last appeared, the packets they carried then)
        self._churn: dict[End, tuple[float, int]] = {}
        # port -> (dpid, cookie) -> rate: indexed by port, so that a link's metrics (computed
        # for every candidate of every new flow) read only its own entries
        self._offered: dict[End, dict[tuple[int, int], FlowRate]] = {}
        self._latency_ms: dict[tuple[End, End], deque[float]] = {}
        # sending port -> (loss, its window's start, end): what the last window that was
        # evidence of loss showed when a poll kept it (keep_losses)
        self._loss: dict[End, tuple[float, float, float]] = {}
        self.rtt_s: dict[int, float] = {}
        self.version = 0     # counts inputs, so that derived values can be cached between them

    # -- inputs ----------------------------------------------------------------------------
    def port_stats(self, dpid: int, stats: list[PortStat], now: float, answers: float | None = None) -> None:
        """Each port's rates since its last reply, and the switch's clock: the duration of a
        reference port, kept while it lives and grows (a reply may come in several parts).
        `answers`: the poll this reply answers (None: not known)."""
        self.version += 1
        ref = self._clock.get(dpid)
        durations = {s.port: s.duration_s for s in stats if s.duration_s is not None}
        if ref is not None and ref[0] in durations and durations[ref[0]] >= ref[1]:
            self._clock[dpid] = (ref[0], durations[ref[0]])
        elif durations and (ref is None or ref[0] in durations or End(dpid, ref[0]) not in self._ports):
            oldest = max(durations, key=durations.__getitem__)
            self._clock[dpid] = (oldest, durations[oldest])
        for s in stats:
            end = End(dpid, s.port)
            prev = self._ports.get(end)
            self._ports[end] = (s, now, answers)
            if prev is None:
                continue
            rate = _rate(prev[0], prev[1], s, now, self.rates.get(end), (prev[2], answers))
            if rate is None:      # a reset: no rate, and no loss held from before it
                self.rates.pop(end, None)
                self._loss.pop(end, None)
            else:
                self.rates[end] = rate

    def flow_stats(self, dpid: int, stats: list[FlowStat], now: float, answers: float | None = None,
                   more: bool = False) -> dict[int, FlowRate]:
        """Rates of the flow entries between this reply and the previous one (a new entry
        has none until its second reply); returns those measured now, by cookie. `answers`:
        the poll this reply answers; `more`: parts of it are still to come."""
        self.version += 1
        if not more and answers is not None:
            self._flow_round[dpid] = answers
        measured = {}
        for s in stats:
            key = (dpid, s.cookie)
            prev = self._flows.get(key)
            if prev is not None and prev[0].out_port != s.out_port:
                self._forget_flow(key)
                prev = None
            clock = self._clock.get(dpid)
            self._flows[key] = (s, now, clock, None)
            out = End(dpid, s.out_port)
            if prev is None:
                self._churned(out, now, s.packets)
                continue
            packets, nbytes = counter_delta(prev[0].packets, s.packets), counter_delta(prev[0].bytes, s.bytes)
            switch_s = clock[1] - prev[2][1] if clock and prev[2] and clock[0] == prev[2][0] else None
            interval, replaced = switch_s if switch_s is not None else now - prev[1], False
            if prev[0].duration_s is not None and s.duration_s is not None:
                own = s.duration_s - prev[0].duration_s      # the entry's own clock: exact
                replaced = switch_s is not None and (abs(own - switch_s) > switch_s / 10 or s.duration_s < switch_s * 0.9)
                interval = own
            # re-created, or replaced (its counts lag: a loss-free link read loss 0.08): no rate
            if packets is None or nbytes is None or interval <= 0 or replaced:
                if key in self._offered.get(out, {}):
                    del self._offered[out][key]
                self._churned(out, now, packets or s.packets)
                continue
            rate = measured[s.cookie] = FlowRate(packets / interval, nbytes * 8 / interval, now, packets)
            self._flows[key] = (s, now, clock, rate)
            if prev[3] is not None:     # what it offers: the lower of its last two windows
                self._offered.setdefault(out, {})[key] = min(rate, prev[3], key=lambda r: r.pps)._replace(at=now)
        return measured

    def _churned(self, end: End, now: float, packets: int) -> None:
        """Our entries towards a port appeared or were replaced, carrying packets in this window."""
        at, before = self._churn.get(end, (-math.inf, 0))
        self._churn[end] = (now, packets + (before if now - at < 0.5 else 0))

    def _evidence(self, rate: PortRate, end: End) -> bool:
        """Whether a's window can show loss: steady traffic, and the entries towards it that
        appeared in it (their replies follow the port's) carried at most 5% of it."""
        at, packets = self._churn.get(end, (-math.inf, 0))
        return rate.steady and (at <= rate.at - rate.interval_s / 2 or packets <= rate.tx_packets / 20)

    def _forget_flow(self, key: tuple[int, int]) -> None:
        self.version += 1
        stat = self._flows.pop(key)[0]
        end = End(key[0], stat.out_port)
        entries = self._offered.get(end, {})
        entries.pop(key, None)
        if not entries:
            self._offered.pop(end, None)

    def entry_rate(self, dpid: int, cookie: int) -> FlowRate | None:
        """The rate an entry's last window ended with; None before its second reply, after a
        reply that showed it re-created or replaced, or once it is forgotten."""
        entry = self._flows.get((dpid, cookie))
        return entry[3] if entry else None

    def forget_entries(self, cookie: int, dpids) -> None:
        """A flow's entries were deleted or replaced under another cookie: what they sent is
        offered no more (it read loss 0.5 on a loss-free link for the 3 polls it lingered)."""
        for dpid in dpids:
            if (dpid, cookie) in self._flows:
                self._forget_flow((dpid, cookie))

    def forget_stale_flows(self, now: float, max_age_s: float) -> None:
        for key in [k for k, (_, t, _, _) in self._flows.items() if now - t > max_age_s]:
            self._forget_flow(key)

    def echo_rtt(self, dpid: int, rtt_s: float) -> None:
        self.version += 1
        if math.isfinite(rtt_s) and rtt_s >= 0:
            old = self.rtt_s.get(dpid)
            self.rtt_s[dpid] = rtt_s if old is None else old + RTT_EWMA * (rtt_s - old)

    def probe_delay(self, src: End, dst: End, travel_s: float, now: float) -> None:
        """A probe took travel_s from the controller via src to dst and back up, arriving now."""
        self.version += 1
        if not math.isfinite(travel_s):
            return
        one_way = travel_s - self.rtt_s.get(src.dpid, 0.0) / 2 - self.rtt_s.get(dst.dpid, 0.0) / 2
        window = self._latency_ms.setdefault((src, dst), deque(maxlen=LATENCY_WINDOW))
        window.append((now - travel_s, max(one_way, 0.0) * 1000))

    def latency_ms(self, src: End, dst: End, since: float = -math.inf) -> float | None:
        """The least delay of the recent probes sent after `since`; 0 without probes at all,
        None if there are probes but none sent after `since`."""
        window = self._latency_ms.get((src, dst))
        if not window:
            return 0.0 if since == -math.inf else None
        later = [ms for sent, ms in window if sent > since]
        return min(later) if later else None

    def measured_since(self, end: End, since: float) -> bool:
        """Whether the port's last statistics window began after `since`."""
        rate = self.rates.get(end)
        return rate is not None and rate.at - rate.interval_s > since

    def forget_port(self, end: End) -> None:
        """A port that went down: its rates and last counters describe a link that is gone."""
        self.version += 1
        self._ports.pop(end, None)
        self.rates.pop(end, None)
        self._churn.pop(end, None)
        self._loss.pop(end, None)

    def forget_switch(self, dpid: int) -> None:
        self.version += 1
        for table in (self._ports, self.rates):
            for end in [e for e in table if e.dpid == dpid]:
                del table[end]
        for key in [k for k in self._flows if k[0] == dpid]:
            self._forget_flow(key)
        for key in [k for k in self._latency_ms if dpid in (k[0].dpid, k[1].dpid)]:
            del self._latency_ms[key]
        self.rtt_s.pop(dpid, None)
        self._clock.pop(dpid, None)
        self._flow_round.pop(dpid, None)
        for table in (self._churn, self._loss):
            for end in [e for e in table if e.dpid == dpid]:
                del table[end]

    # -- outputs ---------------------------------------------------------------------------
    def offered(self, end: End, now: float, max_age_s: float) -> tuple[float, int]:
        """(packets/s, packets) our fresh flow entries sent towards this port."""
        pps = packets = 0
        for rate in self._offered.get(end, {}).values():
            if now - rate.at <= max_age_s:
                pps += rate.pps
                packets += rate.packets
        return pps, packets

    def sent_bps(self, end: End, now: float, max_age_s: float, counted: Callable[[int], bool]) -> float:
        """Bits/s the fresh flow entries whose cookie `counted` accepts sent towards this port."""
        return sum(rate.bps for (_, cookie), rate in self._offered.get(end, {}).items()
                   if now - rate.at <= max_age_s and counted(cookie))

    def _whole(self, dpid: int, *rates: PortRate) -> bool:
        """Whether these port windows span the same two (known) polls, and the switch's flow
        reply to the later one is all in: a reply handled after the next poll (a busy
        controller) made a loss-free link read 0.18 or 0.44, two ends a poll apart cover
        different seconds, and after a refused reply one end's window spans two polls (a
        loss-free link slowing from 3000 to 1000 packets/s read 0.5)."""
        polls = rates[0].polls
        return None not in polls and all(r.polls == polls for r in rates) and \
            self._flow_round.get(dpid) == polls[1]

    def _link_window(self, src: End, tx: PortRate, rx: PortRate, now: float, max_age_s: float) -> float | None:
        """The loss a -> b's last window shows: 0 without traffic, None where it is no evidence
        (or not all in)."""
        if not self._whole(src.dpid, tx, rx):
            return None
        flow_pps, flow_packets = self.offered(src, now, max_age_s)
        offered_pps = max(tx.tx_pps, flow_pps)
        if max(tx.tx_packets, flow_packets) < MIN_PACKETS or offered_pps <= 0:
            return 0.0
        if not self._evidence(tx, src):
            return None
        return clamp01(max(1 - rx.rx_pps / offered_pps, (tx.drop_pps + rx.drop_pps) / offered_pps))

    def _host_window(self, end: End, rate: PortRate, now: float, max_age_s: float) -> float | None:
        """The loss the last window of a port towards a host shows, as _link_window; a busy port
        whose traffic our entries have not measured yet (an entry offers from its third reply)
        is no evidence."""
        if not self._whole(end.dpid, rate):
            return None
        flow_pps, flow_packets = self.offered(end, now, max_age_s)
        if flow_packets < MIN_PACKETS or flow_pps <= 0:
            return 0.0 if rate.tx_packets < MIN_PACKETS else None
        return clamp01(1 - rate.tx_pps / flow_pps) if self._evidence(rate, end) else None

    def keep_losses(self, links: Iterable[tuple[End, End]], to_hosts: Iterable[End], now: float,
                    max_age_s: float) -> None:
        """Once a poll, whoever else reads: the loss each link's (and each port's towards a host)
        last window shows (if all in: _whole), held through later windows that are no evidence."""
        self.version += 1
        for src, dst in links:
            tx, rx = self.rates.get(src), self.rates.get(dst)
            if max(_age(tx, now), _age(rx, now)) <= max_age_s:
                self._keep(src, tx, self._link_window(src, tx, rx, now, max_age_s))
        for end in to_hosts:
            rate = self.rates.get(end)
            if _age(rate, now) <= max_age_s:
                self._keep(end, rate, self._host_window(end, rate, now, max_age_s))

    def _keep(self, end: End, rate: PortRate, loss: float | None) -> None:
        if loss is not None:
            self._loss[end] = (loss, rate.at - rate.interval_s, rate.at)

    def _held(self, end: End, now: float, max_age_s: float) -> float:
        loss, _, at = self._loss.get(end, (0.0, -math.inf, -math.inf))
        return loss if now - at <= max_age_s else 0.0

    def loss_since(self, end: End, since: float) -> float | None:
        """The loss last kept for a sending port, if its window began after `since` (a decision's
        outcome is what came after it), else None: not measured yet."""
        loss, start, _ = self._loss.get(end, (0.0, -math.inf, -math.inf))
        return loss if start > since else None

    def access(self, end: End, to_host: bool, capacity_mbps: float, now: float,
               max_age_s: float) -> LinkMetrics:
        """The link between a switch port and a host. Towards the host, loss is what our entries
        offered the port but it did not send; from the host, nothing shows loss (taken as 0)."""
        rate = self.rates.get(end)
        if rate is None or now - rate.at > max_age_s:
            return LinkMetrics(end, end, capacity_mbps, 0.0, 0.0, 0.0, 0.0, _age(rate, now), known=False)
        bps, loss = (rate.tx_bps, 0.0) if to_host else (rate.rx_bps, 0.0)
        if to_host:
            loss = self._host_window(end, rate, now, max_age_s)
            loss = self._held(end, now, max_age_s) if loss is None else loss
        return LinkMetrics(end, end, capacity_mbps, bps / 1e6, clamp01(bps / 1e6 / capacity_mbps),
                           loss, 0.0, now - rate.at)

    def link(self, src: End, dst: End, capacity_mbps: float, now: float,
             max_age_s: float) -> LinkMetrics:
        tx, rx = self.rates.get(src), self.rates.get(dst)
        latency = self.latency_ms(src, dst)
        age_s = max(_age(tx, now), _age(rx, now))
        if age_s > max_age_s:
            return LinkMetrics(src, dst, capacity_mbps, 0.0, 0.0, 0.0, latency, age_s, known=False)
        rate_mbps = tx.tx_bps / 1e6
        loss = self._link_window(src, tx, rx, now, max_age_s)
        loss = self._held(src, now, max_age_s) if loss is None else loss
        return LinkMetrics(src, dst, capacity_mbps, rate_mbps, clamp01(rate_mbps / capacity_mbps), loss, latency,
                           age_s)


def _age(rate: PortRate | None, now: float) -> float:
    return math.inf if rate is None else now - rate.at


def _rate(prev: PortStat, prev_at: float, cur: PortStat, now: float, before: PortRate | None,
          polls: tuple) -> PortRate | None:
    """Rates between two snapshots of a port; None if a counter reset makes them unknowable."""
    interval = None
    if prev.duration_s is not None and cur.duration_s is not None:
        interval = cur.duration_s - prev.duration_s
    if interval is None or interval <= 0:
        interval = now - prev_at
    if interval <= 0:
        return None
    deltas = [counter_delta(getattr(prev, f), getattr(cur, f)) for f in
              ("tx_bytes", "rx_bytes", "tx_packets", "rx_packets")]
    if None in deltas:
        return None
    tx_bytes, rx_bytes, tx_packets, rx_packets = deltas
    drops = sum(d for d in (counter_delta(prev.tx_dropped, cur.tx_dropped),
                            counter_delta(prev.rx_dropped, cur.rx_dropped)) if d is not None)
    tx_pps = tx_packets / interval
    return PortRate(interval, tx_bytes * 8 / interval, rx_bytes * 8 / interval, tx_pps,
                    rx_packets / interval, tx_packets, drops / interval, now,
                    before is not None and before.tx_packets >= MIN_PACKETS and 0.5 <= tx_pps / max(before.tx_pps, 1e-9) <= 2,
                    polls)


def path_features(links: list[LinkMetrics], hops: int, booked_mbps: list[float] | None = None) -> PathFeatures:
    """The paper's four features of a path, and its headroom and capacity, from the metrics
    of its links (the source host's access link, the inter-switch links, the destination's
    access link), its number of inter-switch links, and the load booked on each link (added to
    its measured rate). Headroom and capacity are the inter-switch links' (hosts' access links
    are not shared by the candidates)."""
    survive, utilisation, latency, unknown, headroom, capacity = 1.0, 0.0, 0.0, 0, math.inf, math.inf
    last = len(links) - 1
    for i, (lk, booked) in enumerate(zip(links, booked_mbps or [0.0] * len(links))):
        survive *= 1 - lk.loss
        u = (lk.rate_mbps + booked) / lk.capacity_mbps if booked else lk.utilisation
        if 0 < i < last:
            utilisation = max(utilisation, u)
            headroom = min(headroom, max(lk.capacity_mbps - lk.rate_mbps - booked, 0.0))
            capacity = min(capacity, lk.capacity_mbps)
        latency += lk.latency_ms
        unknown += not lk.known
    return PathFeatures(min(utilisation, 1.0), clamp01(1 - survive), latency, hops, unknown, headroom, capacity)
