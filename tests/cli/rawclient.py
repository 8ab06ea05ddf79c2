#!/usr/bin/env python3
"""rawclient.py — a raw protocol client for the plotd bats tests.

It speaks the wire format directly (4-byte big-endian length + one msgpack
map, see man/plot-protocol.7) so tests can send what the real client never
would: garbage, oversized frames, requests before hello, and clients that
never read. Every wait is bounded (--timeout, default 10 s).

Usage: rawclient.py [--uid N] [--timeout S] SOCKET COMMAND [ARGS]

  call TYPE [JSON]       hello, then one request; print the reply as JSON.
                         Exit 0 for ok, 1 for err.
  submit PROMPT [JSON]   submit (extra fields in JSON); print the task id.
  stream TASK            subscribe with follow; print the output bytes, then
                         the end event as JSON on stderr; exit 0 if DONE.
  run PROMPT N [JSON]    submit (not detached; extra fields in JSON),
                         subscribe, read N chunks, then disconnect without
                         a word.
  multi TASK COPIES      subscribe COPIES times on one connection, read with
                         small reads; print "1 LEN" if every copy is equal.
  noread WORDS COPIES    submit (detached) a prompt of WORDS two-letter words
                         and subscribe COPIES times, never read; print
                         "dropped" once plotd hangs up on us.
  garbage                hello, then a frame whose body is not msgpack.
  oversize N             hello, then a length prefix of N bytes.
  nohello                a ping before hello.
  badversion             hello with protocol version 999.
  hello                  hello only; print the reply (also for refusals).
  pipeline N TYPE        hello, then N TYPE requests written back to back
                         while the replies are read; print "N replies in
                         order" when every id came back once, in order.
  streams N              submit N tasks (not detached) and subscribe to each
                         with follow, then disconnect; print the task ids.
  hold N                 open N connections (no hello) and keep them until
                         stdin closes; print "held K" once K are open.
  partial N BYTES        open N connections, each saying hello and then
                         sending all but the last byte of a BYTES frame;
                         print "ready", then wait for plotd to close them
                         and print how many it closed.

For garbage/oversize/nohello/badversion/hello it prints the reply and then
"closed" if plotd closed the connection, or "open".
"""
import json
import os
import select
import socket
import struct
import sys
import time

import msgpack

TIMEOUT = 10.0
STATES = ["queued", "running", "done", "failed", "cancelled", "expired", "timeout"]


def die(msg, code=2):
    print("rawclient: " + msg, file=sys.stderr)
    sys.exit(code)


def frame(obj):
    body = msgpack.packb(obj, use_bin_type=True)
    return struct.pack(">I", len(body)) + body


class Conn:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(TIMEOUT)
        self.s.connect(path)
        self.path = path
        self.buf = b""
        self.next_id = 1

    def send_raw(self, data):
        try:
            self.s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # plotd hung up first; its reply, if any, is still readable

    def send(self, t, **fields):
        rid = self.next_id
        self.next_id += 1
        msg = {"t": t, "id": rid}
        msg.update(fields)
        self.send_raw(frame(msg))
        return rid

    def _fill(self):
        data = self.s.recv(65536)
        if not data:
            raise EOFError
        self.buf += data

    def recv(self):
        while len(self.buf) < 4:
            self._fill()
        (n,) = struct.unpack(">I", self.buf[:4])
        while len(self.buf) < 4 + n:
            self._fill()
        body, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
        return msgpack.unpackb(body, raw=False)

    def call(self, t, **fields):
        rid = self.send(t, **fields)
        while True:
            m = self.recv()
            if m.get("id") == rid and m.get("t") in ("ok", "err"):
                return m

    def hello(self):
        r = self.call("hello", v=1, agent="rawclient")
        if r.get("t") != "ok":
            print(json.dumps(r))
            sys.exit(1)
        return r

    def closed_by_peer(self):
        """Wait (bounded) for EOF after the replies we expect."""
        try:
            while True:
                self.recv()
        except EOFError:
            return True
        except (socket.timeout, ConnectionResetError):
            return False


def show(m):
    out = {}
    for k, v in m.items():
        out[k] = v.decode("utf-8", "replace") if isinstance(v, bytes) else v
    print(json.dumps(out, sort_keys=True))


def reply_then_state(c):
    try:
        show(c.recv())
    except EOFError:
        print("closed")
        return
    print("closed" if c.closed_by_peer() else "open")


def cmd_call(c, args):
    c.hello()
    fields = json.loads(args[1]) if len(args) > 1 else {}
    r = c.call(args[0], **fields)
    show(r)
    return 0 if r["t"] == "ok" else 1


def cmd_submit(c, args):
    c.hello()
    fields = {"prompt": args[0]}
    if len(args) > 1:
        fields.update(json.loads(args[1]))
    r = c.call("submit", **fields)
    if r["t"] != "ok":
        show(r)
        return 1
    print(r["task"])
    return 0


def cmd_stream(c, args):
    c.hello()
    r = c.call("subscribe", task=int(args[0]), follow=True)
    if r["t"] != "ok":
        show(r)
        return 1
    while True:
        m = c.recv()
        if m["t"] == "chunk":
            sys.stdout.buffer.write(m["data"])
        elif m["t"] == "end":
            sys.stdout.flush()
            print(json.dumps({"state": STATES[m["state"]], "error": m.get("error")}),
                  file=sys.stderr)
            return 0 if m["state"] == 2 else 1


def cmd_run(c, args):
    c.hello()
    fields = {"prompt": args[0]}
    if len(args) > 2:
        fields.update(json.loads(args[2]))
    r = c.call("submit", **fields)
    task = r["task"]
    c.call("subscribe", task=task, follow=True)
    got = 0
    while got < int(args[1]):
        m = c.recv()
        if m["t"] == "chunk":
            got += 1
    print(task)
    c.s.close()  # vanish: plotd must cancel the task
    return 0


def cmd_multi(c, args):
    """Subscribe COPIES times on one connection and read with a small
    buffer; print each stream's length and whether all copies agree."""
    c.hello()
    c.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    task, copies = int(args[0]), int(args[1])
    out, ended = {}, 0
    for _ in range(copies):
        out[c.send("subscribe", task=task, follow=True)] = []
    while ended < copies:
        while len(c.buf) < 4 or len(c.buf) < 4 + struct.unpack(">I", c.buf[:4])[0]:
            data = c.s.recv(1024)
            if not data:
                raise EOFError
            c.buf += data
        m = c.recv()
        if m["t"] == "chunk":
            out[m["id"]].append(m["data"])
        elif m["t"] == "end":
            ended += 1
    streams = {b"".join(v) for v in out.values()}
    print(len(streams), max(len(x) for x in streams))
    return 0 if len(streams) == 1 else 1


def cmd_noread(c, args):
    c.hello()
    c.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    r = c.call("submit", prompt="ab " * int(args[0]), detach=True)
    task = r["task"]
    print(task, flush=True)
    for _ in range(int(args[1])):
        c.send("subscribe", task=task, follow=True)
    # Never read again; wait (bounded) for plotd to hang up on us.
    p = select.poll()
    p.register(c.s, select.POLLHUP | select.POLLRDHUP)
    end = time.monotonic() + TIMEOUT
    while time.monotonic() < end:
        for _, ev in p.poll(100):
            if ev & (select.POLLHUP | select.POLLRDHUP):
                print("dropped")
                return 0
    print("not dropped")
    return 1


def cmd_garbage(c, args):
    c.hello()
    c.send_raw(struct.pack(">I", 8) + b"\xc1\xc1\xc1\xc1\xc1\xc1\xc1\xc1")
    reply_then_state(c)
    return 0


def cmd_oversize(c, args):
    c.hello()
    c.send_raw(struct.pack(">I", int(args[0])) + b"\x80" * 16)
    reply_then_state(c)
    return 0


def cmd_nohello(c, args):
    c.send("ping")
    reply_then_state(c)
    return 0


def cmd_badversion(c, args):
    c.send("hello", v=999, agent="rawclient")
    reply_then_state(c)
    return 0


def cmd_hello(c, args):
    c.send("hello", v=1, agent="rawclient")
    reply_then_state(c)
    return 0


def cmd_pipeline(c, args):
    import threading
    n, t = int(args[0]), args[1]
    c.hello()
    first = c.next_id
    body = b"".join(frame({"t": t, "id": first + i}) for i in range(n))
    c.next_id += n
    w = threading.Thread(target=c.send_raw, args=(body,))
    w.start()
    for i in range(n):
        m = c.recv()
        if m.get("id") != first + i or m.get("t") != "ok":
            print("reply %d: %s" % (i, json.dumps(m, default=str)[:200]))
            return 1
    w.join()
    print("%d replies in order" % n)
    return 0


def cmd_streams(c, args):
    n = int(args[0])
    c.hello()
    tasks = []
    for _ in range(n):
        r = c.call("submit", prompt="w " * 2000)
        if r.get("t") != "ok":
            show(r)
            return 1
        tasks.append(r["task"])
    for task in tasks:
        r = c.call("subscribe", task=task, follow=True)
        if r.get("t") != "ok":
            show(r)
            return 1
    print(" ".join(str(t) for t in tasks))
    c.s.close()
    return 0


def cmd_hold(c, args):
    conns = [c]
    for _ in range(int(args[0]) - 1):
        try:
            conns.append(Conn(c.path))
        except OSError:
            break
    print("held %d" % len(conns), flush=True)
    sys.stdin.read()
    return 0


def cmd_partial(c, args):
    n, size = int(args[0]), int(args[1])
    conns = []
    for _ in range(n):
        k = Conn(c.path)
        k.hello()
        k.send_raw(struct.pack(">I", size) + b"\x80" * (size - 1))
        conns.append(k)
    print("ready", flush=True)
    closed = 0
    for k in conns:
        try:
            while True:
                k.recv()
        except EOFError:
            closed += 1
        except (socket.timeout, ConnectionResetError):
            pass
    print("%d closed" % closed)
    return 0


COMMANDS = {
    "call": cmd_call, "submit": cmd_submit, "stream": cmd_stream, "run": cmd_run,
    "noread": cmd_noread, "multi": cmd_multi, "garbage": cmd_garbage, "oversize": cmd_oversize,
    "nohello": cmd_nohello, "badversion": cmd_badversion, "hello": cmd_hello,
    "pipeline": cmd_pipeline, "hold": cmd_hold, "streams": cmd_streams, "partial": cmd_partial,
}


def main(argv):
    global TIMEOUT
    uid = None
    while argv and argv[0].startswith("--"):
        if argv[0] == "--uid":
            uid = int(argv[1])
        elif argv[0] == "--timeout":
            TIMEOUT = float(argv[1])
        else:
            die("unknown option " + argv[0])
        argv = argv[2:]
    if len(argv) < 2 or argv[1] not in COMMANDS:
        die(__doc__.split("\n\n")[2])
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    c = Conn(argv[0])
    return COMMANDS[argv[1]](c, argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
