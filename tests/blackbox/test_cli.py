"""The command line the original lockd accepted (-cluster FILE -id N), its
long forms, -h/--help, and clear errors for bad options or cluster files."""

import json
import os
import re
import signal
import subprocess

import pytest

from lockd_helpers import expect, free_port_pair


def run_cli(lockd_bin, args, cwd, timeout=10):
    """Runs lockd expecting it to exit by itself; returns (rc, out, err).
    Kills the whole process group if it is still running after `timeout`."""
    p = subprocess.Popen([lockd_bin] + list(args), cwd=str(cwd), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        pytest.fail("lockd %r did not exit within %ds (it should refuse to start)\n"
                    "stdout: %r\nstderr: %r" % (args, timeout, out[-2000:], err[-2000:]))
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return p.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def write_cluster(path, obj):
    with open(str(path), "w") as f:
        f.write(obj if isinstance(obj, str) else json.dumps(obj))
    return str(path)


def cluster_node(node_factory, tmp_path, flags, name):
    port = free_port_pair()
    cwd = tmp_path / (name + "-cwd")
    cwd.mkdir()
    cfile = write_cluster(tmp_path / (name + ".json"), {"1": "localhost:%d" % port})
    argv = [flags[0], cfile, flags[1], "1"]
    return node_factory(argv=argv, port=port, host="localhost", cwd=cwd, name=name,
                        data_dir=cwd / "lockd-data")


@pytest.mark.parametrize("flags", [("-cluster", "-id"), ("--cluster", "--id")])
def test_cluster_file_node_listens_on_its_entry_port(node_factory, tmp_path, flags):
    n = cluster_node(node_factory, tmp_path, flags, "c%d" % len(flags[0]))
    r = n.request("GET", "/readyz")
    assert r.status == 200, r
    r = expect(n, "POST", "/lock/foo", 200)
    assert r.body["locked"] is True
    expect(n, "POST", "/lock/foo", 409)
    expect(n, "GET", "/lock/foo", 200)
    expect(n, "DELETE", "/lock/foo", 200)
    expect(n, "DELETE", "/lock/foo", 404)
    n.stop()


def test_responses_carry_leader_id(node_factory, tmp_path):
    n = cluster_node(node_factory, tmp_path, ("-cluster", "-id"), "leaderhdr")
    for method, path, status in (("POST", "/lock/l", 200), ("GET", "/lock/l", 200),
                                 ("POST", "/lock/l", 409), ("DELETE", "/lock/l", 200),
                                 ("GET", "/lock/l", 404), ("GET", "/lock/bad%20", 400)):
        r = expect(n, method, path, status)
        assert r.headers.get("x-lockd-leader", "").strip() == "1", (method, path, r.headers)


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help_exits_0_and_lists_options(lockd_bin, tmp_path, flag):
    rc, out, err = run_cli(lockd_bin, [flag], tmp_path)
    assert rc == 0, (rc, out, err)
    text = out + err
    for opt in ("--cluster", "--id", "--store", "--db", "--workers", "--listen", "--data-dir"):
        assert re.search(re.escape(opt) + r"\b", text), "help does not mention %s:\n%s" % (opt, text)
    assert "-httptest" not in text  # the original's wart, not to be repeated
    # it printed help and exited: nothing was created in the working directory
    assert not os.path.exists(str(tmp_path / "lockd-data")), "-h started a node"


def test_unknown_option_is_a_one_line_error(lockd_bin, tmp_path):
    rc, out, err = run_cli(lockd_bin, ["--no-such-option"], tmp_path)
    assert rc != 0, (rc, out, err)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, "want a one-line error on stderr, got %r" % err
    assert "no-such-option" in lines[0], lines
    rc, out, err = run_cli(lockd_bin, ["--workers"], tmp_path)  # missing value
    assert rc != 0, (rc, out, err)
    assert err.strip(), "no error message for a missing option value"


@pytest.mark.parametrize("content", [
    '{"1": "localhost:2081",',
    "not json at all",
    "",
])
def test_cluster_file_with_invalid_json_is_rejected(lockd_bin, tmp_path, content):
    cfile = write_cluster(tmp_path / "bad.json", content)
    rc, out, err = run_cli(lockd_bin, ["-cluster", cfile, "-id", "1"], tmp_path)
    assert rc != 0, (rc, out, err)
    assert re.search(r"json|pars|syntax|invalid|empty", err, re.I), \
        "error does not name the problem: %r" % err


@pytest.mark.parametrize("content", [
    '["localhost:2081"]',
    '{"1": 2081}',
    '{"one": "localhost:2081"}',
    '{"1": "localhost:notaport"}',
])
def test_cluster_file_with_bad_entries_is_rejected(lockd_bin, tmp_path, content):
    cfile = write_cluster(tmp_path / "bad.json", content)
    rc, out, err = run_cli(lockd_bin, ["-cluster", cfile, "-id", "1"], tmp_path)
    assert rc != 0, (rc, out, err)
    assert err.strip(), "no error message"


def test_cluster_file_unknown_id_is_rejected(lockd_bin, tmp_path):
    port = free_port_pair()
    cfile = write_cluster(tmp_path / "c.json", {"1": "localhost:%d" % port})
    rc, out, err = run_cli(lockd_bin, ["-cluster", cfile, "-id", "777"], tmp_path)
    assert rc != 0, (rc, out, err)
    assert "777" in err, "error does not name the unknown id: %r" % err


def test_missing_cluster_file_is_rejected(lockd_bin, tmp_path):
    missing = str(tmp_path / "nope" / "cluster.json")
    rc, out, err = run_cli(lockd_bin, ["-cluster", missing, "-id", "1"], tmp_path)
    assert rc != 0, (rc, out, err)
    assert "cluster.json" in err, "error does not name the file: %r" % err
