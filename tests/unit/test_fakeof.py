"""The fake flow table refuses what a real switch would make ambiguous: an ADD that some packet
could match as well as an existing entry of the same priority (as FAUCET's fakeoftable does),
so that a plan with such entries fails the unit tests instead of working by insertion order."""

import pytest

from controller.openflow.messages import CONTROLLER, FlowMod, Match
from controller.openflow.packets import ETH_ARP, ETH_IPV4
from fakes.switches import SPEC, AmbiguousFlowMod, FakeOFNetwork
from controller.files import load_spec

TCP_FLOW = Match(in_port=1, eth_type=ETH_IPV4, ipv4_src="10.0.0.1", ipv4_dst="10.0.0.7", ip_proto=6,
                 tcp_src=40000, tcp_dst=5201)


def table_with(*matches: Match, priority: int = 100) -> FakeOFNetwork:
    of = FakeOFNetwork(load_spec(SPEC))
    of.apply([FlowMod(1, m, (2,), priority) for m in matches])
    return of


@pytest.mark.parametrize("other", [
    Match(in_port=1, eth_type=ETH_IPV4, ipv4_src="10.0.0.1", ipv4_dst="10.0.0.7", ip_proto=6),  # all TCP of the pair
    Match(eth_type=ETH_IPV4),                                  # all IPv4
    Match(tcp_dst=5201),                                       # implies IPv4 and TCP
    Match(),                                                   # everything
])
def test_an_overlapping_add_at_the_same_priority_is_refused(other):
    with pytest.raises(AmbiguousFlowMod, match="priority 100"):
        table_with(TCP_FLOW, other)


@pytest.mark.parametrize("other", [
    TCP_FLOW._replace(in_port=2),                              # another port
    TCP_FLOW._replace(tcp_src=40001),                          # another flow of the pair
    Match(in_port=1, eth_type=ETH_IPV4, ipv4_src="10.0.0.1", ipv4_dst="10.0.0.7", ip_proto=1),   # ICMP
    Match(eth_type=ETH_ARP),                                   # never IPv4
    Match(udp_dst=5201),                                       # implies UDP, not TCP
])
def test_entries_no_packet_matches_both_coexist(other):
    assert len(table_with(TCP_FLOW, other).tables[1]) == 2


def test_the_same_match_replaces_and_another_priority_is_not_ambiguous():
    of = table_with(TCP_FLOW, TCP_FLOW)
    assert len(of.tables[1]) == 1
    of.apply([FlowMod(1, Match(), (CONTROLLER,), priority=0)])
    assert len(of.tables[1]) == 2
