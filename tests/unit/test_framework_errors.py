"""A framework traceback becomes one warning line, is counted, and stays readable at DEBUG."""

from __future__ import annotations

import logging
import sys
import warnings
from collections import Counter

import pytest

with warnings.catch_warnings():      # eventlet >= 0.36 warns at import that it is deprecated
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
    from controller.app import OneLineFrameworkErrors


class Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        self.lines.append(self.format(record))


@pytest.fixture
def debug_lines():
    handler, framework = Records(), logging.getLogger("lb.framework")
    framework.addHandler(handler)
    previous, framework.level = framework.level, logging.DEBUG
    yield handler.lines
    framework.removeHandler(handler)
    framework.setLevel(previous)


def framework_record(**kwargs) -> logging.LogRecord:
    return logging.LogRecord("os_ken.ofproto.ofproto_parser", logging.ERROR, __file__, 1,
                             "Encountered an error while parsing OpenFlow packet from switch.", (), **kwargs)


def test_an_exception_logged_by_the_framework(debug_lines):
    try:
        raise ValueError("bad OXM length")
    except ValueError:
        record = framework_record(exc_info=sys.exc_info())
    counters = Counter()
    assert OneLineFrameworkErrors(counters).filter(record)
    assert (record.levelname, record.exc_info) == ("WARNING", None)
    assert record.getMessage() == "Encountered an error while parsing OpenFlow packet from switch. " \
                                  "ValueError: bad OXM length"
    assert counters["framework_errors"] == 1
    (debug,) = debug_lines
    assert "Traceback (most recent call last)" in debug and 'raise ValueError("bad OXM length")' in debug


def test_a_traceback_in_the_message_text(debug_lines):
    text = "hub: uncaught exception: Traceback (most recent call last):\n  File \"x.py\", line 1\nOSError: [Errno 24]"
    record = logging.LogRecord("ryu.lib.hub", logging.ERROR, __file__, 1, "%s", (text,), None)
    counters = Counter()
    OneLineFrameworkErrors(counters).filter(record)
    assert record.getMessage() == "hub: uncaught exception: OSError: [Errno 24]"
    assert counters["framework_errors"] == 1 and debug_lines == [text]


def test_other_records_pass_untouched(debug_lines):
    counters = Counter()
    for record in (framework_record(exc_info=None),
                   logging.LogRecord("lb.app", logging.ERROR, __file__, 1, "Traceback (most recent call last)", (),
                                     None)):
        message = record.getMessage()
        assert OneLineFrameworkErrors(counters).filter(record) and record.getMessage() == message
    assert counters["framework_errors"] == 0 and debug_lines == []
