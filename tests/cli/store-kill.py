#!/usr/bin/env python3
"""store-kill.py PLOT PLOTD DIR KILLS — kill -9 plotd under load, KILLS times.

Submitters submit with idempotency keys and retry a failed submit with the
same key until it is acknowledged; followers tail acknowledged tasks; a
killer SIGKILLs plotd at random moments and starts it again. At the end
every acknowledged key names one task id, no id is shared by two keys, the
daemon holds exactly one task per key (none twice, no orphan), every task
is done and its output is exactly its prompt. Exits 0 and prints
"kill: all checks passed", or prints what broke and exits 1. Bounded: it
gives up (exit 1) after LIMIT_SECS.
"""
import json, os, random, signal, subprocess, sys, threading, time

PLOT, PLOTD, DIR, KILLS = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
SUBMITTERS, MIN_PER, MAX_PER, FOLLOWERS = 4, 10, 300, 2
LIMIT_SECS = float(os.environ.get("PLOT_KILL_LIMIT_SECS", "150"))
SANITIZER = ("AddressSanitizer", "runtime error:", "ThreadSanitizer", "LeakSanitizer")
os.makedirs(DIR + "/run", mode=0o700, exist_ok=True)
os.chmod(DIR, 0o700)
env = dict(os.environ, PLOT_SOCKET=DIR + "/run/plotd.sock", PLOT_NO_AUTOSTART="1",
           XDG_STATE_HOME=DIR + "/state", XDG_RUNTIME_DIR=DIR + "/xdg", NO_COLOR="1")
CONFIG = DIR + "/plot.yaml"
with open(CONFIG, "w") as f:
    f.write("""parking_lot:
  pool:    { max_running: 8 }
  limits:  { max_units: 100, max_queue_depth: 1000, timeout_secs: 600 }
  queue:   { backend: sqlite }
  mailbox: { backend: sqlite, retention_secs: 3600 }
daemon: { log_level: info }
models:
  - name: echo
    executor: synthetic
    params: { tokens_per_sec: 300 }
""")
start = time.monotonic()
stop = threading.Event()         # followers stop
killed = threading.Event()       # the killer is done: submitters wind down
lock = threading.Lock()
acked = {}      # key -> set of ids the daemon answered with
prompts = {}    # key -> prompt
problems = []
daemon = {"p": None, "n": 0}


def left():
    return LIMIT_SECS - (time.monotonic() - start)


def plot(*args, timeout=20):
    try:
        return subprocess.run([PLOT, *args], env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return None


def start_daemon():
    err = open(DIR + "/plotd.stderr", "a")
    p = subprocess.Popen([PLOTD, "--config", CONFIG, "--socket", env["PLOT_SOCKET"]],
                         env=env, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
    while left() > 0:
        if p.poll() is not None:
            problems.append(f"plotd exited {p.returncode} at start {daemon['n']}")
            return p
        r = plot("models", timeout=5)
        if r is not None and r.returncode == 0:
            return p
        time.sleep(0.02)
    return p


def submitter(i):
    """Submits all the while the killer works, so kills land under load."""
    for n in range(MAX_PER):
        if killed.is_set() and n >= MIN_PER:
            return
        key = f"s{i}-{n}"
        prompt = f"w{i}x{n} alpha beta gamma delta"
        prompts[key] = prompt
        while left() > 0:
            r = plot("submit", "--key", key, prompt)
            if r is not None and r.returncode == 0:
                with lock:
                    acked.setdefault(key, set()).add(int(r.stdout.strip()))
                break
            if r is not None and r.returncode not in (1, 69):
                problems.append(f"submit {key}: exit {r.returncode}: {r.stderr.strip()}")
                return
            time.sleep(0.01)  # plotd is being restarted: try again


def follower():
    while not stop.is_set() and left() > 0:
        with lock:
            ids = [i for s in acked.values() for i in s]
        if not ids:
            time.sleep(0.01)
            continue
        r = plot("tail", str(random.choice(ids)), timeout=10)
        if r is not None and r.returncode >= 128:
            problems.append(f"tail crashed: {r.returncode}")


def killer():
    for k in range(KILLS):
        time.sleep(random.uniform(0.05, 0.35))
        daemon["p"].send_signal(signal.SIGKILL)
        daemon["p"].wait()
        daemon["n"] += 1
        daemon["p"] = start_daemon()
        if problems or left() <= 0:
            return


def check():
    ids = {}
    for key, s in acked.items():
        if len(s) != 1:
            problems.append(f"key {key} named tasks {sorted(s)}")
        for i in s:
            if i in ids:
                problems.append(f"task {i} answered for keys {ids[i]} and {key}")
            ids[i] = key
    while left() > 0:
        r = plot("--json", "list", "--limit", "4096")
        tasks = json.loads(r.stdout) if r is not None and r.returncode == 0 else []
        if tasks and all(t["state"] not in ("queued", "running") for t in tasks):
            break
        time.sleep(0.05)
    held = {t["id"]: t for t in tasks}
    if len(held) != len(tasks):
        problems.append("a task id is listed twice")
    for i, key in ids.items():
        t = held.get(i)
        if t is None or t["state"] != "done":
            problems.append(f"task {i} ({key}) is {t and t['state']}, not done")
            continue
        r = plot("result", str(i))
        # plot result ends an output that lacks one with a newline (plot(1))
        if r is None or r.returncode != 0 or r.stdout != prompts[key] + "\n":
            problems.append(f"task {i} ({key}): output {r and r.stdout!r}, want {prompts[key]!r}")
    orphans = set(held) - set(ids)
    if orphans:
        problems.append(f"tasks no key was answered with: {sorted(orphans)[:10]}")


daemon["p"] = start_daemon()
threads = [threading.Thread(target=submitter, args=(i,)) for i in range(SUBMITTERS)]
threads += [threading.Thread(target=follower) for _ in range(FOLLOWERS)]
for t in threads:
    t.start()
killer()
killed.set()
for t in threads[:SUBMITTERS]:
    t.join()
stop.set()
for t in threads[SUBMITTERS:]:
    t.join()
if not problems:
    check()
daemon["p"].send_signal(signal.SIGTERM)
try:
    rc = daemon["p"].wait(timeout=20)
except subprocess.TimeoutExpired:
    daemon["p"].kill()
    rc = "hung"
if rc != 0:
    problems.append(f"plotd exited {rc} at the end")
with open(DIR + "/plotd.stderr") as f:
    log = f.read()
if any(s in log for s in SANITIZER):
    problems.append("sanitizer report in plotd's stderr:\n" + log[-4000:])
if left() <= 0:
    problems.append(f"gave up after {LIMIT_SECS}s")
print(f"kill: {daemon['n']} kills, {len(acked)} keys acknowledged, "
      f"{time.monotonic() - start:.1f}s")
if problems:
    print("kill: FAILED:\n  " + "\n  ".join(problems[:20]))
    sys.exit(1)
print("kill: all checks passed")
