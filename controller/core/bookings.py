"""Load that placements have booked on links and the statistics have not measured yet.

Features change only when statistics arrive, once per poll: without bookings every flow that
starts within one poll sees the same numbers and takes the same path (20 new h1 to h7 flows
went 20 of 20 onto one path under least-loaded and under BPANN). Each placement books its
expected rate on every link of its path until a poll has measured the flow (its first rate
over a whole window, when the port counters carry it too) or the booking is older than the
statistics it stands in for. The expected rate is the recent mean of the first measured rates
of earlier flows of its kind (protocol and destination port: a service), or `prior_bps` for a
kind not measured yet, at most what the source host's link has left (`limit_bps`): a host
starting flows to a thousand ports books no more than it could send.

A link is a port and a direction: (port, True) for what the port sends, (port, False) for
what it receives (a host's traffic into its switch).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

from controller.core.discovery import End

MAX_KINDS = 1024        # kinds remembered, least recently measured forgotten first
MEAN_WEIGHT = 0.3       # of the newest measurement in a kind's mean

LinkKey = tuple[End, bool]
Kind = tuple[int, int | None]     # (IP protocol, destination port)


class Booking(NamedTuple):
    links: tuple[LinkKey, ...]
    bps: float
    at: float


class Bookings:
    def __init__(self, prior_bps: float) -> None:
        self.prior_bps = prior_bps
        self._by_cookie: dict[int, Booking] = {}
        self._on: dict[LinkKey, float] = {}
        self._kinds: OrderedDict[Kind, float] = OrderedDict()
        self.version = 0      # changes with every booking and release: features depend on them

    def expected_bps(self, kind: Kind) -> float:
        return self._kinds.get(kind, self.prior_bps)

    def book(self, cookie: int, kind: Kind, links: tuple[LinkKey, ...], now: float, limit_bps: float) -> None:
        self.release(cookie)
        bps = max(0.0, min(self.expected_bps(kind), limit_bps))
        self._by_cookie[cookie] = Booking(links, bps, now)
        if bps > 0:
            for link in links:
                self._on[link] = self._on.get(link, 0.0) + bps
            self.version += 1

    def measured(self, cookie: int, kind: Kind, bps: float) -> None:
        """A poll measured a flow: if this is its first rate (it is booked), its kind's mean
        learns it and its booking ends. Later rates teach nothing: an idle entry reports 0
        until it expires, and ten such polls took a 4 Mbit/s service's mean to 0.11."""
        if cookie not in self._by_cookie:
            return
        mean = self._kinds.pop(kind, None)
        self._kinds[kind] = bps if mean is None else mean + MEAN_WEIGHT * (bps - mean)
        if len(self._kinds) > MAX_KINDS:
            self._kinds.popitem(last=False)
        self.release(cookie)

    def release(self, cookie: int) -> None:
        booking = self._by_cookie.pop(cookie, None)
        if booking is None or booking.bps <= 0:
            return
        for link in booking.links:
            left = self._on[link] - booking.bps
            if left > 1e-6:
                self._on[link] = left
            else:
                del self._on[link]
        self.version += 1

    def expire(self, now: float, max_age_s: float) -> None:
        while self._by_cookie:      # oldest first: book() appends
            cookie, booking = next(iter(self._by_cookie.items()))
            if now - booking.at <= max_age_s:
                return
            self.release(cookie)

    def __contains__(self, cookie: int) -> bool:
        return cookie in self._by_cookie

    def of(self, cookie: int) -> float:
        """Bits per second a flow has booked (0 once measured)."""
        booking = self._by_cookie.get(cookie)
        return booking.bps if booking else 0.0

    def on(self, link: LinkKey) -> float:
        """Bits per second booked on a link."""
        return self._on.get(link, 0.0)

    def __len__(self) -> int:
        return len(self._by_cookie)
