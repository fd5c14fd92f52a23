"""Tools of issue 12 that work before lockd reads them (phase 1): the
auth-file line generator and the test PKI the TLS tests use. The tests of
lockd's own security behaviour are in pending_security.py until phase 2
wires the modules in (see its docstring)."""

import hashlib
import os
import re
import subprocess

import pytest

import tlsutil

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOKEN_SCRIPT = os.path.join(ROOT, "scripts", "lockd-token.sh")


def run_token(*args):
    return subprocess.run([TOKEN_SCRIPT] + list(args), capture_output=True, text=True, timeout=30)


def test_token_script_line_holds_the_sha256_of_the_token_it_prints():
    r = run_token("ci-deploy", "lock", "jobs-,deploy-")
    assert r.returncode == 0, r.stderr
    line = r.stdout.strip()
    m = re.fullmatch(r"ci-deploy sha256:([0-9a-f]{64}) lock jobs-,deploy-", line)
    assert m, line
    token = r.stderr.strip().splitlines()[-1]
    assert re.fullmatch(r"lkd_[A-Za-z0-9_-]{43}", token), token
    assert hashlib.sha256(token.encode()).hexdigest() == m.group(1)
    # the token is not in the line that goes into the file
    assert token not in r.stdout


def test_token_script_makes_a_new_token_each_time_and_prefixes_are_optional():
    a, b = run_token("reader", "read"), run_token("reader", "read")
    assert a.returncode == 0 and b.returncode == 0
    assert a.stdout != b.stdout
    assert re.fullmatch(r"reader sha256:[0-9a-f]{64} read\n", a.stdout)


@pytest.mark.parametrize("args", [
    ("bad id", "lock"), ("", "lock"), ("x" * 65, "lock"), ("ok", "write"),
    ("ok", "lock", "jobs/"), ("ok", "lock", "a,,b"), ("ok",),
])
def test_token_script_refuses_what_lockd_would_refuse(args):
    r = run_token(*args)
    assert r.returncode == 2
    assert r.stdout == ""


def test_test_pki_chains_to_its_ca_and_the_rogue_does_not(tmp_path):
    pki = tlsutil.TestPKI(tmp_path / "pki")
    cert, key = pki.client("ops-box", sans=("DNS:client.example",))
    for c in (pki.server_cert, cert):
        r = subprocess.run(["openssl", "verify", "-CAfile", pki.ca, c], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(["openssl", "verify", "-CAfile", pki.ca, pki.rogue_cert], capture_output=True, text=True)
    assert r.returncode != 0
    for k in (pki.server_key, key, pki.rogue_key):
        assert os.stat(k).st_mode & 0o777 == 0o600
