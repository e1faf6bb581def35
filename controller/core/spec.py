"""Topology specs: the one description of a network that Mininet and the controller both read.

A spec is a JSON file::

    {"name": "h1h7",
     "switches": [{"name": "s1"}, {"name": "s2", "dpid": 2}],
     "hosts":    [{"name": "h1", "ip": "10.0.0.1", "mac": "00:00:00:00:00:01"}],
     "links":    [{"nodes": ["h1", "s1"], "capacity_mbps": 100},
                  {"nodes": ["s1", "s2"], "capacity_mbps": 10, "delay_ms": 2, "loss_pct": 0}]}

Capacities come from here, never from a port's ``curr_speed`` (veth ports claim 10 Gbit/s
whatever the shaping). Validation rejects unknown keys, wrong types and inconsistent
references with a message naming the file and the field, in the spirit of FAUCET's conf.py.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from itertools import pairwise
from pathlib import Path

import networkx as nx



class TopologyError(ValueError):
    """A topology spec that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Switch:
    name: str
    dpid: int


@dataclass(frozen=True)
class Host:
    name: str
    ip: str
    mac: str


@dataclass(frozen=True)
class Link:
    a: str
    b: str
    capacity_mbps: float
    delay_ms: float = 0.0
    loss_pct: float = 0.0


@dataclass(frozen=True)
class Member:
    host: str
    weight: float = 1.0


@dataclass(frozen=True)
class Service:
    """A TCP service at a virtual address, served by a pool of the spec's hosts."""
    name: str
    vip: str
    port: int
    members: tuple[Member, ...]


@dataclass(frozen=True)
class Spec:
    name: str
    switches: tuple[Switch, ...]
    hosts: tuple[Host, ...]
    links: tuple[Link, ...]
    description: str = ""
    services: tuple[Service, ...] = ()

    # Lookups the controller makes for every candidate path of every new flow: indexed once.
    @cached_property
    def _name_of_dpid(self) -> dict[int, str]:
        return {s.dpid: s.name for s in self.switches}

    @cached_property
    def _dpid_of_name(self) -> dict[str, int]:
        return {s.name: s.dpid for s in self.switches}

    @cached_property
    def _switch_of_host(self) -> dict[str, str]:
        names, out = {h.name for h in self.hosts}, {}
        for lk in self.links:
            for host, other in ((lk.a, lk.b), (lk.b, lk.a)):
                if host in names:
                    out.setdefault(host, other)
        return out

    @cached_property
    def _host_of_ip(self) -> dict[str, Host]:
        return {h.ip: h for h in self.hosts}

    @cached_property
    def _capacity(self) -> dict[frozenset, float]:
        return {frozenset((lk.a, lk.b)): lk.capacity_mbps for lk in self.links}

    def host(self, name: str) -> Host:
        return next(h for h in self.hosts if h.name == name)

    def host_by_ip(self, ip: str) -> Host | None:
        return self._host_of_ip.get(ip)

    def switch_name(self, dpid: int) -> str | None:
        return self._name_of_dpid.get(dpid)

    def switch_dpid(self, name: str) -> int:
        return self._dpid_of_name[name]

    def host_switch(self, host: str) -> str:
        """The switch a host hangs off (validation guarantees exactly one)."""
        return self._switch_of_host[host]

    def capacity_mbps(self, a: str, b: str) -> float | None:
        return self._capacity.get(frozenset((a, b)))

    def bottleneck_mbps(self, nodes: list[str]) -> float:
        """The smallest capacity along a walk of adjacent nodes (hosts and/or switches)."""
        return min(self._capacity[frozenset(pair)] for pair in pairwise(nodes))

    def switch_links(self) -> tuple[Link, ...]:
        return self._switch_links

    @cached_property
    def _switch_links(self) -> tuple[Link, ...]:      # asked on every topology change and ARP flood
        names = {s.name for s in self.switches}
        return tuple(lk for lk in self.links if lk.a in names and lk.b in names)

    def link_ports(self) -> list[tuple[Link, int, int]]:
        """Each link with its port numbers at a and b: every node numbers its ports 1, 2, ...
        in link order. The Mininet builder wires ports this way, so readers of flow tables
        can map an output port back to the neighbour it leads to."""
        used: dict[str, int] = {}
        out = []
        for lk in self.links:
            used[lk.a] = used.get(lk.a, 0) + 1
            used[lk.b] = used.get(lk.b, 0) + 1
            out.append((lk, used[lk.a], used[lk.b]))
        return out

    def neighbours(self) -> dict[tuple[str, int], str]:
        """(node, port number) -> the node at the other end."""
        out = {}
        for lk, port_a, port_b in self.link_ports():
            out[(lk.a, port_a)], out[(lk.b, port_b)] = lk.b, lk.a
        return out

    def graph(self) -> nx.Graph:
        """Switch-level graph with capacities, for computing expected paths."""
        g = nx.Graph()
        g.add_nodes_from(s.name for s in self.switches)
        for lk in self.switch_links():
            g.add_edge(lk.a, lk.b, capacity_mbps=lk.capacity_mbps)
        return g


_TOP_KEYS = {"name": str, "description": str, "switches": list, "hosts": list, "links": list, "services": list}
_SWITCH_KEYS = {"name": str, "dpid": int}
_HOST_KEYS = {"name": str, "ip": str, "mac": str}
_LINK_KEYS = {"nodes": list, "capacity_mbps": (int, float), "delay_ms": (int, float),
              "loss_pct": (int, float)}
_SERVICE_KEYS = {"name": str, "vip": str, "port": int, "members": list}
_MEMBER_KEYS = {"host": str, "weight": (int, float)}
MAX_WEIGHT = 1000
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def parse_spec(raw: object, source: str = "<spec>") -> Spec:
    def fail(where: str, what: str) -> TopologyError:
        return TopologyError(f"{source}: {where}: {what}")

    def check_keys(obj: object, allowed: dict, where: str, required: tuple[str, ...]) -> dict:
        if not isinstance(obj, dict):
            raise fail(where, f"expected an object, got {type(obj).__name__}")
        for key, value in obj.items():
            if key not in allowed:
                raise fail(f"{where}.{key}", f"unknown key (allowed: {', '.join(sorted(allowed))})")
            if isinstance(value, bool) or not isinstance(value, allowed[key]):
                raise fail(f"{where}.{key}", f"wrong type {type(value).__name__}")
        for key in required:
            if key not in obj:
                raise fail(where, f"missing required key '{key}'")
        return obj

    top = check_keys(raw, _TOP_KEYS, "spec", ("name", "switches", "hosts", "links"))
    names: set[str] = set()

    def claim_name(name: str, where: str) -> str:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]{0,14}", name):
            raise fail(where, f"name '{name}' must be a letter then up to 14 letters, digits, - or _")
        if name in names:
            raise fail(where, f"duplicate name '{name}'")
        names.add(name)
        return name

    # Checks against earlier entries use sets and dicts: a spec of a few MB has tens of
    # thousands of entries, and comparing each with every other took minutes.
    switches, dpids = [], set()
    for i, item in enumerate(top["switches"]):
        where = f"switches[{i}]"
        item = check_keys(item, _SWITCH_KEYS, where, ("name",))
        name = claim_name(item["name"], f"{where}.name")
        digits = re.findall(r"\d+", name)
        dpid = item.get("dpid", int(digits[0]) if digits else 0)
        if not 0 < dpid < 2**64:
            raise fail(f"{where}.dpid", f"must be in 1..2^64-1, got {dpid} (give one explicitly "
                                        "when the name has no digits)")
        if dpid in dpids:
            raise fail(f"{where}.dpid", f"duplicate dpid {dpid}")
        dpids.add(dpid)
        switches.append(Switch(name, dpid))

    hosts, by_ip, by_mac = [], {}, {}
    for i, item in enumerate(top["hosts"]):
        where = f"hosts[{i}]"
        item = check_keys(item, _HOST_KEYS, where, ("name",))
        name = claim_name(item["name"], f"{where}.name")
        ip = item.get("ip", f"10.0.0.{i + 1}")
        try:
            ip = str(ipaddress.IPv4Address(ip))
        except ValueError:
            raise fail(f"{where}.ip", f"not an IPv4 address: '{ip}'") from None
        mac = item.get("mac", "00:00:00:00:{:02x}:{:02x}".format(*divmod(i + 1, 256))).lower()
        if not _MAC.match(mac):
            raise fail(f"{where}.mac", f"not a MAC address: '{mac}'")
        if hosts and hosts[0].ip.split(".")[0] != ip.split(".")[0]:
            raise fail(f"{where}.ip", f"{ip} is not in the /8 of {hosts[0].name} ({hosts[0].ip}): "
                                      "hosts share one /8 so that they reach each other by ARP")
        if ip in by_ip:
            raise fail(f"{where}.ip", f"duplicate address {ip} (also {by_ip[ip]})")
        if mac in by_mac:
            raise fail(f"{where}.mac", f"duplicate address {mac} (also {by_mac[mac]})")
        by_ip[ip] = by_mac[mac] = name
        hosts.append(Host(name, ip, mac))

    host_names = {h.name for h in hosts}
    links, ends, host_links = [], set(), Counter()
    for i, item in enumerate(top["links"]):
        where = f"links[{i}]"
        item = check_keys(item, _LINK_KEYS, where, ("nodes", "capacity_mbps"))
        nodes = item["nodes"]
        if len(nodes) != 2 or not all(isinstance(n, str) for n in nodes):
            raise fail(f"{where}.nodes", "must be a list of two node names")
        a, b = nodes
        for n in nodes:
            if n not in names:
                raise fail(f"{where}.nodes", f"unknown node '{n}'")
        if a == b:
            raise fail(f"{where}.nodes", f"link from '{a}' to itself")
        if a in host_names and b in host_names:
            raise fail(f"{where}.nodes", f"hosts '{a}' and '{b}' must connect through a switch")
        if frozenset(nodes) in ends:
            raise fail(f"{where}.nodes", f"duplicate link {a}-{b}")
        ends.add(frozenset(nodes))
        host_links.update(n for n in nodes if n in host_names)
        capacity = item["capacity_mbps"]
        if not 0 < capacity <= 100_000:
            raise fail(f"{where}.capacity_mbps", f"must be in (0, 100000], got {capacity}")
        delay = item.get("delay_ms", 0)
        if not 0 <= delay <= 10_000:
            raise fail(f"{where}.delay_ms", f"must be in [0, 10000], got {delay}")
        loss = item.get("loss_pct", 0)
        if not 0 <= loss <= 100:
            raise fail(f"{where}.loss_pct", f"must be in [0, 100], got {loss}")
        links.append(Link(a, b, float(capacity), float(delay), float(loss)))

    if not switches:
        raise fail("switches", "at least one switch is needed")
    for h in hosts:
        n = host_links[h.name]
        if n != 1:
            raise fail(f"host '{h.name}'", f"must have exactly one link to a switch, has {n}")
    services = _services(top.get("services", []), by_ip, host_names, check_keys, fail)
    spec = Spec(top["name"], tuple(switches), tuple(hosts), tuple(links),
                top.get("description", ""), services)
    if not nx.is_connected(spec.graph()):
        raise fail("links", "the switches do not form one connected network")
    return spec


def _services(items: list, by_ip: dict[str, str], host_names: set[str], check_keys, fail) -> tuple[Service, ...]:
    """The "services" list: each a virtual IP and TCP port in front of a pool of the spec's hosts."""
    services, names, addresses, serving = [], set(), {}, {}
    first_ip = next(iter(by_ip), None)
    for i, item in enumerate(items):
        where = f"services[{i}]"
        item = check_keys(item, _SERVICE_KEYS, where, ("name", "vip", "port", "members"))
        name = item["name"]
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]{0,31}", name):
            raise fail(f"{where}.name", f"name '{name}' must be a letter then up to 31 letters, digits, - or _")
        if name in names:
            raise fail(f"{where}.name", f"duplicate service name '{name}'")
        names.add(name)
        try:
            vip = str(ipaddress.IPv4Address(item["vip"]))
        except ValueError:
            raise fail(f"{where}.vip", f"not an IPv4 address: '{item['vip']}'") from None
        if vip in by_ip:
            raise fail(f"{where}.vip", f"{vip} is the address of host '{by_ip[vip]}'")
        if first_ip and first_ip.split(".")[0] != vip.split(".")[0]:
            raise fail(f"{where}.vip", f"{vip} is not in the hosts' /8 ({first_ip}): clients reach it by ARP")
        port = item["port"]
        if not 1 <= port <= 65535:
            raise fail(f"{where}.port", f"must be in 1..65535, got {port}")
        if (vip, port) in addresses:
            raise fail(f"{where}.port", f"{vip}:{port} is also service '{addresses[vip, port]}'")
        addresses[vip, port] = name
        if not item["members"]:
            raise fail(f"{where}.members", "the pool is empty: at least one member is needed")
        members, seen = [], set()
        for j, raw in enumerate(item["members"]):
            at = f"{where}.members[{j}]"
            raw = check_keys(raw, _MEMBER_KEYS, at, ("host",))
            host = raw["host"]
            if host not in host_names:
                raise fail(f"{at}.host", f"unknown host '{host}'")
            if host in seen:
                raise fail(f"{at}.host", f"duplicate member '{host}'")
            seen.add(host)
            if (host, port) in serving:     # its replies would be two services' at once
                raise fail(f"{at}.host", f"'{host}' port {port} is already a member of service '{serving[host, port]}'")
            serving[host, port] = name
            weight = raw.get("weight", 1)
            if not 0 < weight <= MAX_WEIGHT:
                raise fail(f"{at}.weight", f"must be in (0, {MAX_WEIGHT}], got {weight}")
            members.append(Member(host, float(weight)))
        services.append(Service(name, vip, port, tuple(members)))
    return tuple(services)
