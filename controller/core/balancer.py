"""The controller's logic as a pure object: events in, OpenFlow messages (as data) out.

Like FAUCET's valve, it never touches a socket or a clock: every method takes the time
explicitly and returns what to send, so all of it is testable without a switch.
"""

from __future__ import annotations

import logging
import math
import random
import secrets
import struct
from collections import Counter, deque
from dataclasses import dataclass, field, replace
from itertools import chain, count, pairwise
from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple

from controller.core import discovery
from controller.core.arp import ArpProxy
from controller.core.bookings import Bookings, LinkKey
from controller.core.discovery import End
from controller.core.flows import FlowKey, plan
from controller.openflow.messages import (
    CONTROLLER,
    COOKIE_BASE,
    FLOW_ID_MASK,
    GENERATION_SHIFT,
    INSTANCE_MASK,
    EchoRequest,
    FlowDelete,
    FlowMod,
    FlowStatsRequest,
    Match,
    Message,
    PacketOut,
    PortStatsRequest,
    SetFields,
    generation_of,
)
from controller.core.monitor import (FlowRate, FlowStat, LinkMetrics, Monitor, PathFeatures, PortStat, path_features,
                                     round_trip)
from controller.core.network import HostLocation, Network
from controller.core.services import VIP_MAC, Connection, MemberPolicy, Services
from controller.openflow.packets import (ARP_REQUEST, ETH_ARP, ETH_IPV6, ETH_LLDP, PROTO_TCP, TCP_FIN, TCP_SYN,
                                         Frame, ParseError, is_unicast, parse, tcp_of)
from controller.core.paths import Path, PathFinder, hops, is_live
from controller.core.policy import Experience, Policy
from controller.core.settings import ConfigError, Settings
from controller.core.spec import Spec

log = logging.getLogger("lb.balancer")

# A link unconfirmed for this many probe intervals is gone. Generous, because a congested
# link drops probes too; a link that really fails is removed at once by its port-status event.
LINK_TIMEOUT_PROBES = 10
ALL_ONES = 2**64 - 1
MAX_DECISIONS = 10_000   # awaiting their outcome; beyond this the oldest are not learnt from
MAX_EXPLAINED = 1000     # recent decisions kept to explain them (GET /api/v1/decisions)
OUTCOME_POLLS = 5        # polls a decision's outcome may take to be measured
FLOW_WINDOW_S = 30       # --q-window flow: the longest a flow's outcome is read over (a bound on waiting)
# Flows per ingress port: a host starting flows faster than their entries expire (or a switch
# that never reports FLOW_REMOVED) makes the oldest be removed, entries and all, not memory grow.
MAX_FLOWS_PER_PORT = 4096
# A service's connection may be silent both ways for long (a request queued at a busy member):
# its entries live at least this long unused, where the others live --idle-timeout.
SERVICE_IDLE_S = 60


def base_flows(dpid: int, instance: int) -> list[Message]:
    """What every switch gets on connect: the entries this controller instance installed
    before the switch went away removed (it forgot those flows), then LLDP and ARP to the
    controller, IPv6 dropped (not routed, and it would only flood the controller), and a
    table-miss entry that sends the first packet of each new flow up. Entries of an earlier
    instance stay and keep forwarding until discovery has settled (see flow_stats)."""
    to_controller = (CONTROLLER,)
    return [FlowDelete(dpid, instance, INSTANCE_MASK),
            FlowMod(dpid, Match(), to_controller, priority=0, cookie=instance),
            FlowMod(dpid, Match(eth_type=ETH_LLDP), to_controller, priority=1000, cookie=instance),
            FlowMod(dpid, Match(eth_type=ETH_ARP), to_controller, priority=1000, cookie=instance),
            FlowMod(dpid, Match(eth_type=ETH_IPV6), (), priority=1000, cookie=instance)]


class Installed(NamedTuple):
    key: FlowKey
    path: Path
    cookie: int
    installed_at: float
    at: End                  # the port it counts against: its source host's (a service reply's: its client's)
    rewrite: SetFields = ()  # at the egress switch: a service connection's address translation


class Explained(NamedTuple):
    """A decision as it was taken, kept to explain it: what the policy was given and what it
    made of it. The decision path stores a plain tuple of objects it already has (a tuple is
    made 5x faster than this class); a reader makes it an Explained (Explained._make)."""
    id: int
    at: float
    key: FlowKey
    src: HostLocation
    dst: HostLocation
    candidates: list[Path]
    features: list[PathFeatures] | None   # None: the policy is not load-aware (it was given hops alone)
    scores: list[float] | None        # None: the policy does not choose by score
    action: int
    policy: Policy


MEANT = ("utilisation", "loss", "latency_ms")     # what --q-window flow averages: the reward is linear in them


@dataclass(frozen=True)
class Decision:
    at: float
    key: FlowKey
    candidates: list[Path]
    src: HostLocation
    dst: HostLocation
    before: list[PathFeatures]
    action: int
    readings: int = 0             # --q-window flow: the chosen path's readings so far ...
    total: PathFeatures | None = None    # ... MEANT summed over them, the rest the last's
    read_at: float = -math.inf    # ... and the end of its ingress entry's window at the last
    alternatives: Mapping[int, PathFeatures | None] = field(default_factory=dict)   # Experience's: the last poll's that
    # measured the chosen path (--q-window flow: the first reading's)

    def seen(self, after: PathFeatures, window_at: float) -> Decision:
        """This decision with one more reading of its path, taken when its entry's window
        ending at `window_at` was the last."""
        total = after if self.total is None else replace(after, **{
            name: getattr(self.total, name) + getattr(after, name) for name in MEANT})
        return replace(self, readings=self.readings + 1, total=total, read_at=window_at)

    def outcome(self) -> PathFeatures:
        """The mean of the readings."""
        return replace(self.total, **{name: getattr(self.total, name) / self.readings for name in MEANT})


class Balancer:
    def __init__(self, settings: Settings, policy: Policy, spec: Spec | None = None,
                 generation: int | None = None, member_policy: Callable[[], MemberPolicy] | None = None) -> None:
        """generation tells this instance's entries from a previous one's (random if not given);
        member_policy makes the policy each of the spec's services picks members with."""
        self.settings = settings
        self.generation = random.randrange(1, 0x10000) if generation is None else generation
        self.instance = COOKIE_BASE | self.generation << GENERATION_SHIFT
        self.policy = policy
        self.net = Network(spec, settle_s=3 * settings.probe_interval_s)
        self.paths = PathFinder(settings.k_paths)
        self.arp = ArpProxy(self.net)
        self.services = Services(spec, member_policy)
        self.flows: dict[FlowKey, Installed] = {}
        self._by_cookie: dict[int, FlowKey] = {}
        self._flows_at: dict[End, dict[FlowKey, None]] = {}   # per Installed.at, oldest first
        self.probe_key = secrets.token_bytes(16)      # signs this instance's LLDP probes
        self._spec_pairs = Counter(frozenset((spec.switch_dpid(lk.a), spec.switch_dpid(lk.b)))
                                   for lk in spec.switch_links()) if spec else None
        self._next_flow_id = 1
        self._complete = False
        self._hosts_sought = False
        self._checked_version = -1
        self.monitor = Monitor()
        self.bookings = Bookings(settings.new_flow_mbps * 1e6)
        self.counters: Counter[str] = Counter()
        self._pending: dict[int, float] = {}    # dpid -> when its port stats were requested
        self._decisions: deque[Decision] = deque(maxlen=MAX_DECISIONS)   # for a policy that learns
        self.explained: deque[tuple] = deque(maxlen=MAX_EXPLAINED)       # Explained's fields, oldest first
        self._explained_ids = count(1)
        self._features: dict[tuple[Path, HostLocation, HostLocation], PathFeatures] = {}
        self._measured: dict[tuple[Path, HostLocation, HostLocation], tuple[list[LinkKey], list[LinkMetrics]]] = {}
        self._features_stamp, self._features_since, self._bookings_seen = (-1, -1), float("-inf"), -1
        self._others_bps: dict[tuple[End, str], float] = {}   # (port, member's address): _others' rates
        self.stats_max_age_s = 3 * settings.poll_interval_s

    # -- switches, ports, links ----------------------------------------------------------
    def switch_up(self, dpid: int, ports: set[int], now: float) -> list[Message]:
        self.net.switch_up(dpid, ports, now)
        self.counters["datapath_connects"] += 1
        log.info("switch %s connected with %d ports", self.net.name(dpid), len(ports))
        return base_flows(dpid, self.instance) + self._probes(dpid, ports, now)

    def switch_down(self, dpid: int) -> list[Message]:
        if dpid not in self.net.ports:
            return []
        self.counters["datapath_disconnects"] += 1
        log.info("switch %s disconnected", self.net.name(dpid))
        self.net.switch_down(dpid)
        self.monitor.forget_switch(dpid)
        self._pending.pop(dpid, None)
        return self._after_topology_change()

    def port_changed(self, dpid: int, port: int, up: bool, now: float) -> list[Message]:
        if up:
            self.net.port_up(dpid, port)
            return self._probes(dpid, {port}, now)
        if self.net.port_down(dpid, port):
            log.info("port %s:%d down", self.net.name(dpid), port)
        self.monitor.forget_port(End(dpid, port))
        return self._after_topology_change()

    def tick(self, now: float) -> list[Message]:
        """Periodic work: expire silent links and probe every port for links."""
        self.net.expire_links(now, LINK_TIMEOUT_PROBES * self.settings.probe_interval_s)
        msgs = self._after_topology_change()
        for dpid, ports in sorted(self.net.ports.items()):
            msgs += self._probes(dpid, ports, now)
        if self._complete and not self._hosts_sought:
            msgs += self._seek_hosts(now)
        return msgs

    def _seek_hosts(self, now: float) -> list[Message]:
        """Once every link is known, ask (ARP probes, at the switch the spec attaches each to)
        for the spec's hosts we have not seen: after a restart hosts with warm ARP caches stay
        silent, and their first packets would otherwise wait for an ARP round trip."""
        self._hosts_sought = True
        spec = self.net.spec
        return self.arp.seek([(h.ip, spec.switch_dpid(spec.host_switch(h.name))) for h in spec.hosts
                              if self.net.host_by_ip(h.ip) is None], now)

    def _probes(self, dpid: int, ports: set[int], now: float) -> list[Message]:
        return [PacketOut(dpid, (p,), discovery.probe(dpid, p, now, self.probe_key)) for p in sorted(ports)]

    def _after_topology_change(self) -> list[Message]:
        """Forget flows whose path broke and delete their entries, so their next packet is
        routed again; report when the spec's links are all discovered (or no longer are).
        Nothing to do while the switch graph is unchanged (most ticks)."""
        if self.net.version == self._checked_version:
            return []
        self._checked_version = self.net.version
        msgs: list[Message] = []
        for key, flow in list(self.flows.items()):
            if not is_live(self.net, flow.path):
                msgs += self._uninstall(key)
        missing = self.net.missing_spec_links()
        if self.net.spec and not missing and not self._complete:
            log.info("topology complete: all %d switch links of spec '%s' discovered",
                     len(self.net.spec.switch_links()), self.net.spec.name)
        elif missing and self._complete:
            log.warning("topology incomplete: links %s not seen", ", ".join(missing))
        self._complete = self.net.spec is not None and not missing
        self._hosts_sought = self._hosts_sought and self._complete
        return msgs

    def _uninstall(self, key: FlowKey, why: str = "path {path} broke") -> list[Message]:
        """Forget a flow and delete its entries; nothing for one already gone (a service
        connection's other direction goes with it, so loops over flows may meet it gone)."""
        if key not in self.flows:
            return []
        flow = self._forget(key)
        log.info("flow %s: %s, entries removed", key, why.format(path=self.net.path_name(flow.path)))
        return self._delete(flow) + self._end_connection(key)

    def _delete(self, flow: Installed) -> list[Message]:
        return [FlowDelete(dpid, flow.cookie, ALL_ONES) for dpid in flow.path if dpid in self.net.ports]

    def _end_connection(self, key: FlowKey) -> list[Message]:
        """A service connection ends with either of its flows: the other is forgotten too and its
        entries deleted (left to expire, they would keep forwarding, rewritten, a direction the
        controller no longer knows), and its FIN and SYN watches deleted."""
        conn = self.services.forget(key)
        if conn is None:
            return []
        watches = ([] if conn.finished else [(conn.fin_dpid, conn.fin_cookie)]) + [(conn.client_dpid, conn.syn_cookie)]
        msgs: list[Message] = [FlowDelete(d, cookie, ALL_ONES) for d, cookie in watches if d in self.net.ports]
        partner = conn.reverse if key == conn.forward else conn.forward
        if partner in self.flows:
            msgs += self._delete(self._forget(partner))
        return msgs

    def _forget(self, key: FlowKey) -> Installed:
        flow = self.flows.pop(key)
        self._by_cookie.pop(flow.cookie, None)
        self.bookings.release(flow.cookie)
        self.monitor.forget_entries(flow.cookie, flow.path)
        at = self._flows_at.get(flow.at)
        if at is not None:
            at.pop(key, None)
            if not at:
                del self._flows_at[flow.at]
        return flow

    def flow_removed(self, dpid: int, cookie: int) -> list[Message]:
        """The ingress entry of a flow expired: the flow is over (and a service connection,
        whose watches are left to delete)."""
        key = self._by_cookie.get(cookie)
        if key is None or self.flows[key].path[0] != dpid:
            return []
        self._forget(key)
        return self._end_connection(key)

    def health(self, now: float) -> list[Message]:
        """Probe the services' members (the app calls this every services.HEALTH_INTERVAL_S),
        and ask by ARP, at the switch the spec attaches it to, for each member not located: a
        member whose port went down and came back is found again though it sends nothing."""
        probes, missing = self.services.health(now, self.net.host_by_ip)
        spec = self.net.spec
        sought = dict.fromkeys((m.ip, spec.switch_dpid(spec.host_switch(m.host))) for m in missing)   # once each
        return probes + self.arp.seek(list(sought), now)

    def set_member_policy(self, make: Callable[[], MemberPolicy], service: str | None = None) -> None:
        """Pick members with another policy for new connections (of one service, or all)."""
        self.services.set_policy(make, service)

    def set_policy(self, policy: Policy) -> None:
        """Use another policy for new flows (installed flows keep their paths)."""
        self.policy = policy
        self._decisions.clear()
        log.info("policy is now %s", policy.name)

    def reset_learning(self) -> None:
        """Forget what the policy learnt (ConfigError if it learns nothing)."""
        self.policy.reset()
        self._decisions.clear()

    def reload_model(self) -> None:
        """Reload the policy's model file; installed flows are untouched. Raises ConfigError if
        the policy has none, ModelError (keeping the old model) if the file is bad."""
        self.policy.reload()

    # -- statistics ----------------------------------------------------------------------
    def poll(self, now: float) -> list[Message]:
        """Ask every switch for an echo (for latency) and port and flow statistics. The echo
        goes first: its reply, queued behind the statistics replies of every switch, measured
        the controller's busy loop, not the channel, and was subtracted from every probe's
        delay (a saturated link then read near 0 ms). A reply still missing from the previous
        poll is counted stale; nothing waits for it."""
        msgs: list[Message] = []
        for dpid in sorted(self.net.ports):
            if dpid in self._pending:
                self.counters["stale_replies"] += 1
                log.debug("switch %s: no port statistics since the last poll", self.net.name(dpid))
            self._pending[dpid] = now
            msgs += [EchoRequest(dpid, struct.pack("!d", now)), PortStatsRequest(dpid, now), FlowStatsRequest(dpid, now)]
        self.monitor.forget_stale_flows(now, self.stats_max_age_s)
        self.bookings.expire(now, self.stats_max_age_s)
        self.monitor.keep_losses(self.net.links.links(), self.net.hosts_at, now, self.stats_max_age_s)
        self._learn(now)
        self.services.save()
        return msgs

    def _learn(self, now: float) -> None:
        """Give a learning policy the outcome of each decision once it is measured: probes and
        a statistics window that began after the decision, and the loss of each inter-switch
        link and of the destination host's port kept from such a window (a window reaching back
        before it saw the path as the decision did, not what the flow met). With --q-window
        flow, the mean of that reading and of one more (measured as it is) for each later
        window of the flow's own ingress entry that carried packets, until one carries none,
        the entry goes (expired, replaced, or its path broke), or FLOW_WINDOW_S passes. A
        decision not measured within OUTCOME_POLLS polls (or a probe interval and two polls, if
        longer) is counted in outcomes_unmeasured; one whose path broke before it was measured
        teaches nothing (outcomes_path_broken): what the flow met, re-routed, was another path's.
        A policy that compares (Policy.compared) is told the candidates it names as measured at
        a poll that measures the chosen path too: read at one moment, what the whole network did
        meanwhile is in each. The outcome waits for a poll that measures them all (a broken one
        is not waited for), until the deadline; then it is told the last poll that measured the
        chosen path, the others as that poll read them (and so if its path breaks meanwhile)."""
        ripe: list[Experience] = []
        waiting: list[Decision] = []
        # a probe must be sent after the decision, and a statistics window begin and end after it
        deadline = max(OUTCOME_POLLS * self.settings.poll_interval_s,
                       self.settings.probe_interval_s + 2 * self.settings.poll_interval_s)
        whole = self.settings.q_window == "flow"
        while self._decisions and now - self._decisions[0].at >= self.settings.poll_interval_s:
            d = self._decisions.popleft()
            chosen = d.candidates[d.action]
            if d.readings:      # flow: a reading for each new window in which its entry carried packets
                window = self._own_window(d)
                if window is None or window.packets == 0 or now - d.at >= FLOW_WINDOW_S:
                    ripe.append(Experience(d.before, d.action, d.outcome(), d.alternatives))
                    continue
                after = self.outcome(chosen, d.src, d.dst, d.at, now) if window.at > d.read_at else None
                waiting.append(d if after is None else d.seen(after, window.at))
                continue
            if not self._usable(chosen, d.src, d.dst):
                if d.alternatives:      # measured, waiting for a candidate compared with: that reading, unpaired
                    ripe.append(Experience(d.before, d.action, d.alternatives[d.action], d.alternatives))
                else:
                    self.counters["outcomes_path_broken"] += 1
                continue
            after, late = self.outcome(chosen, d.src, d.dst, d.at, now), now - d.at >= deadline
            if after is not None:
                d = replace(d, alternatives=self._alternatives(d, after, now))
            elif late and d.alternatives:       # measured before, never paired
                after = d.alternatives[d.action]
            if after is None and late:
                self.counters["outcomes_unmeasured"] += 1
            elif after is None or (None in d.alternatives.values() and not late):
                waiting.append(d)
            elif whole:
                window = self._own_window(d)
                waiting.append(d.seen(after, -math.inf if window is None else window.at))
            else:
                ripe.append(Experience(d.before, d.action, after, d.alternatives))
        self._decisions.extendleft(reversed(waiting))
        if ripe:
            self.policy.learn(ripe)

    def close(self) -> None:
        """As the controller stops: tell the policy, of each decision whose flow still sends
        (--q-window flow), the mean of the readings it has, not nothing (a flow decided in the
        last FLOW_WINDOW_S would teach nothing), and of each measured but still waiting for a
        candidate it is compared with, that reading; a decision not yet read has no outcome to tell."""
        ripe = [Experience(d.before, d.action, d.outcome() if d.readings else d.alternatives[d.action], d.alternatives)
                for d in self._decisions if d.readings or d.alternatives]
        self._decisions.clear()
        if ripe:
            self.policy.learn(ripe)

    def _alternatives(self, d: Decision, after: PathFeatures, now: float) -> dict[int, PathFeatures | None]:
        """Experience.alternatives as measured now, strictly after the decision: `after`, the
        chosen path's, and each candidate the policy compares it with, None if not measured yet
        (left out if broken: nothing to wait for); empty for a policy that compares none."""
        compared = self.policy.compared(d.before, d.action)
        if not compared:
            return {}
        return {d.action: after, **{i: self.outcome(d.candidates[i], d.src, d.dst, d.at, now)
                                    for i in compared if self._usable(d.candidates[i], d.src, d.dst)}}

    def _own_window(self, d: Decision) -> FlowRate | None:
        """The last statistics window of the ingress entry a decision installed; None before it
        has one, or once it is gone: expired, replaced (a new decision on its 5-tuple), or its
        path broke. An entry lives --idle-timeout after its flow's last packet: that it is there
        says little; its windows say whether the flow sends."""
        flow = self.flows.get(d.key)
        if flow is None or flow.installed_at != d.at or not self._usable(flow.path, d.src, d.dst):
            return None
        return self.monitor.entry_rate(flow.path[0], flow.cookie)

    def outcome(self, path: Path, src: HostLocation, dst: HostLocation, since: float,
                now: float) -> PathFeatures | None:
        """The path's features as measured strictly after `since` and still fresh, or None until
        they are: every port of it, the source's too (a port not measured, or measured once and
        silent since, reads idle: an outcome that is false), and the loss of each link and of the
        destination host's port from a window that began after `since` (a loss held from an
        earlier window may be from before the decision)."""
        if not self.monitor.measured_since(src.at, since):     # the destination's: its loss_since below
            return None
        g, age = self.net.graph(), self.stats_max_age_s
        metrics = [self.monitor.access(src.at, False, self.access_capacity_mbps(src), now, age)]
        for a, b in pairwise(path):
            edge = g.edges[a, b]
            out, into = End(a, edge["out_port"]), End(b, edge["in_port"])
            latency = self.monitor.latency_ms(out, into, since)
            if latency is None or not (self.monitor.measured_since(out, since) and
                                       self.monitor.measured_since(into, since)):
                return None
            loss = self.monitor.loss_since(out, since)
            if loss is None:
                return None
            lk = self.monitor.link(out, into, self.capacity_mbps(a, b), now, age)
            metrics.append(replace(lk, latency_ms=latency, loss=loss))
        loss = self.monitor.loss_since(dst.at, since)      # towards the host: as on each link
        if loss is None:
            return None
        metrics.append(replace(self.monitor.access(dst.at, True, self.access_capacity_mbps(dst), now, age),
                               loss=loss))
        features = path_features(metrics, len(path) - 1)
        return None if features.unknown else features

    def port_stats(self, dpid: int, stats: list[PortStat], now: float, answers: float | None = None) -> None:
        """A port statistics reply (or a part of one); `answers`: the poll whose request it
        answers (the adapter knows it by xid), None if not known."""
        if dpid in self.net.ports:
            self._pending.pop(dpid, None)
            self.monitor.port_stats(dpid, stats, now, answers)

    def flow_stats(self, dpid: int, stats: list[FlowStat], now: float, others: Iterable[int] = (),
                   answers: float | None = None, more: bool = False) -> list[Message]:
        """Feed the monitor; end the bookings of flows it measured at their ingress; remove
        entries a previous controller instance left (they kept forwarding while no controller
        ran, or, SYN watches, never expire) once this switch's links are known, so that their
        flows are routed again by us. `others`: the cookies of the switch's entries that
        output to no port (not measured); `answers`, `more`: the poll it answers, and whether
        parts of it are still to come. Returns those deletions."""
        if dpid not in self.net.ports:
            return []
        for cookie, rate in self.monitor.flow_stats(dpid, stats, now, answers, more).items():
            key = self._by_cookie.get(cookie)
            if key is not None and self.flows[key].path[0] == dpid:
                self.bookings.measured(cookie, key.kind, rate.bps)
        stale = sorted({generation_of(c) for c in chain((s.cookie for s in stats), others)} - {self.generation})
        if not stale or dpid not in self.net.edge_ports(now):
            return []
        self.counters["stale_generations_removed"] += len(stale)
        log.info("switch %s: removing entries of earlier controller instance(s) %s", self.net.name(dpid),
                 ", ".join(f"{g:#06x}" for g in stale))
        return [FlowDelete(dpid, COOKIE_BASE | g << GENERATION_SHIFT, INSTANCE_MASK) for g in stale]

    def echo_reply(self, dpid: int, data: bytes, now: float) -> None:
        if len(data) == 8 and dpid in self.net.ports:
            self.monitor.echo_rtt(dpid, now - struct.unpack("!d", data)[0])

    def capacity_mbps(self, src: int, dst: int) -> float:
        spec = self.net.spec
        capacity = spec and spec.capacity_mbps(self.net.name(src), self.net.name(dst))
        return capacity or self.settings.default_capacity_mbps

    def link_metrics(self, now: float) -> list[LinkMetrics]:
        """Metrics of every discovered directed link, in a stable order."""
        return [self.monitor.link(src, dst, self.capacity_mbps(src.dpid, dst.dpid), now,
                                  self.stats_max_age_s) for src, dst in self.net.links.links()]

    def access_capacity_mbps(self, host: HostLocation) -> float:
        spec = self.net.spec
        capacity = spec and spec.capacity_mbps(self.net.host_name(host), self.net.name(host.at.dpid))
        return capacity or self.settings.default_capacity_mbps

    def features(self, path: Path, src: HostLocation, dst: HostLocation, now: float) -> PathFeatures:
        """The four features of a candidate path from host src to host dst, bookings included.
        Its links' measured metrics change only with new statistics, probes or topology, or as
        statistics age: cached until one of those happens or a poll interval has passed. The
        features are cached until then or the next booking (most new flows share paths)."""
        self._refresh(now)
        key = (path, src, dst)
        f = self._features.get(key)
        if f is None:
            links, metrics = self._measure(path, src, dst, now)
            on = self.bookings.on
            f = self._features[key] = path_features(metrics, len(path) - 1, [on(link) / 1e6 for link in links])
        return f

    def _refresh(self, now: float) -> None:
        stamp = (self.monitor.version, self.net.version)
        if stamp != self._features_stamp or now - self._features_since >= self.settings.poll_interval_s:
            self._measured.clear()
            self._others_bps.clear()
            self._features.clear()
            self._features_stamp, self._features_since = stamp, now
        if self.bookings.version != self._bookings_seen:
            self._features.clear()
            self._bookings_seen = self.bookings.version

    def _measure(self, path: Path, src: HostLocation, dst: HostLocation,
                 now: float) -> tuple[list[LinkKey], list[LinkMetrics]]:
        """The links of a host-to-host path (as bookings name them) and their measured metrics,
        cached with the features' measured part (the caller has called _refresh)."""
        measured = self._measured.get((path, src, dst))
        if measured is not None:
            return measured
        g, age = self.net.graph(), self.stats_max_age_s
        links: list[LinkKey] = [(src.at, False)]
        metrics = [self.monitor.access(src.at, False, self.access_capacity_mbps(src), now, age)]
        for a, b in pairwise(path):
            edge = g.edges[a, b]
            out = End(a, edge["out_port"])
            links.append((out, True))
            metrics.append(self.monitor.link(out, End(b, edge["in_port"]), self.capacity_mbps(a, b), now, age))
        links.append((dst.at, True))
        metrics.append(self.monitor.access(dst.at, True, self.access_capacity_mbps(dst), now, age))
        measured = self._measured[path, src, dst] = links, metrics
        return measured

    # -- packets -------------------------------------------------------------------------
    def packet_in(self, dpid: int, in_port: int, data: bytes, now: float,
                  cookie: int | None = None) -> list[Message]:
        """A packet a switch sent up; `cookie`, the entry's that sent it (a FIN watch's is a
        response's end; any other, or None when not known, is taken for a table miss)."""
        if dpid not in self.net.ports:
            return []
        self.counters["packet_in"] += 1
        watched = self.services.watched(cookie) if cookie is not None else None
        if watched is not None:     # forwarded by the entry already: only the time was wanted
            live = self.services.finished(watched, now)
            return [FlowDelete(watched.fin_dpid, watched.fin_cookie, ALL_ONES)] if live else []
        try:
            frame = parse(data)
        except ParseError as exc:
            log.debug("dropped malformed frame from %s:%d: %s", self.net.name(dpid), in_port, exc)
            return []
        at = End(dpid, in_port)
        if frame.eth_type == ETH_LLDP:
            return self._lldp(frame.payload, at, now)
        if not is_unicast(frame.eth_src):
            return []
        arp, ipv4 = frame.arp, frame.ipv4
        if arp is None and ipv4 is None:
            return []
        if not (self.net.settled(dpid, now, self._complete) and self.net.is_edge(at)):
            return self._transit(frame, data, at, now)
        if arp is not None and arp.sender_ip == "0.0.0.0":    # an address probe: nobody to learn
            if frame.eth_src != arp.sender_mac:
                self._spoofed(at, arp.sender_mac, arp.sender_ip)
                return []
            return self.arp.handle(arp, frame.eth_dst, at, now)
        sender = (arp.sender_mac, arp.sender_ip) if arp is not None else (frame.eth_src, ipv4.src)
        admitted = self._admit(frame.eth_src, *sender, at)
        if admitted is None:
            return []
        if arp is not None and arp.op == ARP_REQUEST and arp.target_ip in self.services.vips:
            return admitted + [self.arp.answer(VIP_MAC, arp.target_ip, arp.sender_mac, arp.sender_ip, at)]
        return admitted + (self.arp.handle(arp, frame.eth_dst, at, now) if arp is not None
                           else self._route(frame, data, at, now))

    def _transit(self, frame: Frame, data: bytes, at: End, now: float) -> list[Message]:
        """A frame at a link port, or at a port of a switch too new for its links to be known
        (which may yet prove to be a link: traffic in transit after a controller restart). Only
        a flow installed through this switch, from the host it names, is routed again (its
        entries here expired mid-path); nothing is learnt, nothing else goes anywhere."""
        ipv4 = frame.ipv4
        flow = self.flows.get(FlowKey.of(ipv4)) if ipv4 is not None else None
        known = self.net.hosts.get(frame.eth_src)
        if flow is None or at.dpid not in flow.path or known is None or known.ip != ipv4.src:
            return []
        return self._route(frame, data, at, now)

    def _spoofed(self, at: End, mac: str, ip: str) -> None:
        self.counters["spoofed_frames"] += 1
        log.warning("dropped spoofed frame at %s:%d: sender %s %s is not the host bound there",
                    self.net.name(at.dpid), at.port, mac, ip)

    def _admit(self, eth_src: str, mac: str, ip: str, at: End) -> list[Message] | None:
        """Whether a frame at a settled edge port whose sender claims (mac, ip) may be acted on
        (None: no). The sender must be the host bound there (Network.admit), else the frame
        is spoofed: dropped and counted. A host that displaced another (no spec: it moved, or
        took over an address) has the flows of that address removed (the returned messages)."""
        was = self.net.hosts.get(mac)
        admitted, displaced = self.net.admit(mac, ip, at) if eth_src == mac else (False, None)
        if not admitted:
            return self._spoofed(at, mac, ip)
        if was is None or was.at != at:
            log.info("host %s %s at %s:%d", mac, ip, self.net.name(at.dpid), at.port)
        if displaced is None:
            return []
        why = f"{displaced.mac} {displaced.ip} left {self.net.name(displaced.at.dpid)}:{displaced.at.port}"
        return [m for key in [k for k in self.flows if displaced.ip in (k.src_ip, k.dst_ip)]
                for m in self._uninstall(key, why)]

    def _lldp(self, payload: bytes, at: End, now: float) -> list[Message]:
        """A probe of ours that came back: a link, or a latency sample of a known one. It must
        carry this instance's signature, leave and arrive at ports the switches reported on
        two switches, touch no port where a host was learnt, join switches the spec links
        and not add a link beyond those it lists between them, and be recent."""
        probe = discovery.parse_probe(payload, self.probe_key)
        if probe is None:
            return []    # someone else's LLDP
        src, age_s = probe.src, now - probe.sent_at
        why = ("not signed by this controller" if not probe.authentic
               else "from a port no switch reported" if src.port not in self.net.ports.get(src.dpid, ())
               or at.port not in self.net.ports.get(at.dpid, ())
               else "from the switch it arrived at" if src.dpid == at.dpid
               else "through a host's port" if src in self.net.host_at or at in self.net.host_at
               else self._beyond_spec(src, at)
               or (f"sent {age_s:.1f} s ago" if not 0 <= age_s <= max(2 * self.settings.probe_interval_s, 1.0)
                   else None))
        if why:
            self.counters["rejected_probes"] += 1
            log.warning("rejected LLDP probe at %s:%d claiming %s:%d: %s", self.net.name(at.dpid), at.port,
                        self.net.name(src.dpid), src.port, why)
            return []
        if self.net.link_seen(src, at, now):
            log.info("link %s:%d -> %s:%d", self.net.name(src.dpid), src.port, self.net.name(at.dpid), at.port)
            # probe straight back if the other direction is unknown: a switch that connected
            # after its neighbour's last probe would otherwise wait a whole probe interval
            back = [] if self.net.links.peer(at) == src else self._probes(at.dpid, {at.port}, now)
            return self._after_topology_change() + back
        if self.net.links.peer(src) == at:
            self.monitor.probe_delay(src, at, age_s, now)
        return []

    def _beyond_spec(self, src: End, at: End) -> str | None:
        """Why a link src -> at goes beyond what the spec lists (None if it does not, or the
        spec does not name both switches): a pair it does not link, or a second link where it
        lists one (a host at a spare port replaying a probe it received there, say)."""
        spec = self.net.spec
        if spec is None or self._spec_pairs is None or None in (spec.switch_name(src.dpid), spec.switch_name(at.dpid)):
            return None
        listed = self._spec_pairs[frozenset((src.dpid, at.dpid))]
        if not listed:
            return "between switches the spec does not link"
        g = self.net.graph()
        if listed == 1 and g.has_edge(src.dpid, at.dpid) and self.net.links.peer(src) != at:
            edge = g.edges[src.dpid, at.dpid]
            return f"a second link where the spec lists one (known: ports {edge['out_port']} -> {edge['in_port']})"
        return None

    def _route(self, frame: Frame, data: bytes, at: End, now: float) -> list[Message]:
        """Install a new flow on every switch of its path and release the packet at the
        egress switch, so it never meets a switch whose entry is not there yet. A packet of
        a flow already installed (its entries are still being written: writes to different
        switches are not ordered; or this switch's expired) gets only this switch's entry:
        re-sending the others would replace entries that work."""
        src, dst = self.net.hosts.get(frame.eth_src), self.net.hosts.get(frame.eth_dst)
        if src is None:
            return []
        if self.services and self.services.concerns(frame.ipv4):
            return self._serve(frame, data, src, at, now)
        if dst is None:   # normally ARP came first and taught us both; not after a restart
            return self.arp.locate(src, frame.ipv4.dst, now)
        release = PacketOut(dst.at.dpid, (dst.at.port,), data)
        key = FlowKey.of(frame.ipv4)
        if not key.installable:     # a later fragment: delivered, nothing decided or recorded
            return [release]
        flow = self.flows.get(key)
        if flow is not None and self._usable(flow.path, src, dst):
            self.counters["entries_repaired"] += 1
            return [m for m in self._plan(flow, src, dst) if m.dpid == at.dpid] + [release]
        path, why = self._reverse(key, src, dst), "reverse"
        if path is None:
            path, why = self._decide(key, src, dst, now)
            if path is None:
                return []
        msgs = self._make_room(src.at)
        flow = self._install(key, path, src, dst, now, why)
        return msgs + self._plan(flow, src, dst) + [release]

    def _install(self, key: FlowKey, path: Path, src: HostLocation, dst: HostLocation, now: float, why: str,
                 rewrite: SetFields = (), kind: tuple[int, int | None] | None = None,
                 charged: End | None = None) -> Installed:
        """Record a flow, counted against the port `charged` (its source's by default), and book
        its expected load (as of `kind`, its own by default) on its path."""
        flow = self._record(key, path, charged or src.at, now, rewrite)
        self._refresh(now)
        links, metrics = self._measure(path, src, dst, now)
        source = metrics[0]     # what the source host's link has left
        left = (source.capacity_mbps - source.rate_mbps) * 1e6 - self.bookings.on(links[0])
        self.bookings.book(flow.cookie, kind or key.kind, tuple(links), now, left)
        if log.isEnabledFor(logging.INFO):    # naming the path costs more than deciding it
            log.info("flow %s via %s (%s)", key, self.net.path_name(path), why)
        return flow

    def _serve(self, frame: Frame, data: bytes, src: HostLocation, at: End, now: float) -> list[Message]:
        """A packet to a virtual IP, or from a member's service port (services.py): a probe's
        answer, a packet of a known connection whose entry is missing here, or a client's SYN,
        which opens a connection. Anything else is dropped and counted (a client's TCP to a
        service answered with an RST): a member's packet is never routed with its own address
        to a client that spoke to the VIP."""
        ip = frame.ipv4
        key = FlowKey.of(ip)
        try:
            tcp = tcp_of(frame)
        except ParseError:
            tcp = None
        if tcp is not None and self.services.is_health_answer(ip):
            return self.services.health_answer(ip, tcp, src, now)
        conn, flow = self.services.connection(key), self.flows.get(key)
        msgs: list[Message] = []
        # A SYN on a connection's 5-tuple, sent up by its SYN watch: a SYN alone opens a new
        # connection, decided anew rather than following the old entries to the old member (when
        # the member closed first it holds TIME-WAIT, so the client may reuse its port at once),
        # unless it is the connection's own, retransmitted (its sequence number, no FIN yet): that
        # and any SYN with other flags go on to the member. Were the watch put in only with the
        # member's FIN, a client reconnecting at once could beat that FIN's packet-in here.
        if conn is not None and key == conn.forward and tcp is not None and tcp.flags & TCP_SYN:
            if not tcp.opens or (tcp.seq == conn.client_isn and not conn.finished):
                member = self.net.host_by_ip(conn.member.ip)
                return ([] if flow is None or member is None
                        else [PacketOut(member.at.dpid, (member.at.port,), data, flow.rewrite)])
            msgs, conn, flow = self._uninstall(key, "a new connection on its 5-tuple"), None, None
        if conn is not None and flow is not None:
            dst = self.net.host_by_ip(conn.member.ip if key == conn.forward else key.dst_ip)
            if dst is None or not self._usable(flow.path, src, dst):
                return []
            self.counters["entries_repaired"] += 1
            return ([m for m in self._plan(flow, src, dst) if m.dpid == at.dpid]
                    + [PacketOut(dst.at.dpid, (dst.at.port,), data, flow.rewrite)])
        service = self.services.at(ip.dst, ip.dst_port)
        if service is None or tcp is None or not tcp.opens:
            self.counters["service_strays"] += 1
            return [] if service is None or tcp is None else self.services.reset(frame, tcp, src, now)
        located = [(m, h) for m in self.services.candidates(service, src.ip)
                   if (h := self.net.host_by_ip(m.ip)) is not None]
        if not located:
            self.counters["service_unavailable"] += 1
            log.warning("service %s: no healthy member for %s", service.spec.name, key)
            return msgs
        policy = service.policy
        loads = [m.load(self._path_look(src, h, now) if policy.load_aware else None) for m, h in located]
        choice = policy.choose(service.spec.name, loads, key)
        member, dst = located[choice]
        path, why = self._decide(key, src, dst, now)
        if path is None:
            return msgs
        back = FlowKey(dst.ip, src.ip, PROTO_TCP, service.spec.port, key.src_port)
        back_path = path[::-1] if self._usable(path[::-1], dst, src) else self._decide(back, dst, src, now)[0]
        if back_path is None:
            return msgs
        msgs += self._make_room(src.at, 2)     # both directions count against the client's port
        to_member = (("eth_dst", dst.mac), ("ipv4_dst", dst.ip))
        forward = self._install(key, path, src, dst, now, f"{why}; service {service.spec.name}: {member.host} "
                                f"by {policy.name}", to_member)
        reverse = self._install(back, back_path, dst, src, now, f"reply of {key}",
                                (("eth_src", VIP_MAC), ("ipv4_src", ip.dst)), kind=key.kind, charged=src.at)
        self.services.add(Connection(service.spec.name, key, back, member, now, self._new_cookie(),
                                      dst.at.dpid, self._new_cookie(), src.at.dpid, tcp.seq, loads[choice]))
        return (msgs + self._plan(reverse, dst, src) + self._plan(forward, src, dst)
                + [PacketOut(dst.at.dpid, (dst.at.port,), data, to_member)])

    def _path_look(self, src: HostLocation, dst: HostLocation, now: float) -> PathFeatures | None:
        """The round trip a connection from src to member dst would take now, as a member
        policy weighs it: the path the path policy would take there, and back the way _serve
        installs the answers (its reverse, when usable, else the path policy's look the other
        way). Its utilisation is the busiest link's by traffic that is not the member's own
        (_others), and it has no loss or latency: the member's own answers fill its link as its
        queue grows, which its connection count says already, and a level read from the link
        as a whole told a jam from that no better (docs/services.md). A look: nothing is decided
        or counted."""
        there = self._look(src, dst, now)
        if there is None:
            return None
        back_path = there[0][::-1]
        if not self._usable(back_path, dst, src):
            back = self._look(dst, src, now)
            if back is None:
                return None
            back_path = back[0]
        trip = round_trip(there[1], self.features(back_path, dst, src, now))
        return replace(trip, utilisation=max(self._others(there[0], dst.ip, now), self._others(back_path, dst.ip, now)),
                       loss=0.0, latency_ms=0.0)

    def _others(self, path: Path, member_ip: str, now: float) -> float:
        """The utilisation of `path`'s busiest inter-switch link by the measured flows that are
        neither the member's (from or to it) nor connections to it (a flow's rate takes two
        polls, so the member's young answers would be counted as others' if its own were
        subtracted from the link's rate instead; and a flow of others is seen from its second
        poll on). Cached with the measured features: every member of every new connection."""
        def others(cookie: int) -> bool:
            key = self._by_cookie.get(cookie)
            if key is None:
                return True
            conn = self.services.connection(key)
            return member_ip not in (key.src_ip, key.dst_ip) and (conn is None or conn.member.ip != member_ip)
        self._refresh(now)
        g, most = self.net.graph(), 0.0
        for a, b in pairwise(path):
            out = End(a, g.edges[a, b]["out_port"])
            bps = self._others_bps.get((out, member_ip))
            if bps is None:
                bps = self._others_bps[out, member_ip] = self.monitor.sent_bps(out, now, self.stats_max_age_s, others)
            most = max(most, bps / 1e6 / self.capacity_mbps(a, b))
        return min(most, 1.0)

    def _look(self, src: HostLocation, dst: HostLocation, now: float) -> tuple[Path, PathFeatures] | None:
        """The candidate path the path policy would take from src to dst now, and its measured features."""
        candidates = self.paths.candidates(self.net, src.at.dpid, dst.at.dpid)
        if not candidates:
            return None
        measured = [self.features(c, src, dst, now) for c in candidates]
        looked = measured if self.policy.load_aware else [PathFeatures(0.0, 0.0, 0.0, len(c) - 1) for c in candidates]
        i = self.policy.choose(None, looked)
        return candidates[i], measured[i]

    def _usable(self, path: Path, src: HostLocation, dst: HostLocation) -> bool:
        return is_live(self.net, path) and (path[0], path[-1]) == (src.at.dpid, dst.at.dpid)

    def _plan(self, flow: Installed, src: HostLocation, dst: HostLocation) -> list[Message]:
        if not flow.rewrite:
            return plan(flow.key, hops(self.net, flow.path, src.at, dst.at), flow.cookie, self.settings.idle_timeout_s)
        conn = self.services.connection(flow.key)
        watch = None
        if conn is not None and flow.key == conn.forward:
            watch = TCP_SYN, conn.syn_cookie
        elif conn is not None and not conn.finished:
            watch = TCP_FIN, conn.fin_cookie
        return plan(flow.key, hops(self.net, flow.path, src.at, dst.at), flow.cookie,
                    max(self.settings.idle_timeout_s, SERVICE_IDLE_S), flow.rewrite, watch)

    def _reverse(self, key: FlowKey, src: HostLocation, dst: HostLocation) -> Path | None:
        """With --symmetric, the reverse of the path of the connection's other direction."""
        if not self.settings.symmetric:
            return None
        forward = self.flows.get(key.reverse())
        if forward is None:
            return None
        path = forward.path[::-1]     # links are known per direction: this one may not be
        return path if self._usable(path, src, dst) else None

    def _decide(self, key: FlowKey, src: HostLocation, dst: HostLocation, now: float) -> tuple[Path | None, str]:
        candidates = self.paths.candidates(self.net, src.at.dpid, dst.at.dpid)
        if not candidates:
            log.warning("flow %s: no path from %s to %s yet", key,
                        self.net.name(src.at.dpid), self.net.name(dst.at.dpid))
            return None, ""
        if self.policy.load_aware:
            features = measured = [self.features(c, src, dst, now) for c in candidates]
        else:   # measured features cost twice the rest of a decision (47 vs 23 us a packet-in)
            features = [PathFeatures(0.0, 0.0, 0.0, len(c) - 1) for c in candidates]
            measured = None     # hops alone: keeping these would only give the collector more objects
        action, scores = self.policy.rank(key, features)
        if self.policy.learns:
            if len(self._decisions) == self._decisions.maxlen:     # the oldest goes unlearnt
                self.counters["outcomes_overflowed"] += 1
            self._decisions.append(Decision(now, key, candidates, src, dst, features, action))
        self.explained.append((next(self._explained_ids), now, key, src, dst, candidates, measured, scores,
                               action, self.policy.name))
        return candidates[action], f"{self.policy.name}, {len(candidates)} candidates"

    def _make_room(self, at: End, room: int = 1) -> list[Message]:
        """Remove the oldest flows counted against a port until `room` more fit in its
        MAX_FLOWS_PER_PORT (their entries too, so that nothing keeps forwarding that the
        controller no longer knows of). A service connection counts both its directions
        against its client's port: counted at the member's, two flooding clients evicted a
        third's connections to it."""
        msgs: list[Message] = []
        while len(self._flows_at.get(at, {})) > MAX_FLOWS_PER_PORT - room:
            self.counters["flows_evicted"] += 1
            msgs += self._uninstall(next(iter(self._flows_at[at])), f"over {MAX_FLOWS_PER_PORT} flows from its port")
        return msgs

    def _new_cookie(self) -> int:
        cookie = self.instance | self._next_flow_id
        self._next_flow_id = self._next_flow_id % FLOW_ID_MASK + 1
        return cookie

    def _record(self, key: FlowKey, path: Path, at: End, now: float, rewrite: SetFields = ()) -> Installed:
        if key in self.flows:
            self._forget(key)
        at_port = self._flows_at.setdefault(at, {})
        cookie = self._new_cookie()
        flow = self.flows[key] = Installed(key, path, cookie, now, at, rewrite)
        self._by_cookie[cookie] = key
        at_port[key] = None
        self.counters["flows_installed"] += 1
        return flow
