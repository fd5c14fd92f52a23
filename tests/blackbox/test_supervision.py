"""Supervision (issue 5, item 5): a crashing child leaves its stack trace in
the log and is restarted, and nothing acknowledged is lost."""
import os
import signal

from lockd_helpers import wait_until


def _log(node):
    with open(node.log_path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def test_worker_crash_logs_a_stack_trace_and_is_restarted(node):
    old = node.workers_by_index()[1]
    os.kill(old, signal.SIGSEGV)
    assert wait_until(lambda: node.workers_by_index().get(1) not in (None, old), 10), \
        "worker 1 was not restarted"
    log = _log(node)
    assert "FATAL" in log and "stack trace" in log, log[-3000:]
    assert "worker 1" in log and "signal 11" in log, log[-3000:]
    assert node.request("POST", "/lock/after-crash").status == 200


def test_raft_crash_logs_a_stack_trace_and_nothing_acknowledged_is_lost(node):
    assert node.request("POST", "/lock/before-crash").status == 200
    old = node.raft_pid()
    os.kill(old, signal.SIGABRT)
    assert wait_until(lambda: node.raft_pid() not in (None, old), 10), "raft process not restarted"
    assert wait_until(lambda: node.request("GET", "/readyz").status == 200, 10)
    assert node.request("GET", "/lock/before-crash").status == 200
    log = _log(node)
    assert "FATAL [raft]" in log and "signal 6" in log, log[-3000:]


def test_access_log_is_off_by_default_and_one_line_per_request_when_on(node_factory):
    quiet = node_factory(name="quiet")
    quiet.request("GET", "/lock/nobody")
    assert " access " not in _log(quiet)
    loud = node_factory(name="loud", extra_args=["--access-log"])
    loud.request("GET", "/lock/nobody")
    loud.request("POST", "/lock/somebody")
    log = _log(loud)
    assert "access 127.0.0.1 GET /lock/nobody 404" in log, log[-2000:]
    assert "access 127.0.0.1 POST /lock/somebody 200" in log, log[-2000:]
