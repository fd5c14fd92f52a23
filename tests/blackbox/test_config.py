"""lockd --config FILE through real processes: the file's keys take effect,
the command line overrides them, bad files refuse to start with FILE:LINE,
SIGHUP re-reads the reloadable keys (log-level, access-log, server-header)
and leaves the running configuration alone when the file is broken; plus
--server-header, --admin-group, --version, and the service manager's
readiness datagrams (READY=1 / STOPPING=1 on $NOTIFY_SOCKET)."""

import grp
import os
import signal
import socket
import stat
import struct
import subprocess
import time
import uuid

import pytest

from lockd_helpers import LOCKCTL_BIN, expect, free_port_pair, run_lockctl, wait_until


def write(path, text):
    with open(str(path), "w") as f:
        f.write(text)
    return str(path)


def run_exit(lockd_bin, args, cwd, timeout=10):
    """Runs lockd expecting it to exit by itself: (rc, stdout, stderr)."""
    p = subprocess.run([lockd_bin] + list(args), cwd=str(cwd), stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def config_node(node_factory, tmp_path, text, extra=(), name="cfg", start=True):
    """A node whose --listen, --data-dir and the given keys come from a
    config file (text is appended to them); extra goes on the command line."""
    port = free_port_pair()
    data = tmp_path / (name + "-data")
    conf = write(tmp_path / (name + ".conf"),
                 "# written by test_config.py\nlisten = 127.0.0.1:%d\ndata-dir = %s\nworkers = 1\n%s"
                 % (port, data, text))
    n = node_factory(argv=["--config", conf] + list(extra), port=port, data_dir=data,
                     name=name, start=start)
    n.conf = conf
    return n


def log_text(node):
    with open(node.log_path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def test_config_file_keys_take_effect_and_command_line_overrides(node_factory, tmp_path):
    n = config_node(node_factory, tmp_path, 'server-header = "from file"\nlog-level = warn\n',
                    extra=["--server-header", "from-cli"])
    r = expect(n, "POST", "/lock/cfg1", 200)
    assert r.headers.get("server") == "from-cli", r.headers
    # listen and data-dir came from the file
    assert os.path.exists(os.path.join(n.data_dir, "lockd.pid"))
    assert os.path.exists(os.path.join(n.data_dir, "lockd.sock"))
    rc, out, err = run_lockctl(["--json", "status"], node=n)
    assert rc == 0, err
    assert '"log_level":"warn"' in out.replace(" ", ""), out
    n.stop()


@pytest.mark.parametrize("text,line,needle", [
    ("workers = 1\nfrobnicate = yes\n", 2, 'unknown key "frobnicate"'),
    ("\n\nworkers = lots\n", 3, 'workers: "lots" is not a non-negative integer'),
    ("log-level = chatty\n", 1, 'log-level: "chatty" is not debug, info, warn or error'),
    ("api-timeout = 5 s\n", 1, 'api-timeout: "5 s" is not a duration'),
    ("listen 127.0.0.1:1\n", 1, "expected key = value"),
    ("store = lmdb\nstore = memory\n", 2, "store is already set on line 1"),
])
def test_bad_config_file_exits_2_naming_file_and_line(lockd_bin, tmp_path, text, line, needle):
    conf = write(tmp_path / "bad.conf", text)
    rc, out, err = run_exit(lockd_bin, ["--config", conf], tmp_path)
    assert rc == 2, (rc, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("lockd: %s:%d: " % (conf, line)), err
    assert needle in lines[0], err
    assert not os.path.exists(tmp_path / "lockd-data"), "nothing may be created"


def test_missing_config_file_exits_2(lockd_bin, tmp_path):
    rc, out, err = run_exit(lockd_bin, ["--config", str(tmp_path / "nope.conf")], tmp_path)
    assert rc == 2, (rc, out, err)
    assert "cannot read config file %s: No such file or directory" % (tmp_path / "nope.conf") in err


def access_lines(node, path):
    return [l for l in log_text(node).splitlines() if " access " in l and path in l]


def test_sighup_applies_reloadable_keys_and_reports_the_others(node_factory, tmp_path):
    n = config_node(node_factory, tmp_path, "server-header = one\naccess-log = false\n")
    quiet = "/lock/quiet-" + uuid.uuid4().hex[:8]
    assert expect(n, "GET", quiet, 404).headers.get("server") == "one"
    rc, out, _ = run_lockctl(["status"], node=n)
    assert rc == 0 and "info" in out, out

    with open(n.conf) as f:
        text = f.read()
    text = text.replace("server-header = one", "server-header = two")
    text = text.replace("access-log = false", "access-log = true")
    text = text.replace("workers = 1", "workers = 2") + "log-level = debug\n"
    write(n.conf, text)
    old_workers = n.worker_pids()
    os.kill(n.pid, signal.SIGHUP)

    def reloaded():
        r = n.request("GET", "/lock/probe")
        return r.headers.get("server") == "two" and not set(n.worker_pids()) & set(old_workers)
    assert wait_until(reloaded, 20), n.log_tail()
    loud = "/lock/loud-" + uuid.uuid4().hex[:8]
    expect(n, "GET", loud, 404)
    assert wait_until(lambda: access_lines(n, loud), 10), n.log_tail()
    assert not access_lines(n, quiet), "access-log was off before the reload"
    rc, out, _ = run_lockctl(["--json", "status"], node=n)
    assert '"log_level":"debug"' in out.replace(" ", ""), out
    log = log_text(n)
    assert "reload: log-level debug" in log
    assert "reload: workers changed in %s: it takes effect at the next start" % n.conf in log
    assert len(n.worker_pids()) == 1, "workers is not reloaded"
    n.stop()


def test_sighup_with_a_broken_file_keeps_the_running_configuration(node_factory, tmp_path):
    n = config_node(node_factory, tmp_path, "server-header = kept\n")
    good = open(n.conf).read()
    write(n.conf, good + "no-such-key = 1\n")
    old_workers = n.worker_pids()
    os.kill(n.pid, signal.SIGHUP)
    want = "reload: %s:" % n.conf
    assert wait_until(lambda: want in log_text(n) and "unknown key" in log_text(n), 10), n.log_tail()
    assert "configuration unchanged" in log_text(n)
    # the workers are still replaced (as a reload always does), with the old values
    assert wait_until(lambda: not set(n.worker_pids()) & set(old_workers), 20), n.log_tail()
    assert expect(n, "POST", "/lock/still", 200).headers.get("server") == "kept"
    n.stop()


def test_server_header_off_sends_no_server_header(node_factory):
    n = node_factory(workers=1, extra_args=["--server-header", "off"])
    for method, path, status in (("GET", "/healthz", 200), ("POST", "/lock/s", 200),
                                 ("GET", "/lock/nope", 404), ("GET", "/nowhere", 404)):
        r = expect(n, method, path, status)
        assert "server" not in r.headers, (path, r.headers)
    n.stop()


def test_default_server_header_names_lockd_and_its_version(node, lockd_bin, tmp_path):
    version = run_exit(lockd_bin, ["--version"], tmp_path)[1].split()[1]
    assert expect(node, "GET", "/healthz", 200).headers.get("server") == "lockd/" + version


def test_admin_group_makes_the_socket_0660_with_that_group(node_factory):
    try:
        gid = grp.getgrnam("nogroup").gr_gid
        name = "nogroup"
    except KeyError:
        gid, name = os.getgid(), grp.getgrgid(os.getgid()).gr_name
    n = node_factory(workers=1, extra_args=["--admin-group", name])
    st = os.stat(os.path.join(n.data_dir, "lockd.sock"))
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o660, oct(st.st_mode)
    assert st.st_gid == gid
    assert run_lockctl(["status"], node=n)[0] == 0
    n.stop()


def test_admin_socket_is_0600_without_admin_group(node):
    st = os.stat(os.path.join(node.data_dir, "lockd.sock"))
    assert stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)


def test_unknown_admin_group_exits_2(lockd_bin, tmp_path):
    rc, _, err = run_exit(lockd_bin, ["--admin-group", "no-such-group-lockd"], tmp_path)
    assert rc == 2
    assert 'option --admin-group: no group "no-such-group-lockd"' in err


def test_lockd_and_lockctl_print_the_same_version_and_libraries(lockd_bin, tmp_path):
    rc, out, _ = run_exit(lockd_bin, ["--version"], tmp_path)
    assert rc == 0
    p = subprocess.run([LOCKCTL_BIN, "--version"], stdout=subprocess.PIPE, timeout=10)
    assert p.returncode == 0
    mine, theirs = out.splitlines(), p.stdout.decode().splitlines()
    assert len(mine) == 2 and mine[0].startswith("lockd "), out
    assert theirs[0] == mine[0].replace("lockd ", "lockctl ", 1)
    assert theirs[1] == mine[1]
    for lib in ("h2o ", "libuv ", "LMDB ", "protobuf-c ", "raft ", "OpenSSL "):
        assert lib in mine[1], mine[1]
    assert "raft unknown" not in mine[1]


class NotifySocket:
    """A datagram socket standing in for the service manager, which reads
    each message with the sender's credentials (SO_PASSCRED)."""

    def __init__(self, path):
        self.path = str(path)
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.s.bind(self.path)
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)

    def receive(self, timeout):
        """(message, sender pid), or (None, None) after timeout seconds."""
        self.s.settimeout(timeout)
        try:
            data, anc, _, _ = self.s.recvmsg(4096, socket.CMSG_SPACE(12))
        except socket.timeout:
            return None, None
        pid = None
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", payload[:12])[0]
        return data.decode(), pid

    def wait_for(self, prefix, timeout):
        """Every message received until one starts with prefix (inclusive)."""
        got, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg, pid = self.receive(max(0.05, deadline - time.monotonic()))
            if msg is None:
                break
            got.append((msg, pid))
            if msg.startswith(prefix):
                return got
        raise AssertionError("no %r within %.0f s; got %r" % (prefix, timeout, got))

    def close(self):
        self.s.close()


def test_ready_only_once_serving_and_stopping_on_sigterm(node_factory, tmp_path, monkeypatch):
    ns = NotifySocket(tmp_path / "notify.sock")
    monkeypatch.setenv("NOTIFY_SOCKET", ns.path)
    try:
        n = node_factory(workers=1, start=False)
        n.start()
        got = ns.wait_for("READY=1", 30)
        # ready means serving: /readyz agrees at once, and a write commits
        assert n.request("GET", "/readyz").status == 200
        expect(n, "POST", "/lock/notified", 200)
        assert all(pid == n.pid for _, pid in got), "only the main process may notify: %r" % got
        assert all(m.startswith("STATUS=starting: ") for m, _ in got[:-1]), got
        assert got[-1][0] == "READY=1\nSTATUS=serving (leader 1)", got
        os.kill(n.pid, signal.SIGTERM)
        assert ns.wait_for("STOPPING=1", 20)[-1] == ("STOPPING=1", n.pid)
        assert n.proc.wait(30) == 0
        n.stop()
        # READY=1 was sent once: nothing else arrived
        assert ns.receive(0.2)[0] is None
    finally:
        ns.close()

