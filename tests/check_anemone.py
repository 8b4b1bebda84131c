#!/usr/bin/env python3
"""Runs the live Anemone upgrade and checks what it prints, as the article prints it:

    check_anemone.py PROGRAM TICKS PERIOD_MS [live]

- AccountManager: `alice: k, bob: 2k` for k = 1, 2, ... with no gap or repeat (no tick lost,
  none handled twice), at least 2 * TICKS of them;
- Inspector: `[2] %Account{name: nil, score: 0, stage: 0}` before the upgrade line, then one
  `[code_change] %Account{name: nil, score: 0, stage: 0, active: true}` (printed by its v3
  code_change, before the upgrade ends), then `[3] %Account{...active: true}` only;
- the final state, inspected, agrees with the last scores printed;
- then the AccountManager's terminate, run by its stop (reason normal), prints those scores.
With `live` (anemone_live, the servers loaded from modules, upgraded as release anemone 3): the
v3 modules are loaded before the upgrade, and v2 purged (and unmapped: a purge that leaves a
library mapped says why on its line) after it. With `live downgrade`, the program then goes
back down to release anemone 2: after its line, the Inspector prints v2 lines only, the final
state is v2's (`active` dropped, as declared), and no tick is lost across both.
The two servers tick on their own timers, so how their lines interleave is not checked.
"""
import re
import subprocess
import sys

program, ticks, period = sys.argv[1], int(sys.argv[2]), sys.argv[3]
live = sys.argv[4:5] == ["live"]
downgrade = sys.argv[5:] == ["downgrade"]
run = subprocess.run([program, str(ticks), period] + (["--downgrade"] if downgrade else []), capture_output=True,
                     text=True, timeout=120)
lines = run.stdout.splitlines()
problems = []
if run.returncode != 0:
    problems.append(f"exited with {run.returncode}: {run.stderr}")

V2 = "[2] %Account{name: nil, score: 0, stage: 0}"
V3 = "[3] %Account{name: nil, score: 0, stage: 0, active: true}"
CHANGE = "[code_change] %Account{name: nil, score: 0, stage: 0, active: true}"
UPGRADED = "-- upgraded account_manager and inspector to v3 (suspend, change_code, resume)"
LOADED = ("-- loaded anemone.account_manager vsn 3", "-- loaded anemone.inspector vsn 3")
PURGED = ("-- purged anemone.account_manager vsn 2", "-- purged anemone.inspector vsn 2")
DOWNGRADED = "-- downgraded account_manager and inspector to v2 (release anemone 2 again)"
DOWN_MODULES = ("-- loaded anemone.account_manager vsn 2", "-- loaded anemone.inspector vsn 2",
                "-- purged anemone.account_manager vsn 3", "-- purged anemone.inspector vsn 3")
SCORES = re.compile(r"alice: (\d+), bob: (\d+)$")
TERMINATE = re.compile(r"account_manager terminate \(normal\): alice: (\d+), bob: (\d+)$")
ACTIVE = ", active: true" if not downgrade else ""
FINAL = re.compile(rf'%\{{"alice" => %Account\{{name: "Alice", score: (\d+), stage: 0{ACTIVE}\}}, '
                   rf'"bob" => %Account\{{name: "Bob", score: (\d+), stage: 1{ACTIVE}\}}\}}$')

upgraded = lines.index(UPGRADED) if UPGRADED in lines else None
down = lines.index(DOWNGRADED) if DOWNGRADED in lines else None
if upgraded is None or (downgrade and (down is None or down < upgraded)):
    problems.append("no upgrade line" if upgraded is None else "no downgrade line after the upgrade")
else:
    before = lines[:upgraded]
    after = lines[upgraded + 1:down] if downgrade else lines[upgraded + 1:]
    after_down = lines[down + 1:] if downgrade else []
    if before.count(CHANGE) != 1 or CHANGE in after + after_down:
        problems.append("the [code_change] line is not printed once, during the upgrade")
    if V3 in before or V2 in after or V3 in after_down:
        problems.append("an Inspector line of the wrong vsn")
    if V2 not in before or V3 not in after or (downgrade and V2 not in after_down):
        problems.append("the Inspector did not tick on every side of the upgrades")
    if live and not (all(line in before for line in LOADED) and all(line in after for line in PURGED)):
        problems.append("the v3 modules were not loaded before the upgrade, or v2 not unmapped after it")
    if downgrade and not (all(line in after for line in DOWN_MODULES[:2]) and
                          all(line in after_down for line in DOWN_MODULES[2:])):
        problems.append("the v2 modules were not loaded before the downgrade, or v3 not unmapped after it")

scores = [tuple(map(int, m.groups())) for m in map(SCORES.match, lines) if m]
expected = [(k, 2 * k) for k in range(1, len(scores) + 1)]
if scores != expected:
    problems.append(f"scores are not consecutive ticks: {scores}")
if len(scores) < 2 * ticks:
    problems.append(f"{len(scores)} ticks, expected at least {2 * ticks}")
# The final state, asked of the AccountManager once it stopped ticking: after its last tick (the
# Inspector, a server of its own, may print a line between it and the terminate).
finals = [at for at, line in enumerate(lines) if FINAL.match(line)]
ticks_at = [at for at, line in enumerate(lines) if SCORES.match(line)]
final = FINAL.match(lines[finals[-1]]) if finals and (not ticks_at or finals[-1] > ticks_at[-1]) else None
if not final or (scores and tuple(map(int, final.groups())) != scores[-1]):
    problems.append(f"the final state does not agree with the last scores: {lines[finals[-1]] if finals else None}")
terminated = TERMINATE.match(lines[-1]) if lines else None
if not terminated or (scores and tuple(map(int, terminated.groups())) != scores[-1]):
    problems.append(f"the AccountManager's terminate did not print the last scores last: {lines[-1:]}")
module_lines = (*LOADED, *PURGED, *(DOWN_MODULES if downgrade else ())) if live else ()
others = [l for l in lines if l not in (V2, V3, CHANGE, UPGRADED, DOWNGRADED, *module_lines) and not SCORES.match(l) and not FINAL.match(l) and not TERMINATE.match(l)]
if others:
    problems.append(f"unexpected lines: {others}")

if problems:
    print(run.stdout)
    print("\n".join(problems))
    sys.exit(1)
print(f"{len(scores)} ticks, none lost; upgraded after tick {len([l for l in lines[:upgraded] if SCORES.match(l)])}")
