"""Unit tests get a Balancer booted on the H1-H7 spec (tests/fakeof.py)."""

from __future__ import annotations

import pytest

from tests.fakeof import Booted


@pytest.fixture
def booted() -> Booted:
    return Booted()
