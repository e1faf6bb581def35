"""Rates, loss and latency from counters, on a mock clock: the measured interval is used,
resets/wraps/unsupported counters never produce nonsense, and every feature stays finite and
in range whatever the counters do."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.core.discovery import End
from controller.core.monitor import (UNSUPPORTED, FlowStat, LinkMetrics, Monitor, PathFeatures, PortStat, counter_delta,
                                    path_features, round_trip)
from controller.policies.qlearning import level

A, B = End(1, 2), End(2, 2)          # link A -> B


def port(tx_bytes=0, tx_packets=0, rx_bytes=0, rx_packets=0, duration_s=None, port_no=2, **kw):
    return PortStat(port_no, rx_packets, tx_packets, rx_bytes, tx_bytes, duration_s=duration_s, **kw)


def feed(m, t, a=None, b=None, answers=None):
    """a's and b's port replies, then a's flow reply (none of our entries: tests that have
    entries send them after), all answering one poll (by default, one at t)."""
    answers = t if answers is None else answers
    if a is not None:
        m.port_stats(1, [a], t, answers)
    if b is not None:
        m.port_stats(2, [b], t, answers)
    m.flow_stats(1, [], t, answers)


def test_counter_delta_handles_unsupported_reset_and_wrap():
    assert counter_delta(100, 250) == 150
    assert counter_delta(UNSUPPORTED, 5) is None and counter_delta(5, UNSUPPORTED) is None
    assert counter_delta(1000, 10) is None                       # reset
    assert counter_delta(2**64 - 10, 5) == 15                    # wrap
    assert counter_delta(None, 5) is None


def test_utilisation_uses_the_switch_measured_interval_not_the_nominal_one():
    m = Monitor()
    feed(m, 0.0, port(duration_s=10.0), port(duration_s=10.0))
    # the reply arrived 1.0 s later, but the switch says 2.0 s passed between snapshots
    feed(m, 1.0, port(tx_bytes=2_500_000, tx_packets=2000, duration_s=12.0),
         port(rx_bytes=2_500_000, rx_packets=2000, duration_s=12.0))
    link = m.link(A, B, capacity_mbps=20, now=1.0, max_age_s=3)
    assert link.rate_mbps == pytest.approx(10.0)
    assert link.utilisation == pytest.approx(0.5)
    assert link.loss == 0.0


def test_receive_time_is_the_interval_when_the_switch_gives_no_duration():
    m = Monitor()
    feed(m, 0.0, port(), port())
    feed(m, 0.5, port(tx_bytes=625_000, tx_packets=500), port(rx_packets=500))
    assert m.link(A, B, 10, 0.5, 3).rate_mbps == pytest.approx(10.0)


def test_loss_compares_far_end_receptions_with_packets_offered():
    m = Monitor()
    # each poll's port reply, then its flow reply: each second our entry on switch 1 sent 900
    # packets towards A, and its port 600
    for t in range(3):
        feed(m, t, port(tx_packets=600 * t, duration_s=t + 1), port(rx_packets=600 * t, duration_s=t + 1))
        m.flow_stats(1, [FlowStat(cookie=7, out_port=2, packets=900 * t)], t)
    assert m.link(A, B, 10, 2.0, 3).loss == pytest.approx(1 / 3)


def test_a_window_in_which_traffic_starts_is_no_evidence_of_loss():
    """The two ends are read moments apart: a flow of 446 packets/s that started 50 ms before
    a's snapshot had reached b's, taken 11 ms earlier, with 17 packets fewer: loss 0.22 by the
    rates, none in truth. The next window, steady, reads none."""
    m = Monitor()
    feed(m, 0.0, port(duration_s=1), port(duration_s=1))
    feed(m, 1.0, port(tx_packets=22, duration_s=2), port(rx_packets=17, duration_s=2))
    assert m.link(A, B, 10, 1.0, 3).loss == 0.0
    feed(m, 2.0, port(tx_packets=468, duration_s=3), port(rx_packets=463, duration_s=3))
    assert m.link(A, B, 10, 2.0, 3).loss == pytest.approx(0.0)


def flow_run(m, received, durations=None, pps=1000):
    """A loss-free link carrying one flow's pps, a second apart by the switches' clocks (their
    ports' durations): both ports' and the entry's counters, handled at the given times; the
    entry's durations as the switch reports them (by default, steady with the ports')."""
    sent = 0
    for t, at in enumerate(received):
        sent += pps
        feed(m, at, port(tx_packets=sent, tx_bytes=sent * 1000, duration_s=t + 1.0),
             port(rx_packets=sent, rx_bytes=sent * 1000, duration_s=t + 1.0))
        duration = durations[t] if durations else t + 5.0
        m.flow_stats(1, [FlowStat(cookie=7, out_port=2, packets=sent, bytes=sent * 1000, duration_s=duration)], at)
        yield m.link(A, B, 10, at, 3).loss


def test_an_entry_replaced_like_open_vswitch_does_reads_no_loss():
    """Open vSwitch keeps a replaced entry's counters and restarts its duration: total / duration
    read loss 0.997 on this link; counter deltas read none, whether the restart leaves the
    duration below its last value (just before t=3) or, replaced again, above it (at t=3.5)."""
    for durations in ([1.0, 2.0, 3.0, 0.001, 1.001, 2.001], [1.0, 2.0, 3.0, 0.1, 0.5, 1.5]):
        assert max(flow_run(Monitor(), [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], durations)) < 1e-9, durations


@pytest.mark.parametrize("received", [[0.0, 1.08, 1.92, 3.08, 3.92, 5.0],     # +-80 ms
                                      [0.0, 1.95, 2.0, 3.0, 4.95, 5.0]])      # 950 ms late, then on time
def test_the_switch_clock_times_a_flow_when_replies_are_handled_late(received):
    """Replies handled late (a busy event loop) would make a loss-free link read loss, and a
    flow up to 20x its rate, by receive times; the switch's clock is the window."""
    m = Monitor()
    assert max(flow_run(m, received)) < 1e-9
    assert m.offered(A, received[-1], 3)[0] == pytest.approx(1000)


def test_an_entry_is_timed_by_its_own_duration():
    """The flow reply is made a few ms after the port reply, more or less each poll: over the
    ports' window an entry's rate was 3% off (loss 0.03 on a loss-free link); over its own, none."""
    m = Monitor()
    lag = [0.0, 0.03, 0.0, 0.03, 0.0]
    for t in range(5):
        sent = 1000 * t
        feed(m, t, port(tx_packets=sent, duration_s=t + 1.0), port(rx_packets=sent, duration_s=t + 1.0))
        entry_sent = int(1000 * (t + lag[t]))           # its counters as of its own, later snapshot
        m.flow_stats(1, [FlowStat(7, 2, entry_sent, duration_s=t + 1.0 + lag[t])], t)
        assert m.link(A, B, 10, t, 3).loss < 1e-9, t


def test_an_entry_counted_in_steps_reads_no_loss_when_a_window_catches_an_extra_step():
    """Open vSwitch adds to an entry's counters every 500 ms: a loss-free 446 packets/s flow
    polled every 1.003 s puts 3 additions (669 packets) in one window now and then, which read
    loss 0.33 by that window alone; the next window has its usual 2, and no window reads loss."""
    m = Monitor()
    for t in range(6):
        at = t * 1.003
        sent = int(446 * at)
        feed(m, at, port(tx_packets=sent, duration_s=at + 1), port(rx_packets=sent, duration_s=at + 1))
        counted = 223 * (2 * t + (t >= 3))       # one addition early, from the fourth reply on
        m.flow_stats(1, [FlowStat(7, 2, counted, duration_s=at + 1)], at)
        assert m.link(A, B, 10, at, 3).loss < 0.01, t


def test_drops_before_the_port_show_from_the_second_window_the_entry_offers_them():
    """The port sends 600 packets/s all along; our entry, first seen at t=1, sent 900 towards it
    every second: loss 1/3 from the entry's second measured window (t=3) on, not from its first."""
    m = Monitor()
    readings = []
    for t in range(5):
        feed(m, t, port(tx_packets=600 * t, duration_s=t + 1), port(rx_packets=600 * t, duration_s=t + 1))
        if t:
            m.flow_stats(1, [FlowStat(7, 2, 900 * t, duration_s=t - 0.5)], t)
        readings.append(m.link(A, B, 10, t, 3).loss)
    assert readings[:3] == [0.0, 0.0, 0.0] and readings[3:] == pytest.approx([1 / 3, 1 / 3])


def test_a_link_not_measured_for_longer_than_max_age_is_unknown_not_its_last_rate():
    m = Monitor()
    feed(m, 0.0, port(), port())
    feed(m, 1.0, port(tx_packets=1000, tx_bytes=1_250_000), port(rx_packets=1000, rx_bytes=1_250_000))
    fresh = m.link(A, B, 10, 2.0, 3)
    assert (fresh.known, fresh.utilisation) == (True, 1.0)
    stale = m.link(A, B, 10, 3600.0, 3)
    assert (stale.known, stale.utilisation, stale.rate_mbps, stale.age_s) == (False, 0.0, 0.0, 3599.0)
    assert not m.access(A, True, 100, 3600.0, 3).known
    assert path_features([fresh, stale], hops=1).unknown == 1


def test_a_port_that_goes_down_forgets_its_rates():
    m = Monitor()
    feed(m, 0.0, port(), port())
    feed(m, 1.0, port(tx_packets=1000, tx_bytes=1_250_000), port(rx_packets=1000, rx_bytes=1_250_000))
    m.forget_port(A)
    assert not m.link(A, B, 10, 1.0, 3).known
    feed(m, 60.0, port(tx_packets=1000, tx_bytes=1_250_000))   # up again: no window across the outage
    assert not m.link(A, B, 10, 60.0, 3).known


def lossy_run(m, windows):
    """A link whose b receives 70% of what a sends, a second apart, each window kept by a poll;
    per window, the packets of the entry that has carried 446 packets/s all along and of one
    that is new in it, which reach b's counters only in the next window (the ends are read
    moments apart)."""
    tx = rx = old = late = 0
    for t, new in enumerate(windows):
        tx, old = tx + 446 + new, old + 446
        rx, late = rx + round(0.7 * (446 + late)), new
        feed(m, t, port(tx_packets=tx, duration_s=t + 1), port(rx_packets=rx, duration_s=t + 1))
        m.flow_stats(1, [FlowStat(1, 2, old, duration_s=t + 1.0)] + ([FlowStat(100 + t, 2, new, duration_s=0.1)]
                                                                    if new else []), t)
        m.keep_losses([(A, B)], [], t, 3)
        yield m.link(A, B, 10, t, 3).loss


def test_a_window_in_which_a_big_new_flow_starts_beside_steady_traffic_is_no_evidence():
    """A's rate stays steady (446 -> 546 packets/s) but a new entry carried 100 of them: its
    start, read moments apart at the two ends, would show as loss 0.43; that window reads the
    estimate kept before it."""
    readings = list(lossy_run(Monitor(), [0, 0, 0, 100, 0]))
    assert readings[2] == pytest.approx(0.3, abs=0.01) and readings[3] == readings[2]


class Windows:
    """One link a -> b, a second a window, each kept by a poll unless told otherwise; a window
    returns its loss as a reader (REST, metrics, a new flow) sees it, if it is read."""
    def __init__(self):
        self.m, self.tx, self.rx, self.t = Monitor(), 0, 0, 0

    def window(self, sent, received, poll=True, read=True):
        self.tx, self.rx = self.tx + sent, self.rx + received
        feed(self.m, self.t, port(tx_packets=self.tx, duration_s=self.t + 1),
             port(rx_packets=self.rx, duration_s=self.t + 1))
        self.m.flow_stats(1, [], self.t)     # a's flow statistics: none of our entries
        if poll:
            self.m.keep_losses([(A, B)], [], self.t, 3)
        self.t += 1
        return self.m.link(A, B, 10, self.t - 1, 3).loss if read else None


def lossy(w, windows=3):
    """Windows losing 30% (the first has no rate before it and is no evidence)."""
    return [w.window(1000, 700) for _ in range(windows)]


def test_a_window_without_evidence_reads_the_estimate_the_last_poll_kept_while_it_is_fresh():
    """A link losing 30%: a window whose rate more than doubles (it would read 0.67) reads 0.3,
    until that estimate is older than max_age."""
    w = Windows()
    assert lossy(w) == pytest.approx([0.0, 0.0, 0.3])
    assert w.window(2100, 700) == pytest.approx(0.3)
    assert w.m.link(A, B, 10, 5.5, 3).loss == 0.0         # kept from the window that ended at 2


@pytest.mark.parametrize("then", [(1000, 1000), (5, 5)], ids=["loss-free", "idle"])
def test_a_window_of_no_loss_or_no_traffic_replaces_the_estimate(then):
    """After 30% loss, a window with evidence of none, or with too few packets to lose any:
    the next window without evidence (it would read 0.5) reads 0, not the 0.3 before."""
    w = Windows()
    lossy(w)
    assert w.window(*then) == 0.0
    assert w.window(2100, 1050) == 0.0


def test_what_a_window_without_evidence_reads_does_not_depend_on_who_read_before():
    """One monitor read at every window, one not read at the loss-free window: both hold the
    estimate each poll kept (0), not the 0.3 a reader last saw."""
    every, some = Windows(), Windows()
    for w in (every, some):
        lossy(w)
        w.window(1000, 1000, poll=False, read=w is every)
    assert every.window(2100, 1050) == some.window(2100, 1050) == pytest.approx(0.3)


@pytest.mark.parametrize("late", ["b's port reply", "a's flow reply"])
def test_a_window_is_evidence_only_once_every_reply_to_its_poll_is_in(late):
    """Poll 3's replies: a's port reply is in, but b's (a switch a poll behind: its last reply
    answers poll 2) or the last part of a's flow reply is not. A loss-free window: until all
    are in it is no evidence, read and kept as the estimate before it (0.3), not what the mixed
    replies show."""
    m, tx, rx = Monitor(), 0, 0
    for t in range(3):                                    # polls 0..2: 30% lost, all replies in
        tx, rx = tx + 1000, rx + 700
        feed(m, t + 0.1, port(tx_packets=tx, duration_s=t + 1), port(rx_packets=rx, duration_s=t + 1), answers=t)
        m.keep_losses([(A, B)], [], t + 0.5, 3)
    tx, rx = tx + 1600, rx + 1600                         # poll 3: loss-free, and busier
    m.port_stats(1, [port(tx_packets=tx, duration_s=4)], 3.1, 3)
    if late == "b's port reply":
        m.flow_stats(1, [], 3.1, 3)
    else:
        m.port_stats(2, [port(rx_packets=rx, duration_s=4)], 3.1, 3)
        m.flow_stats(1, [], 3.1, 3, more=True)           # its first part
    m.keep_losses([(A, B)], [], 3.5, 3)
    assert m.link(A, B, 10, 3.5, 3).loss == pytest.approx(0.3) and m.loss_since(A, 1.5) is None
    if late == "b's port reply":
        m.port_stats(2, [port(rx_packets=rx, duration_s=4)], 3.6, 3)
    else:
        m.flow_stats(1, [], 3.6, 3)                      # its last part
    m.keep_losses([(A, B)], [], 4.0, 3)
    assert m.link(A, B, 10, 4.0, 3).loss == 0.0 and m.loss_since(A, 1.5) == 0.0


def test_a_decision_outcome_takes_only_a_loss_measured_after_it():
    """loss_since: the estimate kept from a window that began after the decision, else None
    (not measured yet: the outcome waits), never the 0 or the estimate from before it."""
    w = Windows()
    [w.window(1000, 700) for _ in range(3)]               # kept: the window 1..2, loss 0.3
    assert w.m.loss_since(A, 0.5) == pytest.approx(0.3) and w.m.loss_since(A, 1.5) is None
    w.window(2100, 700)                                   # no evidence: nothing new kept
    assert w.m.loss_since(A, 1.5) is None
    w.window(2100, 1470)
    assert w.m.loss_since(A, 1.5) == pytest.approx(0.3)


@pytest.mark.parametrize("forget", ["port", "switch", "reset"])
def test_a_port_forgotten_or_reset_holds_no_loss(forget):
    w = Windows()
    [w.window(1000, 700) for _ in range(3)]
    if forget == "port":
        w.m.forget_port(A)
    elif forget == "switch":
        w.m.forget_switch(1)
    else:                                                  # a's counters start again from 0
        w.tx = 0
        w.window(0, 0, poll=False)
    w.window(1000, 700, poll=False)
    assert w.window(2100, 700) == 0.0 and w.m.loss_since(A, -1.0) is None


@pytest.mark.parametrize("case", ["a refused reply", "polls not known"])
def test_a_window_spanning_other_polls_than_its_far_end_or_unknown_ones_is_no_evidence(case):
    """A loss-free link slowing from 3000 to 1000 packets a second. a's reply to poll 3 is
    refused, so its next window spans polls 2 to 4 and b's 3 to 4: by rates, loss 0.5. Or no
    reply can be matched to its poll (their xids forgotten). Neither is evidence."""
    m, tx, rx = Monitor(), 0, 0
    for t, pps in enumerate([3000, 3000, 3000, 2000, 1000]):
        tx, rx = tx + pps, rx + pps
        known = None if case == "polls not known" else t
        if not (case == "a refused reply" and t == 3):
            m.port_stats(1, [port(tx_packets=tx, duration_s=t + 1)], t, known)
        m.port_stats(2, [port(rx_packets=rx, duration_s=t + 1)], t, known)
        m.flow_stats(1, [], t, known)
        m.keep_losses([(A, B)], [], t + 0.5, 3)
    assert m.link(A, B, 10, 4.5, 3).loss == 0.0 and m.loss_since(A, 2.5) is None


def test_a_host_port_window_whose_flow_reply_is_not_in_is_no_evidence():
    """Our entry offers 1000 packets a second, the port sends them all; at the last poll the
    port sends 800 but the flow reply to that poll is not in: not evidence of 0.2 yet."""
    m, host = Monitor(), End(1, 1)
    for t, sent in enumerate([0, 1000, 2000, 3000, 3800]):
        m.port_stats(1, [port(port_no=1, tx_packets=sent, duration_s=t + 1.0)], t, t)
        if t < 4:
            m.flow_stats(1, [FlowStat(cookie=3, out_port=1, packets=1000 * t, duration_s=t + 1.0)], t, t)
        m.keep_losses([], [host], t + 0.5, 3)
    assert m.access(host, True, 100, 4.5, 3).loss == 0.0 and m.loss_since(host, 2.5) is None


def test_a_busy_port_towards_a_host_whose_entries_are_not_measured_yet_is_no_evidence():
    """The port sends 800 packets a second but our entry is new (it offers from its third
    reply): not loss 0, kept, but no evidence: the port reads its last estimate."""
    m, host = Monitor(), End(1, 1)
    for t in range(3):
        m.port_stats(1, [port(port_no=1, tx_packets=800 * t, duration_s=t + 1.0)], t, t)
        m.flow_stats(1, [FlowStat(cookie=3 + t, out_port=1, packets=10, duration_s=0.5)], t, t)
        m.keep_losses([], [host], t, 3)
    assert m.loss_since(host, -1.0) is None


def test_a_port_towards_a_host_holds_its_loss_like_a_link():
    """Our entry offers 1000 packets a second, the port sends 800: 0.2; a window in which the
    port's rate more than doubles reads 0.2, kept, not what it shows."""
    m, host = Monitor(), End(1, 1)
    for t, sent in enumerate([800, 800, 800, 2000]):
        m.port_stats(1, [port(port_no=1, tx_packets=sum([800, 800, 800, 2000][:t + 1]) - 800, duration_s=t + 1.0)], t, t)
        m.flow_stats(1, [FlowStat(cookie=3, out_port=1, packets=1000 * t, duration_s=t + 1.0)], t, t)
        m.keep_losses([], [host], t, 3)
    assert m.access(host, True, 100, 3.0, 3).loss == pytest.approx(0.2)
    assert m.loss_since(host, 1.5) is None and m.loss_since(host, 0.5) == pytest.approx(0.2)


def test_small_flows_starting_every_window_do_not_hide_a_lossy_link():
    """Short connections start every second (5 packets each): loss still shows."""
    readings = list(lossy_run(Monitor(), [5] * 6))
    assert min(readings[2:]) == pytest.approx(0.3, abs=0.01)


def test_too_few_packets_is_no_evidence_of_loss():
    m = Monitor()
    feed(m, 0.0, port(), port())
    feed(m, 1.0, port(tx_packets=3), port(rx_packets=1))
    assert m.link(A, B, 10, 1.0, 3).loss == 0.0


def test_counter_reset_drops_the_window_instead_of_a_negative_rate():
    m = Monitor()
    feed(m, 0.0, port(tx_bytes=10**9, tx_packets=10**6), port(rx_packets=10**6))
    feed(m, 1.0, port(tx_bytes=1000, tx_packets=10), port(rx_packets=10**6 + 10))
    link = m.link(A, B, 10, 1.0, 3)
    assert (link.rate_mbps, link.utilisation, link.age_s) == (0.0, 0.0, math.inf)


def test_missing_reply_makes_metrics_age():
    m = Monitor()
    feed(m, 0.0, port(), port())
    feed(m, 1.0, port(tx_packets=100, tx_bytes=10**5), port(rx_packets=100))
    assert m.link(A, B, 10, 4.0, 3).age_s == pytest.approx(3.0)


def test_latency_subtracts_half_of_each_echo_rtt_and_takes_the_recent_minimum():
    m = Monitor()
    m.echo_rtt(1, 0.004)
    m.echo_rtt(2, 0.002)
    m.probe_delay(A, B, 0.013, 1.0)            # 13 ms - 2 ms - 1 ms
    assert m.latency_ms(A, B) == pytest.approx(10.0)
    m.probe_delay(A, B, 0.053, 2.0)            # a sample delayed inside the controller
    assert m.latency_ms(A, B) == pytest.approx(10.0)
    m.probe_delay(A, B, 0.001, 3.0)            # would be negative: clamped to 0
    assert m.latency_ms(A, B) == 0.0
    for t in range(3):                         # sustained queueing shows in every probe
        m.probe_delay(A, B, 0.043, 4.0 + t)
    assert m.latency_ms(A, B) == pytest.approx(40.0)


def test_latency_since_a_moment_reads_only_probes_sent_after_it():
    m = Monitor()
    assert m.latency_ms(A, B) == 0.0 and m.latency_ms(A, B, since=1.0) is None
    m.probe_delay(A, B, 0.030, 1.0)            # sent at 0.97
    m.probe_delay(A, B, 0.002, 2.0)            # sent at 1.998
    assert m.latency_ms(A, B) == pytest.approx(2.0) and m.latency_ms(A, B, since=0.5) == pytest.approx(2.0)
    assert m.latency_ms(A, B, since=1.5) == pytest.approx(2.0) and m.latency_ms(A, B, since=2.5) is None
    m.probe_delay(A, B, 0.050, 3.0)
    assert m.latency_ms(A, B, since=2.5) == pytest.approx(50.0)


def test_path_features_combine_links_as_documented():
    def link(u, loss, lat):
        return LinkMetrics(A, B, 10, 10 * u, u, loss, lat, 0)
    # host access link, two inter-switch links, host access link
    f = path_features([link(0.9, 0.0, 0.0), link(0.2, 0.1, 1.0), link(0.7, 0.5, 2.0), link(0.95, 0.0, 0.0)], hops=2)
    assert (f.utilisation, f.loss, f.latency_ms, f.hops) == (0.7, pytest.approx(0.55), 3.0, 2)
    assert f.headroom_mbps == pytest.approx(3.0)        # the second inter-switch link's 10 - 7
    booked = path_features([link(0.9, 0.0, 0.0), link(0.0, 0.0, 1.0), link(0.7, 0.0, 2.0), link(0.95, 0.0, 0.0)],
                           hops=2, booked_mbps=[50.0, 9.0, 0.0, 50.0])
    assert booked.utilisation == 0.9       # the first link's 0 measured + 9 booked, of 10
    assert booked.headroom_mbps == pytest.approx(1.0)   # access links never count


def test_a_round_trip_takes_each_feature_from_the_worse_direction_so_its_level_is_the_busier_ones():
    def link(u, loss, lat, capacity=10):
        return LinkMetrics(A, B, capacity, capacity * u, u, loss, lat, 0, known=lat > 0)
    there = path_features([link(0, 0, 1), link(0.2, 0.1, 1), link(0, 0, 1)], hops=1)
    back = path_features([link(0, 0, 0), link(0.9, 0.005, 2, capacity=4), link(0, 0, 1)], hops=1)
    assert round_trip(there, back) == PathFeatures(0.9, pytest.approx(0.1), 3.0, 1, 1, pytest.approx(0.4), 4)
    six = path_features([link(0, 0, 0.1), link(0.1, 0.006, 6), link(0, 0, 0.1)], hops=1)   # under 10 ms, 1%
    assert level(round_trip(six, six)) == level(six) == 0      # one-way thresholds, not summed
    assert level(round_trip(six, back)) == "u" and level(round_trip(six, there)) == 4     # loss 0.1 there


def test_access_link_to_a_host_loses_what_the_port_could_not_send():
    m = Monitor()
    for t in range(3):       # each second our entry offers 1000 packets, the port sends 800
        m.port_stats(1, [port(port_no=1, tx_packets=800 * t, tx_bytes=10**6 * t)], t, t)
        m.flow_stats(1, [FlowStat(cookie=3, out_port=1, packets=1000 * t)], t, t)
    to_host = m.access(End(1, 1), True, 100, 2.0, 3)
    assert (to_host.loss, to_host.utilisation) == (pytest.approx(0.2), pytest.approx(0.08))
    assert m.access(End(1, 1), False, 100, 2.0, 3).loss == 0.0


counters = st.integers(0, 2**64 - 1) | st.just(UNSUPPORTED)
samples = st.lists(st.tuples(counters, counters, counters, counters,
                             st.floats(0, 1e6) | st.none(), st.floats(0.001, 5)),
                   min_size=1, max_size=6)


@given(samples, samples, st.lists(st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1),
                                            st.floats(0, 5)), max_size=4),
       st.floats(-1e3, 1e3) | st.sampled_from([math.nan, math.inf, -math.inf]))
def test_features_stay_finite_and_in_range_for_any_counters(tx_side, rx_side, flows, travel):
    m = Monitor()
    t = 0.0
    for (a, b) in zip(tx_side, rx_side):
        t += a[5]
        m.port_stats(1, [PortStat(2, a[0], a[1], a[2], a[3], a[0], a[1], a[4])], t)
        m.port_stats(2, [PortStat(2, b[0], b[1], b[2], b[3], b[0], b[1], b[4])], t)
    for packets, nbytes, gap in flows:
        t += gap
        m.flow_stats(1, [FlowStat(1, 2, packets, nbytes)], t)
    m.echo_rtt(1, travel)
    m.probe_delay(A, B, travel, t)
    link = m.link(A, B, 10, t, 3)
    f = path_features([link, m.access(A, True, 10, t, 3), m.access(B, False, 10, t, 3)], hops=1)
    for value in (link.utilisation, link.loss, f.utilisation, f.loss):
        assert 0.0 <= value <= 1.0
    for value in (link.rate_mbps, link.latency_ms, f.latency_ms):
        assert math.isfinite(value) and value >= 0
