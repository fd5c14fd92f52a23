"""Black-box test harness for lockd: starts real `lockd` processes on random
loopback ports with a private data directory, talks HTTP to them, and always
kills every process it started (the whole process group) at teardown.

Binary: $LOCKD_BIN (default /work/main/build/lockd).
Run:    /usr/bin/python3 -m pytest tests/blackbox

Fixtures:
  node          a fresh single node (LMDB store, 2 workers) for one test
  node_factory  node_factory(store=, workers=, extra_args=, argv=, port=, ...)
  shared_node   one node per test module, for tests that only validate input
                and use names of their own (never stopped by a test)
On a failure, the log tail of every node alive in that test is attached to
the report.
"""

import os
import signal
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
pytest.register_assert_rewrite("lockd_helpers")

from lockd_helpers import LIVE_NODES, LOCKD_BIN, LockdNode  # noqa: E402

# Hard cap per test (setup + call + teardown): a hang must fail, not stall CI.
TEST_HARD_TIMEOUT_S = 60


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
    if rep.failed and rep.when in ("setup", "call"):
        for n in list(LIVE_NODES):
            rep.sections.append(("lockd log: " + n.name, n.log_tail(80)))


def _alarm(signum, frame):
    raise TimeoutError("test exceeded the %d s hard limit" % TEST_HARD_TIMEOUT_S)


@pytest.fixture(autouse=True)
def _hard_timeout():
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(TEST_HARD_TIMEOUT_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="session")
def lockd_bin():
    if not os.access(LOCKD_BIN, os.X_OK):
        pytest.fail("lockd binary not found or not executable: %s (set LOCKD_BIN)" % LOCKD_BIN)
    return LOCKD_BIN


class _Factory:
    def __init__(self, lockd_bin, base_dir):
        self.lockd_bin = lockd_bin
        self.base_dir = base_dir
        self.nodes = []

    def __call__(self, store="lmdb", workers=2, extra_args=(), data_dir=None, start=True,
                 name=None, **kw):
        name = name or "node%d" % (len(self.nodes) + 1)
        if data_dir is None:
            data_dir = os.path.join(str(self.base_dir), name + "-data")
        n = LockdNode(self.lockd_bin, self.base_dir, name=name, data_dir=data_dir,
                      store=store, workers=workers, extra_args=list(extra_args), **kw)
        self.nodes.append(n)
        LIVE_NODES.append(n)
        if start:
            n.start()
            n.wait_ready()
        return n

    def cleanup(self):
        for n in self.nodes:
            try:
                n.cleanup()
            finally:
                if n in LIVE_NODES:
                    LIVE_NODES.remove(n)


@pytest.fixture
def node_factory(lockd_bin, tmp_path):
    f = _Factory(lockd_bin, tmp_path)
    try:
        yield f
    finally:
        f.cleanup()


@pytest.fixture
def node(node_factory):
    """A fresh single node: LMDB store, 2 workers, its own data dir."""
    return node_factory()


@pytest.fixture(scope="module")
def shared_node(lockd_bin, tmp_path_factory):
    f = _Factory(lockd_bin, tmp_path_factory.mktemp("shared"))
    try:
        n = f(name="shared")
        yield n
    finally:
        f.cleanup()
