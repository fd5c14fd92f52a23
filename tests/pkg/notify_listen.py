#!/usr/bin/python3
"""tests/pkg/notify_listen.py SOCKET LOG: stands in for systemd's
notification socket. Binds the datagram socket SOCKET (mode 0777, as
systemd's own is, so that the service's user can send to it) and appends
each message to LOG as one line, with the sender's pid: "PID READY=1"
(line breaks inside a message become "|"). Runs until killed."""

import os
import socket
import struct
import sys

path, log = sys.argv[1], sys.argv[2]
try:
    os.unlink(path)
except FileNotFoundError:
    pass
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o777)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
with open(log, "a") as out:
    out.write("listening\n")
    out.flush()
    while True:
        data, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
        pid = 0
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", payload[:12])[0]
        out.write("%d %s\n" % (pid, data.decode("utf-8", "replace").replace("\n", "|")))
        out.flush()
