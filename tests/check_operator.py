#!/usr/bin/env python3
"""The Anemone app operated from outside, end to end with the real programs:

    check_operator.py ANEMONE_LIVE HOTSWAPCTL MODULES_DIR

starts `anemone_live --serve` (its control socket in a directory of this test's own) and drives
every command through the real hotswapctl: the views (list, status, tree, state, stats, top,
log, trace), the release commands (releases, plan, dry-run, upgrade, downgrade, rollback,
make-permanent), load and purge, each checked by what it prints and its exit status; then abuse
the socket directly (1 MB of random bytes, a line without an end, 1,000 connections held, a client
that never reads, malformed JSON, wrong types, unknown commands, a bad module file). After all
of it the app still serves, with its state: the AccountManager's ticks, printed by the app as
`alice: k, bob: 2k`, go on with no gap or repeat across two upgrades, a downgrade and a rollback.
Waits are for events (a tick printed, a socket listed), never for amounts of time.
"""
import json
import os
import random
import re
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # the import below leaves no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from anemone_app import AnemoneApp  # noqa: E402

app_path, ctl_path, modules = sys.argv[1:4]
V2, V3 = f"{modules}/anemone-2.release.json", f"{modules}/anemone-3.release.json"
problems = []


def check(condition, what):
    if not condition:
        problems.append(what)
    return condition


# -- the app, its output read as it comes --

app = AnemoneApp(app_path, ctl_path, modules, prefix="hotswap-operator-")
runtime, env, socket_path, wait_for_ticks = app.runtime, app.env, app.socket, app.wait_for_ticks


def ctl(*args, status=0, json_lines=False):
    """hotswapctl ARGS on the app: its standard output (checked for the exit status)."""
    command = [ctl_path] + (["--json"] if json_lines else []) + ["-p", str(app.pid)] + list(args)
    run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    check(run.returncode == status,
          f"hotswapctl {' '.join(args)} exited with {run.returncode}, not {status}: {run.stdout}{run.stderr}")
    return run.stdout + run.stderr


check(oct(os.stat(socket_path).st_mode & 0o777) == "0o600", "the socket is not mode 0600")
wait_for_ticks(2)

# -- the views --

out = ctl("status")
check("release anemone 2" in out and re.search(r"account_manager +Anemone.AccountManager +anemone::AccountManagerV2",
                                                out), f"status: {out}")
out = ctl("tree")
check("server 1 (account_manager)  anemone::AccountManagerV2 vsn 2" in out, f"tree: {out}")
out = ctl("state", "account_manager")
check(re.search(r'%\{"alice" => %Account\{name: "Alice", score: \d+, stage: 0\}', out), f"state v2: {out}")
out = ctl("stats", "inspector", "--timing", "on")
check("messages handled" in out and "time in handlers" in out and "timing is off" not in out, f"stats: {out}")
out = ctl("state", "nobody", status=1)
check("no_server" in out, f"state of no server: {out}")
ctl("log", "inspector", "--enable", "on")
wait_for_ticks(1)
wait_for_ticks(1)  # a whole tick since the log went on
out = ctl("log", "inspector")
check(re.search(r"in +anemone::Tick", out) and re.search(r"out +anemone::Tick", out), f"log: {out}")
out = ctl("trace", "account_manager", "4")
check(len(re.findall(r"(in|out) +anemone::Tick", out)) == 4 and "4 messages traced" in out, f"trace: {out}")
out = ctl("--json", "top", "-n", "1", "-i", "0.05")
snapshots = [json.loads(line) for line in out.splitlines()]
check(len(snapshots) == 2 and all(s["ok"] and len(s["result"]["servers"]) == 2 for s in snapshots), f"top: {out}")
out = ctl("top", "-n", "1", "-i", "0.05", "--sort", "mailbox")
check("account_manager" in out and "msgs/s" in out, f"top: {out}")

# -- releases, from outside --

out = ctl("releases")
check(re.search(r"anemone +2 +permanent", out), f"releases: {out}")
out = ctl("plan", V3)
check("anemone.account_manager" in out and "anemone.inspector" in out, f"plan: {out}")
out = ctl("dry-run", V3)
check("dry run" in out, f"dry-run: {out}")
check("release anemone 2" in ctl("status"), "the dry run changed the release")
replies = [json.loads(line) for line in ctl("upgrade", V3, json_lines=True).splitlines()]
check(replies and replies[-1]["ok"] and all(r.get("event") == "progress" for r in replies[:-1]) and
      any("committed" in r["line"] for r in replies[:-1]), f"upgrade --json: {replies}")
wait_for_ticks(2)
check(re.search(r"%Account\{name: \"Alice\", score: \d+, stage: 0, active: true\}", ctl("state", "account_manager")),
      "state after the upgrade")
out = ctl("upgrade", V3, status=1)
check("plan_refused" in out or "refused" in out, f"the same upgrade again: {out}")
out = ctl("downgrade", V2)
check("2 -> " not in out and "3 -> 2" in out, f"downgrade: {out}")
wait_for_ticks(2)
out = ctl("state", "account_manager")
check(re.search(r'%Account\{name: "Alice", score: \d+, stage: 0\}', out) and "active" not in out,
      f"state after the downgrade: {out}")
ctl("upgrade", V3)
wait_for_ticks(1)
out = ctl("rollback")
check("3 -> 2" in out, f"rollback: {out}")
check("release anemone 2" in ctl("status"), "rollback: not on anemone 2")
ctl("upgrade", V3)
ctl("make-permanent")
check(re.search(r"anemone +3 +permanent", ctl("releases")), "make-permanent")
out = ctl("remove-release", "anemone", "3", status=1)
check("release anemone 3 is permanent" in out, f"remove-release of the permanent release: {out}")
out = ctl("remove-release", "anemone", "2")
check("removed release anemone 2" in out and "none deleted" in out, f"remove-release: {out}")
check(not re.search(r"anemone +2 ", ctl("releases")), "remove-release: anemone 2 still listed")
out = ctl("purge", "anemone.inspector")
check("no old version" in out, f"purge: {out}")

# -- bad input: refused, nothing lost --

bad_module = os.path.join(runtime, "bad.so")
with open(bad_module, "wb") as f:
    f.write(b"not a library at all")
os.chmod(bad_module, 0o644)
out = ctl("load", bad_module, status=1)
check("refused" in out, f"load of a bad module: {out}")
ctl("bogus", status=64)
ctl("state", status=64)
run = subprocess.run([ctl_path, "-p", "999999999", "status"], capture_output=True, text=True, env=env)
check(run.returncode == 3, f"-p of no program: {run.returncode}")


def connect():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    while True:
        try:
            s.connect(socket_path)
            return s
        except BlockingIOError:  # the listen queue is full until the app accepts: again
            time.sleep(0.001)


def ask_raw(payload):
    with connect() as s:
        try:
            s.sendall(payload)
        except OSError:  # cut off before all was sent: the reply says why
            pass
        got = b""
        while not got.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        return got.decode(errors="replace")


check('"bad_request"' in ask_raw(b"{not json\n"), "malformed JSON")
check('"bad_request"' in ask_raw(b'{"command": 42}\n'), "a command of the wrong type")
check('"bad_request"' in ask_raw(b'{"command": "trace", "server": "inspector", "count": "many"}\n'), "wrong types")
check('"bad_request"' in ask_raw(b'{"command": "format-disk"}\n'), "an unknown command")
random.seed(7)
check('"bad_request"' in ask_raw(bytes(random.getrandbits(8) for _ in range(1 << 20)).replace(b"\n", b" ")),
      "1 MB of random bytes without a newline")
with connect() as s:  # a request line without an end, then the end of input
    s.sendall(b'{"command": "status"')
    s.shutdown(socket.SHUT_WR)
    check("no end" in s.makefile().read(), "a line without an end")
held = []
for _ in range(1000):  # 1,000 connections opened and held: the first 16 are served, the rest told
    held.append(connect())
check(len(held) == 1000, f"only {len(held)} connections could be opened")
check("busy" in held[-1].makefile().readline(), "the 1,000th connection is not told the program is busy")
for s in held:
    s.close()
silent = connect()  # a client that asks for much and never reads
try:
    silent.sendall(b'{"command": "status"}\n' * 4000)
except OSError:  # cut off: its replies went past what a client may leave unread
    pass
out = ctl("status")  # served all the same
check("release anemone 3" in out, f"status after the abuse: {out}")
silent.close()

# -- the app served throughout, and lost no tick --

wait_for_ticks(2)
stopped, errors = app.stop()
check(stopped == 0, f"the app exited with {stopped}: {errors}")
check(not os.path.exists(socket_path), "the socket is left behind")
bobs = app.scores()
scores = [a for a, _ in bobs]
check(scores == list(range(1, len(scores) + 1)), f"ticks lost or repeated: {scores}")
check(all(b == 2 * a for a, b in bobs), "bob's score is not twice alice's")

if problems:
    print("\n".join(problems))
    sys.exit(1)
print(f"ok: {len(scores)} ticks, none lost, across two upgrades, a downgrade and a rollback; every command driven")
