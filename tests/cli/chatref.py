#!/usr/bin/env python3
"""chatref.py SOCKET PARAMS_JSON ROLE:CONTENT... — the oracle for cli-chat.bats.

Submits the given chat messages (as the protocol's msgs, the way `plot chat`
must) with the extra submit fields of PARAMS_JSON, waits for the result and
writes its bytes to stdout unchanged. Roles are user, assistant or system;
CONTENT may be @FILE to read it from a file (answers may hold newlines).
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rawclient  # noqa: E402


def message(arg):
    role, _, content = arg.partition(":")
    if content.startswith("@"):
        with open(content[1:], "rb") as f:
            content = f.read().decode("utf-8", "surrogateescape")
    return {"role": role, "content": content}


def main(argv):
    c = rawclient.Conn(argv[0])
    c.hello()
    fields = json.loads(argv[1])
    fields["msgs"] = [message(a) for a in argv[2:]]
    r = c.call("submit", **fields)
    if r["t"] != "ok":
        print(json.dumps(r), file=sys.stderr)
        return 1
    r = c.call("result", task=r["task"], wait=True)
    if r["t"] != "ok" or r.get("state") not in (2, "done"):
        print(json.dumps(r, default=repr), file=sys.stderr)
        return 1
    sys.stdout.buffer.write(r["data"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
