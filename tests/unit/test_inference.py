"""The LLM-like workload (topologies/inference.py): its token-count distributions, the seeded
Poisson schedule, the capacity formula, and the request server's slots, queue and token timing,
measured on a real server and client in this process (127.0.0.1)."""

from __future__ import annotations

import asyncio
import json
import math
import random
import socket
import struct
import time
from io import StringIO

import numpy as np
import pytest

from topologies.inference import (PREFILL_FACTOR, TICK_S, Lengths, Member, Request, Server, Slots, Workload,
                                  capacity, fetch, read_schedule, schedule, syn_of, write_schedule)


# -- distributions ---------------------------------------------------------------------------------
def test_the_default_workload_is_the_azure_conversation_trace_medians():
    w = Workload()
    assert (w.prompt.median, w.output.median, w.prefill_factor) == (1020, 129, PREFILL_FACTOR)


@pytest.mark.parametrize("lengths", [Workload().prompt, Workload().output, Lengths(50, 1.5, 400)])
def test_draws_have_the_median_the_closed_form_mean_and_stay_in_range(lengths):
    rng = random.Random(7)
    xs = np.array([lengths.draw(rng) for _ in range(100_000)])
    assert xs.min() >= 1 and xs.max() <= lengths.cap
    assert np.median(xs) == pytest.approx(lengths.median, rel=0.03)
    assert xs.mean() == pytest.approx(lengths.mean(), rel=0.02)    # rounding and the floor of 1: < 1%


def test_the_clipped_mean_is_the_lognormal_mean_without_a_cap_and_the_cap_with_a_tiny_one():
    assert Lengths(100, 0.8, 10**9).mean() == pytest.approx(100 * math.exp(0.32))
    assert Lengths(100, 0.8, 2).mean() == pytest.approx(2, abs=1e-6)


def test_the_tail_is_heavy():
    """Far heavier than an exponential of the same mean (whose p99/median is ln(100)/ln(2) = 6.6,
    and whose top 1% holds 5.6% of the total): the longest 1% of answers carry a tenth of all tokens."""
    rng = random.Random(3)
    out = np.sort([Workload().output.draw(rng) for _ in range(100_000)])
    assert np.percentile(out, 99) / np.median(out) > 9
    assert out[-1000:].sum() / out.sum() > 0.08


def test_a_seed_gives_the_same_draws_and_another_seed_others():
    w = Workload()
    a, b, c = (random.Random(s) for s in (1, 1, 2))
    draw = lambda rng: [(w.prompt.draw(rng), w.output.draw(rng)) for _ in range(50)]  # noqa: E731
    assert draw(a) == draw(b) != draw(c)


# -- the schedule --------------------------------------------------------------------------------------
def test_a_schedule_is_the_same_for_the_same_seed_and_its_sizes_the_same_at_every_load(tmp_path):
    one = schedule(4, 10, 60, ["c1", "c2", "c3"])
    assert one == schedule(4, 10, 60, ["c1", "c2", "c3"]) != schedule(5, 10, 60, ["c1", "c2", "c3"])
    busier = schedule(4, 20, 60, ["c1", "c2", "c3"])
    assert [(r.prompt_tokens, r.output_tokens) for r in one] == \
        [(r.prompt_tokens, r.output_tokens) for r in busier[:len(one)]]
    write_schedule(tmp_path / "s.json", one)
    assert read_schedule(tmp_path / "s.json") == one


def test_arrivals_are_poisson_at_the_rate_asked():
    requests = schedule(11, 8, 2000, ["c1", "c2", "c3"])
    gaps = np.diff([0] + [r.at_s for r in requests])
    assert len(requests) == pytest.approx(16_000, rel=0.03)      # 3 sigma of a Poisson count is 2.4%
    assert gaps.mean() == pytest.approx(1 / 8, rel=0.03)
    assert gaps.std() / gaps.mean() == pytest.approx(1, abs=0.05)  # exponential gaps: coefficient of variation 1
    assert all(0 <= r.at_s < 2000 for r in requests) and [r.id for r in requests] == list(range(len(requests)))
    assert {r.client for r in requests} == {"c1", "c2", "c3"}


def test_a_schedule_needs_a_rate_and_a_client():
    for rate, clients in ((0, ["c1"]), (5, [])):
        with pytest.raises(ValueError):
            schedule(1, rate, 10, clients)


# -- capacity ----------------------------------------------------------------------------------------
def test_capacity_is_the_slot_speed_sum_over_the_mean_cost():
    w = Workload(prompt=Lengths(200, 0.5, 10**9), output=Lengths(100, 0.5, 10**9), prefill_factor=10)
    mean_cost = 200 * math.exp(0.125) / 10 + 100 * math.exp(0.125)     # E[p]/F + E[o]
    pool = [Member("a", 100, 2), Member("b", 300, 4)]
    assert capacity(pool, w) == pytest.approx((2 * 100 + 4 * 300) / mean_cost)
    assert w.cost(200, 100) == 120


# -- the server ----------------------------------------------------------------------------------------
def test_slots_admit_first_come_first_served():
    async def scenario():
        slots, order = Slots(2), []

        async def take(name, hold_s):
            await slots.acquire()
            order.append(name)
            await asyncio.sleep(hold_s)
            slots.release()
        await asyncio.gather(*(take(n, 0.05) for n in "abcdef"))
        return order, slots.free, slots.queued
    assert asyncio.run(scenario()) == (list("abcdef"), 2, 0)


def test_a_cancelled_waiter_gives_up_its_place():
    async def scenario():
        slots = Slots(1)
        await slots.acquire()
        waiter = asyncio.ensure_future(slots.acquire())
        await asyncio.sleep(0)
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
        slots.release()
        return slots.free, slots.queued
    assert asyncio.run(scenario()) == (1, 0)


async def _serve(speed: float, slots: int):
    log = StringIO()
    server = Server("m9", speed, slots, log)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    return listener, listener.sockets[0].getsockname()[1], log


def _requests(*sizes: tuple[int, int]) -> list[Request]:
    return [Request(i, 0.0, "c1", p, o) for i, (p, o) in enumerate(sizes)]


def _run(speed, slots, requests, bound_s=10):
    async def scenario():
        listener, port, log = await _serve(speed, slots)
        t0 = time.time()
        async with listener:
            results = await asyncio.gather(*(fetch(r, "127.0.0.1", port, t0, t0 + bound_s) for r in requests))
        return results, [json.loads(line) for line in log.getvalue().splitlines()]
    return asyncio.run(scenario())


# Tolerances: a token is never sent before it is due, so measured times have no lower slack but the
# clock's. Above, tokens due within one tick go out together (up to TICK_S late), and the event
# loop, the loopback and a busy 2-core machine add scheduling delay: 60 ms is what we allow,
# a tenth of the shortest interval measured here.
LATE_S = TICK_S + 0.05


def test_a_server_at_speed_s_streams_n_tokens_in_n_over_s_seconds_after_its_prefill():
    (result,), (line,) = _run(400, 1, _requests((400, 200)))
    prefill = 400 / PREFILL_FACTOR / 400                      # 0.05 s
    assert result["ok"] and result["tokens"] == 200 and result["member"] == "m9"
    assert prefill + 1 / 400 <= result["ttft"] <= prefill + 1 / 400 + LATE_S
    # the last token is due 200/400 s after the prefill, from the request's start: not 199/400 s
    # after the first token, which may itself be late (it then shortens the gap between them)
    assert prefill + 200 / 400 - 0.002 <= result["end"] - result["start"] <= prefill + 200 / 400 + LATE_S
    assert (line["prompt"], line["output"], line["sent"], line["status"]) == (400, 200, 200, "ok")


def test_a_faster_server_streams_the_same_answer_proportionally_faster():
    slow = _run(100, 1, _requests((20, 60)))[0][0]
    fast = _run(400, 1, _requests((20, 60)))[0][0]
    assert slow["end"] - slow["start"] == pytest.approx(61 / 100, abs=LATE_S)
    assert fast["end"] - fast["start"] == pytest.approx(61 / 400, abs=LATE_S)


def test_requests_beyond_the_slots_wait_their_turn_and_that_wait_is_in_their_ttft():
    """One slot, three requests at once, each 0.25 s of work: they finish at 0.25, 0.5 and 0.75 s
    in arrival order, and the third's first token comes after the first two are done."""
    results, lines = _run(200, 1, _requests((20, 49), (20, 49), (20, 49)))
    by_id = {r["id"]: r for r in results}
    assert all(r["ok"] for r in results)
    ends = sorted(r["end"] for r in results)
    for k, end in enumerate(ends, start=1):
        assert k * 0.25 <= end <= k * 0.25 + LATE_S
    admitted = [line["id"] for line in sorted(lines, key=lambda e: e["admitted"])]
    assert sorted(line["queued_ahead"] for line in lines) == [0, 0, 1]   # the second waited for a slot, not a turn
    last = by_id[int(admitted[-1])]
    assert last["ttft"] >= 0.5 + 1.1 / 200


def test_two_slots_serve_two_requests_at_once():
    results, _ = _run(200, 2, _requests((20, 49), (20, 49)))
    assert [0.25 <= r["end"] <= 0.25 + LATE_S for r in results] == [True, True]


def test_malformed_requests_get_400_and_a_log_line_naming_the_peer():
    async def scenario():
        listener, port, log = await _serve(100, 1)
        answers = []
        async with listener:
            for raw in (b"POST /generate HTTP/1.1\r\nContent-Length: 5\r\n\r\nnope!",
                        b'POST /generate HTTP/1.1\r\nContent-Length: 40\r\n\r\n{"prompt_tokens": 0, "output_tokens": 9}'
                        .ljust(len(b"POST /generate HTTP/1.1\r\nContent-Length: 40\r\n\r\n") + 40),
                        b"POST /generate HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n",
                        b"GARBAGE\r\n\r\n", b"GET /health HTTP/1.1\r\n\r\n", b"GET /x HTTP/1.1\r\n\r\n"):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(raw)
                answers.append((await reader.read()).split(b"\r\n")[0])
                writer.close()
        return answers, [json.loads(line) for line in log.getvalue().splitlines()]
    answers, lines = asyncio.run(scenario())
    assert answers == [b"HTTP/1.1 400 Bad Request"] * 4 + [b"HTTP/1.1 200 OK", b"HTTP/1.1 404 Not Found"]
    assert [line["status"] for line in lines] == ["bad request"] * 4
    assert all(line["peer"].startswith("127.0.0.1:") for line in lines)
    assert "output_tokens" not in lines[1]["error"] and "prompt_tokens" in lines[1]["error"]


def test_a_request_to_a_closed_port_fails_without_times():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = asyncio.run(fetch(Request(0, 0, "c1", 5, 5), "127.0.0.1", port, time.time(), time.time() + 5))
    assert (result["ok"], result["ttft"], result["end"], result["member"]) == (False, None, None, None)
    assert "ConnectionRefusedError" in result["error"]


def test_a_request_still_running_at_the_bound_is_cut():
    async def scenario():
        listener, port, _ = await _serve(10, 1)
        async with listener:
            return await fetch(Request(0, 0, "c1", 5, 100), "127.0.0.1", port, time.time(), time.time() + 0.5)
    result = asyncio.run(scenario())
    assert (result["ok"], result["error"], result["member"]) == (False, "cut at the run's end", "m9")
    assert 0 < result["tokens"] < 100


# -- the capture -----------------------------------------------------------------------------------
def _frame(flags: int, dport: int = 8000, src: str = "10.0.0.1", proto: int = 6) -> bytes:
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 0, 0, 64, proto, 0, socket.inet_aton(src),
                     socket.inet_aton("10.0.0.13"))
    tcp = struct.pack("!HHIIBBHHH", 40000, dport, 0, 0, 0x50, flags, 1024, 0, 0)
    return b"\x00" * 12 + b"\x08\x00" + ip + tcp


def test_the_capture_counts_syns_only():
    assert syn_of(_frame(0x02)) == ("10.0.0.1", 8000)
    assert syn_of(_frame(0x12)) is None                        # SYN-ACK
    assert syn_of(_frame(0x10)) is None                        # ACK
    assert syn_of(_frame(0x02, proto=17)) is None              # UDP
    assert syn_of(_frame(0x02)[:40]) is None                   # cut short
    assert syn_of(b"\x00" * 12 + b"\x86\xdd" + _frame(0x02)[14:]) is None   # not IPv4
