"""The controller's view of the network: switches and their ports, links, and hosts.

Hosts are learned only at edge ports (ports with no discovered link), so a packet in
transit can never move a host. Where the spec lists hosts, each is bound to an edge port of
its own switch: the first port it is seen at, one host per port, until that port goes down.
Without a spec a port holds at most MAX_HOSTS_PER_PORT hosts. `version` changes whenever the
switch graph does, which is what path caches key on.
"""

from __future__ import annotations

from typing import NamedTuple

import networkx as nx

from controller.core.discovery import End, LinkTable
from controller.core.spec import Spec

MAX_HOSTS_PER_PORT = 256    # without a spec: a port (a hub, a virtual switch) may hold several


class HostLocation(NamedTuple):
    mac: str
    ip: str
    at: End


class Network:
    def __init__(self, spec: Spec | None = None, settle_s: float = 3.0) -> None:
        self.spec = spec
        self.settle_s = settle_s  # a new switch's ports are not edge ports until links had time to show
        self.ports: dict[int, set[int]] = {}
        self.connected_at: dict[int, float] = {}
        self.links = LinkTable()
        self.hosts: dict[str, HostLocation] = {}   # by MAC
        self.mac_of_ip: dict[str, str] = {}
        self.host_at: dict[End, str] = {}          # edge port -> MAC of the (first) host learned there
        self.hosts_at: dict[End, int] = {}         # edge port -> how many hosts are learned there
        self.version = 0
        self._graph: nx.DiGraph | None = None

    # -- names -------------------------------------------------------------------------
    def name(self, dpid: int) -> str:
        return (self.spec and self.spec.switch_name(dpid)) or f"s{dpid}"

    def host_name(self, host: HostLocation) -> str:
        """The spec's name for a host, else its IP address."""
        known = self.spec and self.spec.host_by_ip(host.ip)
        return known.name if known else host.ip

    def path_name(self, path: tuple[int, ...]) -> str:
        return ">".join(self.name(d) for d in path)

    # -- switches and ports ------------------------------------------------------------
    def switch_up(self, dpid: int, ports: set[int], now: float) -> None:
        """A switch (re)connects. Hosts bound to ports it no longer has are forgotten: they
        may have been moved while it was away."""
        self.ports[dpid] = set(ports)
        self.connected_at[dpid] = now
        for mac in [m for m, h in self.hosts.items() if h.at.dpid == dpid and h.at.port not in ports]:
            self._forget_host(mac)
        self._changed()

    def switch_down(self, dpid: int) -> list[tuple[End, End]]:
        """Forget the switch's ports and links. Its hosts stay known: unreachable while it is
        away (no path leads there), reachable at once when it comes back, though hosts with
        warm ARP caches would not announce themselves again."""
        self.ports.pop(dpid, None)
        self.connected_at.pop(dpid, None)
        gone = self.links.remove_switch(dpid)
        self._changed()
        return gone

    def port_up(self, dpid: int, port: int) -> None:
        if dpid in self.ports:
            self.ports[dpid].add(port)

    def port_down(self, dpid: int, port: int) -> list[tuple[End, End]]:
        self.ports.get(dpid, set()).discard(port)
        if End(dpid, port) in self.host_at:     # unplugged: it may come back on another port
            self._forget_host(self.host_at[End(dpid, port)])
        gone = self.links.remove_end(End(dpid, port))
        if gone:
            self._changed()
        return gone

    # -- links -------------------------------------------------------------------------
    def link_seen(self, src: End, dst: End, now: float) -> bool:
        if src.dpid not in self.ports or dst.dpid not in self.ports:
            return False
        if not self.links.seen(src, dst, now):
            return False
        for mac in [m for m, h in self.hosts.items() if h.at in (src, dst)]:
            self._forget_host(mac)   # learned on a port that turned out to be a link
        self._changed()
        return True

    def expire_links(self, now: float, timeout_s: float) -> list[tuple[End, End]]:
        gone = self.links.expire(now, timeout_s)
        if gone:
            self._changed()
        return gone

    def is_edge(self, end: End) -> bool:
        return end.port in self.ports.get(end.dpid, ()) and not self.links.is_link_port(end)

    def edge_ports(self, now: float) -> dict[int, list[int]]:
        """Ports where hosts may be: on switches connected long enough for their links to be
        known, or on all switches once every link of the spec is discovered."""
        complete = self.spec is not None and not self.missing_spec_links()
        return {dpid: sorted(p for p in ports if not self.links.is_link_port(End(dpid, p)))
                for dpid, ports in self.ports.items()
                if self.settled(dpid, now, complete)}

    def settled(self, dpid: int, now: float, complete: bool) -> bool:
        """Whether a switch's links can be known: all the spec's are, or it has been connected
        long enough for its own to show. Before, its ports may yet prove to be links."""
        return complete or now - self.connected_at[dpid] >= self.settle_s

    def graph(self) -> nx.DiGraph:
        """Directed switch graph; nodes and edges sorted so path ties break the same way every run."""
        if self._graph is None:
            g = nx.DiGraph()
            g.add_nodes_from(sorted(self.ports))
            for src, dst in self.links.links():
                if not g.has_edge(src.dpid, dst.dpid):
                    g.add_edge(src.dpid, dst.dpid, out_port=src.port, in_port=dst.port)
            self._graph = g
        return self._graph

    def _changed(self) -> None:
        self.version += 1
        self._graph = None

    # -- hosts -------------------------------------------------------------------------
    def admit(self, mac: str, ip: str, at: End) -> tuple[bool, HostLocation | None]:
        """May a frame from (mac, ip) enter at edge port `at`? Learns the host there if it is
        new. Returns (admitted, the host it displaced: its own old place if it moved, or the
        host that had its IP before).

        Where the spec lists hosts, only its (MAC, IP) pairs are admitted, each at its own
        switch, at the one port it was first seen at: a forged or garbled sender can neither
        take over another host's address nor send as one. Without a spec any host is learnt
        (up to MAX_HOSTS_PER_PORT at a port), and a host seen at a new port has moved."""
        here = HostLocation(mac, ip, at)
        old = self.hosts.get(mac)
        if old == here:
            return True, None
        if self.spec and self.spec.hosts:
            declared = self.spec.host_by_ip(ip)
            if (declared is None or declared.mac != mac or old is not None or at in self.host_at
                    or self.spec.host_switch(declared.name) != self.name(at.dpid)):
                return False, None
        elif self.hosts_at.get(at, 0) >= MAX_HOSTS_PER_PORT and (old is None or old.at != at):
            return False, None
        if old is not None:
            self._forget_host(mac)
        displaced = old if old is not None and old.at != at else None
        stale = self.mac_of_ip.get(ip)
        if stale and stale != mac:
            displaced = displaced or self.hosts[stale]
            self._forget_host(stale)
        self.hosts[mac], self.mac_of_ip[ip] = here, mac
        self.host_at.setdefault(at, mac)
        self.hosts_at[at] = self.hosts_at.get(at, 0) + 1
        return True, displaced

    def host_by_ip(self, ip: str) -> HostLocation | None:
        mac = self.mac_of_ip.get(ip)
        return self.hosts.get(mac) if mac else None

    def _forget_host(self, mac: str) -> None:
        host = self.hosts.pop(mac)
        if self.mac_of_ip.get(host.ip) == mac:
            del self.mac_of_ip[host.ip]
        if self.host_at.get(host.at) == mac:
            del self.host_at[host.at]
        self.hosts_at[host.at] -= 1
        if not self.hosts_at[host.at]:
            del self.hosts_at[host.at]

    # -- spec check --------------------------------------------------------------------
    def missing_spec_links(self) -> list[str]:
        """Spec links between switches not yet discovered in both directions."""
        if self.spec is None:
            return []
        g, dpid = self.graph(), self.spec.switch_dpid
        return [f"{lk.a}-{lk.b}" for lk in self.spec.switch_links()
                if not (g.has_edge(dpid(lk.a), dpid(lk.b)) and g.has_edge(dpid(lk.b), dpid(lk.a)))]
