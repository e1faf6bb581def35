"""Unit tests get a Balancer booted on the H1-H7 spec (fakes/switches.py)."""

from __future__ import annotations

import pytest

from fakes.switches import Booted


@pytest.fixture
def booted() -> Booted:
    return Booted()
