#!/usr/bin/env python3
"""No sequence of release commands leaves the running Anemone app claiming a release it does not run:

    check_release_sequence.py ANEMONE_LIVE HOTSWAPCTL MODULES_DIR [STEPS] [SEED]

starts `anemone_live --serve` and sends it, through the real hotswapctl, a random sequence
(seeded: the seed is printed, and given again reproduces the run) of load (of either vsn of
either module), upgrade, downgrade, rollback, purge and make-permanent. Each may be done or
refused (exit 0, 1 or 2); none may lose the program (3). After each, `status` must show every
server on the vsn of the release the program says it runs, and the app must tick on with its
state: its AccountManager's ticks, `alice: k, bob: 2k`, go on with no gap or repeat. (A forced
purge stops servers: it is left out.) Waits are for events (a tick printed, a socket listed).
"""
import json
import os
import random
import subprocess
import sys

sys.dont_write_bytecode = True  # the import below leaves no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from anemone_app import AnemoneApp  # noqa: E402

app_path, ctl_path, modules = sys.argv[1:4]
steps = int(sys.argv[4]) if len(sys.argv) > 4 else 60
seed = int(sys.argv[5]) if len(sys.argv) > 5 else random.randrange(1 << 30)
print(f"seed {seed} ({steps} steps): check_release_sequence.py ... {steps} {seed} repeats this run", flush=True)
rng = random.Random(seed)
app = AnemoneApp(app_path, ctl_path, modules, prefix="hotswap-sequence-")


def ctl(*args):
    run = subprocess.run([ctl_path, "--json", "-p", str(app.pid)] + list(args), capture_output=True, text=True,
                         env=app.env, timeout=120)
    return run.returncode, [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")], run.stderr


app.wait_for_ticks(1)

V2, V3 = f"{modules}/anemone-2.release.json", f"{modules}/anemone-3.release.json"
FILES = [f"{modules}/{name}_v{vsn}.so" for name in ("account_manager", "inspector") for vsn in (2, 3)]
commands = [("load", file) for file in FILES] + [("upgrade", V3), ("upgrade", V2), ("downgrade", V2),
                                                  ("rollback",), ("make-permanent",),
                                                  ("purge", "anemone.account_manager"), ("purge", "anemone.inspector")]
problems, done = [], []
for step in range(steps):
    command = rng.choice(commands)
    status, replies, stderr = ctl(*command)
    done.append(f"{' '.join(command[:1] + tuple(os.path.basename(a) for a in command[1:]))} -> {status}")
    if status not in (0, 1, 2):
        problems.append(f"step {step + 1}, {done[-1]}: {stderr}")
        break
    status, replies, stderr = ctl("status")
    if status != 0:
        problems.append(f"step {step + 1}: status exited {status}: {stderr}")
        break
    shown = replies[-1]["result"]
    claimed = int(shown["release"]["vsn"])
    wrong = [f"server {s['id']} ({s.get('name')}) on vsn {s.get('vsn')}" for s in shown["servers"]
             if s.get("vsn") != claimed]
    if len(shown["servers"]) != 2 or wrong:
        problems.append(f"after step {step + 1} ({done[-1]}) the program claims release anemone {claimed} "
                        f"but runs {wrong or shown['servers']}")
        break

app.wait_for_ticks(2)
stopped, errors = app.stop()
if stopped != 0:
    problems.append(f"the app exited with {stopped}: {errors}")
scores = app.scores()
if [a for a, _ in scores] != list(range(1, len(scores) + 1)) or any(b != 2 * a for a, b in scores):
    problems.append(f"ticks lost, repeated or wrong: {scores}")

if problems:
    print("\n".join(["the commands: " + "; ".join(done)] + problems))
    sys.exit(1)
print(f"ok: {len(done)} commands ({sum(d.endswith('-> 0') for d in done)} done, the rest refused or rolled back), "
      f"every server always on the release claimed; {len(scores)} ticks, none lost")
