"""Process model and shutdown: one master, N workers and one Raft process with
recognisable titles; SIGTERM stops everything and the master exits 0."""

import http.client
import os
import socket
import threading

import pytest

from lockd_helpers import (TITLE_MASTER, TITLE_RAFT, TITLE_WORKER, expect, group_members,
                           read_title, wait_until)


def titles_ok(node, n_workers):
    kids = node.child_pids()
    workers = sorted(int(TITLE_WORKER.match(t).group(1)) for t in kids.values()
                     if TITLE_WORKER.match(t))
    rafts = [p for p, t in kids.items() if TITLE_RAFT.match(t)]
    return (TITLE_MASTER.match(node.title()) is not None
            and workers == list(range(1, n_workers + 1))
            and len(rafts) == 1
            and len(kids) == n_workers + 1)


@pytest.mark.parametrize("workers", [2, 3])
def test_process_titles(node_factory, workers):
    n = node_factory(workers=workers)
    assert wait_until(lambda: titles_ok(n, workers), 5), (
        "want 'lockd: master' with children 'lockd: worker 1..%d' and one 'lockd: raft'; "
        "master %r, children %r" % (workers, n.title(), n.child_pids()))
    # every process of the group is one of those
    members = n.group()
    assert len(members) == workers + 2, members
    for pid, t in members:
        assert t.startswith("lockd: "), (pid, t)


def test_sigterm_exits_0_and_leaves_no_process(node):
    expect(node, "POST", "/lock/x", 200)
    kids = node.child_pids()
    assert len(kids) == 3, kids
    pgid = node.pid
    node.stop()  # asserts exit status 0 within 10 s and an empty process group
    for pid in kids:
        assert not read_title(pid).startswith("lockd:"), "child %d (%s) survived" % (
            pid, read_title(pid))
    # nothing anywhere still carries a lockd title in that group
    assert group_members(pgid, include_zombies=True) == []


def test_sigterm_under_load_exits_0(node):
    stop = threading.Event()

    def hammer(k):
        i = 0
        while not stop.is_set():
            i += 1
            try:
                node.request("POST", "/lock/load%d-%d" % (k, i % 5), timeout=2)
                node.request("DELETE", "/lock/load%d-%d" % (k, i % 5), timeout=2)
            except (OSError, http.client.HTTPException):
                if not node.alive():
                    return
    ts = [threading.Thread(target=hammer, args=(k,), daemon=True) for k in range(8)]
    for t in ts:
        t.start()
    try:
        assert wait_until(lambda: node.request("GET", "/readyz").status == 200, 5)
        node.stop()
    finally:
        stop.set()
        for t in ts:
            t.join(5)


def test_sigterm_not_blocked_by_idle_or_slow_connections(node):
    # an idle keep-alive connection, a connection that sent half a request,
    # and one that sent headers but only part of the body
    keep = node.connection()
    keep.request("GET", "/lock/idle")
    keep.getresponse().read()
    half = socket.create_connection((node.host, node.port))
    half.sendall(b"GET /lock/x HTTP/1.1\r\nHo")
    body = socket.create_connection((node.host, node.port))
    body.sendall(b"POST /lock/y HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
    try:
        node.stop()
    finally:
        keep.close()
        half.close()
        body.close()


def test_restart_after_sigterm_reuses_the_port(node):
    expect(node, "POST", "/lock/r", 200)
    node.restart()
    expect(node, "GET", "/lock/r", 200)
    assert os.path.isdir(node.data_dir)
