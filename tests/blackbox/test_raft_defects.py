"""Regression tests for the guards around libraft 0.15's known defects
(see docs/ARCHITECTURE.md, Durability):
  1. raft_close with applies in flight double-frees  -> close drains first;
  2. raft_close from an apply callback trips libuv    -> close only from a timer;
  3. a peer closing its connection raises SIGPIPE     -> ignored.
Plus the entry-padding bug we found ourselves: unpadded entries corrupted
the segment files at the next restart."""
import os
import signal
import threading
import time

from lockd_helpers import wait_until


def _hammer(node, stop, acked, prefix):
    """POSTs unique names until stop is set; records the acknowledged ones."""
    i = 0
    conn = None
    while not stop.is_set():
        i += 1
        name = "%s-%d" % (prefix, i)
        try:
            r = node.request("POST", "/lock/" + name, timeout=5)
        except OSError:
            time.sleep(0.01)
            continue
        if r.status == 200:
            acked.append(name)


def _raft_exit_lines(node):
    with open(node.log_path, "rb") as f:
        log = f.read().decode("utf-8", "replace")
    return [l for l in log.splitlines() if "[master] raft" in l and ("exited" in l or "killed" in l)]


def test_sigterm_of_raft_process_under_write_load_exits_cleanly_and_keeps_acks(node):
    stop = threading.Event()
    acked = []
    threads = [threading.Thread(target=_hammer, args=(node, stop, acked, "t%d" % k)) for k in range(8)]
    for t in threads:
        t.start()
    try:
        assert wait_until(lambda: len(acked) > 200, 20), "no write load"
        old = node.raft_pid()
        os.kill(old, signal.SIGTERM)  # applies are in flight right now
        assert wait_until(lambda: node.raft_pid() not in (None, old), 15), "raft process not restarted"
        n_before = len(acked)
        assert wait_until(lambda: len(acked) > n_before + 50, 20), "writes did not resume"
    finally:
        stop.set()
        for t in threads:
            t.join()
    # The old process ended by itself (exit status), never by a signal such
    # as SIGABRT/SIGSEGV from a double free.
    lines = _raft_exit_lines(node)
    assert lines and "exited with status" in lines[0], lines
    assert "signal" not in lines[0], lines
    for name in acked[:: max(1, len(acked) // 300)]:
        r = node.request("GET", "/lock/" + name)
        assert r.status == 200, (name, r)


def test_restart_after_many_batched_entries_loads_the_log(node_factory):
    """Entries of every size (batches of 1..N commands) must survive a full
    restart: the segment files are read back with the library's layout."""
    node = node_factory()
    stop = threading.Event()
    acked = []
    threads = [threading.Thread(target=_hammer, args=(node, stop, acked, "b%d" % k)) for k in range(16)]
    for t in threads:
        t.start()
    try:
        assert wait_until(lambda: len(acked) > 500, 20)
    finally:
        stop.set()
        for t in threads:
            t.join()
    # kill -9: LMDB keeps what it applied; the raft log must load anyway.
    node.kill9()
    node.start()
    node.wait_ready()
    for name in acked[:: max(1, len(acked) // 300)]:
        assert node.request("GET", "/lock/" + name).status == 200, name
    r = node.request("POST", "/lock/after-restart")
    assert r.status == 200, r
    assert r.body["token"] > len(acked) - 1
    with open(node.log_path, "rb") as f:
        assert b"raft start failed" not in f.read()
