#!/usr/bin/env python3
"""plantsock.py — an attacker's socket for tests/cli/cli-trust.bats.

Usage: plantsock.py SOCKET OUT READY

Listens on SOCKET (creating its directory, mode 0755, if missing) as
whoever runs it, touches READY once listening, then accepts connections
for up to 10 s and appends to OUT the number of bytes each one sent
before it closed (a client that verifies the daemon sends nothing).
"""
import os
import socket
import sys
import time

path, out, ready = sys.argv[1:4]
os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
os.chmod(os.path.dirname(path), 0o755)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
os.chmod(path, 0o777)
s.listen(8)
open(ready, "w").close()
s.settimeout(0.2)
end = time.time() + 10
while time.time() < end:
    try:
        c, _ = s.accept()
    except socket.timeout:
        continue
    c.settimeout(2)
    n = 0
    try:
        while True:
            b = c.recv(65536)
            if not b:
                break
            n += len(b)
    except socket.timeout:
        pass
    c.close()
    with open(out, "a") as f:
        f.write("%d\n" % n)
