"""Prometheus metrics, read from the Balancer at scrape time (so they always agree with the
REST API, which reads the same state), plus a histogram of packet-in handling time."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Histogram, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from controller.core.balancer import Balancer
from controller.core.monitor import LATENCY_WINDOW
from controller.openflow.xids import REMEMBERED

COUNTERS = {
    "packet_in": "Packet-ins handled",
    "datapath_connects": "Switch connections",
    "datapath_disconnects": "Switch disconnections",
    "stale_replies": "Port statistics replies still missing when the next poll was due",
    "flows_installed": "Flows routed onto a path",
    "entries_repaired": "Packets of installed flows sent up by a switch lacking its entry (it alone gets it again)",
    "spoofed_frames": "Frames dropped at an edge port whose sender is not the host bound there",
    "rejected_probes": "LLDP probes in our format refused (unsigned, stale, from a host's or unreported port)",
    "flows_evicted": "Flows removed, entries and all, because their port had the most flows allowed",
    "ofp_bad_messages": "OpenFlow connections closed for a malformed or unexpected message",
    "ofp_connections_closed": "OpenFlow connections closed for no handshake in time, too many in handshake, "
                              "no file descriptor free, or a claim to a datapath id whose holder answers",
    "ofp_accept_errors": "Failed accepts on the OpenFlow port (e.g. no file descriptor free); accepting goes on",
    "framework_errors": "Errors the framework logged with a traceback (one warning line each, traceback at DEBUG)",
    "service_strays": "Packets to a virtual IP (or from a member's service port) of no connection that a SYN did not "
                      "open: dropped",
    "outcomes_unmeasured": "Learning policy's decisions whose outcome was not measured in time: nothing learnt",
    "outcomes_path_broken": "Learning policy's decisions whose path broke before their outcome: nothing learnt",
    "outcomes_overflowed": "Learning policy's decisions dropped unlearnt: more were awaiting their outcome than kept",
    "service_unavailable": "Connections to a service refused because no member was healthy",
}
# per service member, labelled service and member: (attribute, kind, help)
MEMBER_METRICS = {"healthy": ("healthy", GaugeMetricFamily, "1 if the member answers its health probes, else 0"),
                  "connections": ("active", GaugeMetricFamily, "Connections open to the member (no FIN from it yet)"),
                  "chosen": ("chosen", CounterMetricFamily, "Connections the member policy sent to the member"),
                  "completed": ("completed", CounterMetricFamily, "Connections whose response the member ended (FIN)"),
                  "rtt_ms": ("rtt_ms", GaugeMetricFamily, "Health probe round trip, ms (EWMA; NaN: none yet)"),
                  "response_ms": ("response_ms", GaugeMetricFamily,
                                  "Response time, SYN to the member's FIN, ms (EWMA; NaN: none yet)")}
LINK_GAUGES = {"utilisation": ("utilisation", "Link utilisation (0..1) over the last poll interval"),
               "loss": ("loss", "Link packet loss rate (0..1) over the last poll interval"),
               "latency_ms": ("latency_ms", f"Link latency in ms: the least of its last {LATENCY_WINDOW} LLDP probes' "
                                            "one-way delays (travel time less half of each switch's echo round trip)"),
               "age_seconds": ("age_s", "Age of the link's statistics (+Inf: never measured)"),
               "known": ("known", "1 if the link's statistics are recent (3 poll intervals), else 0: "
                                  "its utilisation and loss then read 0 and load-aware policies avoid it")}


OFP_ERRORS_DOC = ("OpenFlow errors from switches, by the kind of request each answers (tied by xid; "
                  f"'unknown' if not among the connection's last {REMEMBERED}) and the error's type")


class Metrics:
    def __init__(self, balancer: Balancer, clock: Callable[[], float] = time.monotonic,
                 ofp_errors: Counter | None = None) -> None:
        self.registry = CollectorRegistry()
        self.packet_in_seconds = Histogram(
            "lb_packet_in_seconds", "Time to handle one packet-in", registry=self.registry,
            buckets=(1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1))
        self.registry.register(_BalancerCollector(balancer, clock, Counter() if ofp_errors is None else ofp_errors))

    def wsgi_app(self):
        return make_wsgi_app(self.registry)


class _BalancerCollector:
    def __init__(self, balancer: Balancer, clock: Callable[[], float], ofp_errors: Counter) -> None:
        self.balancer, self.clock, self.ofp_errors = balancer, clock, ofp_errors

    def collect(self):
        b = self.balancer
        for name, doc in COUNTERS.items():
            family = CounterMetricFamily(f"lb_{name}", doc)
            family.add_metric([], b.counters[name])
            yield family
        errors = CounterMetricFamily("lb_ofp_errors", OFP_ERRORS_DOC, labels=["request", "type"])
        for (request, type_), n in sorted(self.ofp_errors.items()):
            errors.add_metric([request, type_], n)
        yield errors
        labels = ["src", "src_port", "dst", "dst_port"]
        families = {attr: GaugeMetricFamily(f"lb_link_{k}", doc, labels=labels) for k, (attr, doc) in LINK_GAUGES.items()}
        booked = GaugeMetricFamily("lb_link_booked_mbps", "Load booked by new flows a poll has not measured yet",
                                   labels=labels)
        for m in b.link_metrics(self.clock()):
            values = [b.net.name(m.src.dpid), str(m.src.port), b.net.name(m.dst.dpid), str(m.dst.port)]
            for attr, family in families.items():
                family.add_metric(values, float(getattr(m, attr)))
            booked.add_metric(values, b.bookings.on((m.src, True)) / 1e6)
        yield from families.values()
        yield booked
        flows = GaugeMetricFamily("lb_flows_active", "Flows with installed entries")
        flows.add_metric([], len(b.flows))
        yield flows
        yield from self._members()

    def _members(self):
        services = self.balancer.services.services.values()
        for name, (attr, kind, doc) in MEMBER_METRICS.items():
            family = kind(f"lb_member_{name}", doc, labels=["service", "member"])
            for s in services:
                for m in s.members:
                    value = getattr(m, attr)
                    family.add_metric([s.spec.name, m.host], math.nan if value is None else float(value))
            yield family
