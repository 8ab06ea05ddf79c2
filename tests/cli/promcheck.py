#!/usr/bin/env python3
"""promcheck.py — a parser check of a Prometheus text exposition (format
0.0.4) on stdin, for the tests (promtool is not installed).

  promcheck.py [NAME{LABELS} ...]

Checks: every sample line parses (name, optional {k="v",...} with escapes,
a float value); every sample belongs to a family declared by a # TYPE line
before it, and a family's lines are contiguous; a summary family has, for
each label set, its quantile samples, exactly one NAME_sum and one
NAME_count (a non-negative integer), and nothing else; a counter, gauge or
untyped family has only samples of its own name. Exit 0 when all hold,
else 1 naming the first fault. Each argument prints that sample's value
(an argument without a sample: "missing"), one per line.
"""
import re
import sys

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)')


def labels_of(text, lineno):
    out, pos = [], 0
    while pos < len(text):
        m = LABEL.match(text, pos)
        if not m:
            sys.exit(f"line {lineno}: bad labels {{{text}}}")
        out.append((m.group(1), m.group(2)))
        pos = m.end()
    return tuple(out)


def family_of(name, types):
    for suffix in ("_sum", "_count"):
        base = name[: -len(suffix)]
        if name.endswith(suffix) and types.get(base) == "summary":
            return base
    return name


def main():
    types, seen_done, current = {}, set(), None
    summaries = {}  # (family, labels without quantile) -> {"q": n, "sum": n, "count": n}
    values = {}
    for lineno, line in enumerate(sys.stdin.read().splitlines(), 1):
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            if name in types:
                sys.exit(f"line {lineno}: a second TYPE for {name}")
            if kind not in ("counter", "gauge", "summary", "histogram", "untyped"):
                sys.exit(f"line {lineno}: unknown type {kind}")
            types[name] = kind
            continue
        if line.startswith("#") or not line.strip():
            continue
        m = SAMPLE.match(line)
        if not m:
            sys.exit(f"line {lineno}: not a sample: {line}")
        name, labels, value = m.group(1), labels_of(m.group(3) or "", lineno), m.group(4)
        try:
            v = float(value)
        except ValueError:
            sys.exit(f"line {lineno}: value {value!r} is not a number")
        fam = family_of(name, types)
        if fam not in types:
            sys.exit(f"line {lineno}: {name} has no TYPE line before it")
        if fam != current:
            if fam in seen_done:
                sys.exit(f"line {lineno}: family {fam} is not contiguous")
            if current:
                seen_done.add(current)
            current = fam
        key = name + "{" + ",".join(f'{k}="{x}"' for k, x in labels) + "}"
        values[key] = value
        if types[fam] != "summary":
            continue
        rest = tuple(kv for kv in labels if kv[0] != "quantile")
        s = summaries.setdefault((fam, rest), {"q": 0, "sum": 0, "count": 0})
        if name == fam:
            if len(rest) == len(labels):
                sys.exit(f"line {lineno}: summary sample {name} without a quantile")
            s["q"] += 1
        elif name == fam + "_sum":
            s["sum"] += 1
        else:
            s["count"] += 1
            if v < 0 or v != int(v):
                sys.exit(f"line {lineno}: {name} is not a non-negative integer")
    if not values:
        sys.exit("no samples")
    for (fam, rest), s in summaries.items():
        if s["sum"] != 1 or s["count"] != 1 or s["q"] == 0:
            sys.exit(f"summary {fam}{dict(rest)}: {s['q']} quantiles, {s['sum']} _sum, "
                     f"{s['count']} _count (want some, 1, 1)")
    for want in sys.argv[1:]:
        print(values.get(want, "missing"))


if __name__ == "__main__":
    main()
