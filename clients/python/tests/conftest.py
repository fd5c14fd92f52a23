"""Fixtures of the Python client suite: one harness per session (real lockd
processes, nginx, fake servers; see clients/testing/harness.py)."""

import os
import signal
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "..", "testing"))

from harness import Harness  # noqa: E402

HARD_TIMEOUT_S = 90


@pytest.fixture(autouse=True)
def _hard_timeout():
    def alarm(signum, frame):
        raise TimeoutError("test exceeded %d s" % HARD_TIMEOUT_S)
    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(HARD_TIMEOUT_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="session")
def harness():
    h = Harness()
    try:
        yield h
    finally:
        h.close()


@pytest.fixture
def fake(harness):
    f = harness.fake()
    yield f
    f.close()


@pytest.fixture(scope="session")
def node_url(harness):
    return harness.node()


@pytest.fixture(scope="session")
def cluster(harness):
    return harness.cluster()
