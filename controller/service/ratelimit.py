"""A logging filter that keeps a flood out of the log: a host starting 20,000 flows in ten
seconds, or sending spoofed frames all day, must not write a line for each. Each message
template (a call site, not its arguments) passes `burst` times per `period_s`; the first
line of the next period says how many were held back."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

MAX_TEMPLATES = 1024    # a caller logging pre-formatted text makes a template per line


class RateLimit(logging.Filter):
    def __init__(self, burst: int = 20, period_s: float = 10.0, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.burst, self.period_s, self.clock = burst, period_s, clock
        self._windows: dict[tuple[str, object], list] = {}   # template -> [start, passed, held back]

    def filter(self, record: logging.LogRecord) -> bool:
        now = self.clock()
        key = (record.name, record.msg)
        window = self._windows.get(key)
        if window is None or now - window[0] >= self.period_s:
            held = window[2] if window else 0
            if window is None and len(self._windows) >= MAX_TEMPLATES:
                self._windows = {k: w for k, w in self._windows.items() if now - w[0] < self.period_s}
                if len(self._windows) >= MAX_TEMPLATES:
                    self._windows.clear()
            window = self._windows[key] = [now, 0, 0]
            if held:
                record.msg, record.args = f"{record.getMessage()} ({held} more like this held back)", ()
        if window[1] >= self.burst:
            window[2] += 1
            return False
        window[1] += 1
        return True
