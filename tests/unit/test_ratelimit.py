"""A flood of log lines from one call site is held back, and the next period says how many."""

import logging

from controller.service.ratelimit import MAX_TEMPLATES, RateLimit


class Clock:
    now = 0.0

    def __call__(self):
        return self.now


def record(msg="flow %s via %s", args=("k", "p")):
    return logging.LogRecord("lb.balancer", logging.INFO, __file__, 1, msg, args, None)


def test_twenty_thousand_lines_in_ten_seconds_write_one_burst():
    clock = Clock()
    limit = RateLimit(burst=20, period_s=10, clock=clock)
    passed = 0
    for i in range(20_000):
        clock.now = i * 0.0005
        passed += limit.filter(record(args=(i, "p")))
    assert passed == 20


def test_the_next_period_says_how_many_were_held_back_and_other_templates_are_not_held():
    clock = Clock()
    limit = RateLimit(burst=2, period_s=10, clock=clock)
    assert [limit.filter(record()) for _ in range(5)] == [True, True, False, False, False]
    assert limit.filter(record("switch %s connected", ("s1",)))
    clock.now = 10
    r = record(args=("k2", "p2"))
    assert limit.filter(r)
    assert r.getMessage() == "flow k2 via p2 (3 more like this held back)"


def test_templates_remembered_are_bounded():
    clock = Clock()
    limit = RateLimit(clock=clock)
    for i in range(3 * MAX_TEMPLATES):
        limit.filter(record(f"pre-formatted line {i}", ()))
    assert len(limit._windows) <= MAX_TEMPLATES
