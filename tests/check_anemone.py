#!/usr/bin/env python3
"""Runs the live Anemone upgrade and checks what it prints, as the article prints it:

    check_anemone.py PROGRAM TICKS PERIOD_MS [live]

- AccountManager: `alice: k, bob: 2k` for k = 1, 2, ... with no gap or repeat (no tick lost,
  none handled twice), at least 2 * TICKS of them;
- Inspector: `[2] %Account{name: nil, score: 0, stage: 0}` before the upgrade line, then one
  `[code_change] %Account{name: nil, score: 0, stage: 0, active: true}` (printed by its v3
  code_change, before the upgrade ends), then `[3] %Account{...active: true}` only;
- the final state, inspected, agrees with the last scores printed.
With `live` (anemone_live, the servers loaded from modules, upgraded as release anemone 3): the
v3 modules are loaded before the upgrade, and v2 purged (and unmapped: a purge that leaves a
library mapped says why on its line) after it.
The two servers tick on their own timers, so how their lines interleave is not checked.
"""
import re
import subprocess
import sys

program, ticks, period = sys.argv[1], int(sys.argv[2]), sys.argv[3]
live = sys.argv[4:] == ["live"]
run = subprocess.run([program, str(ticks), period], capture_output=True, text=True, timeout=120)
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
SCORES = re.compile(r"alice: (\d+), bob: (\d+)$")
FINAL = re.compile(r'%\{"alice" => %Account\{name: "Alice", score: (\d+), stage: 0, active: true\}, '
                   r'"bob" => %Account\{name: "Bob", score: (\d+), stage: 1, active: true\}\}$')

upgraded = lines.index(UPGRADED) if UPGRADED in lines else None
if upgraded is None:
    problems.append("no upgrade line")
else:
    before, after = lines[:upgraded], lines[upgraded + 1:]
    if before.count(CHANGE) != 1 or CHANGE in after:
        problems.append("the [code_change] line is not printed once, during the upgrade")
    if any(line == V3 for line in before) or any(line == V2 for line in after):
        problems.append("an Inspector line of the wrong vsn")
    if V2 not in before or V3 not in after:
        problems.append("the Inspector did not tick on both sides of the upgrade")
    if live and not (all(line in before for line in LOADED) and all(line in after for line in PURGED)):
        problems.append("the v3 modules were not loaded before the upgrade, or v2 not unmapped after it")

scores = [tuple(map(int, m.groups())) for m in map(SCORES.match, lines) if m]
expected = [(k, 2 * k) for k in range(1, len(scores) + 1)]
if scores != expected:
    problems.append(f"scores are not consecutive ticks: {scores}")
if len(scores) < 2 * ticks:
    problems.append(f"{len(scores)} ticks, expected at least {2 * ticks}")
final = FINAL.match(lines[-1]) if lines else None
if not final or (scores and tuple(map(int, final.groups())) != scores[-1]):
    problems.append(f"the final state does not agree with the last scores: {lines[-1:]}")
module_lines = (*LOADED, *PURGED) if live else ()
others = [l for l in lines if l not in (V2, V3, CHANGE, UPGRADED, *module_lines) and not SCORES.match(l) and not FINAL.match(l)]
if others:
    problems.append(f"unexpected lines: {others}")

if problems:
    print(run.stdout)
    print("\n".join(problems))
    sys.exit(1)
print(f"{len(scores)} ticks, none lost; upgraded after tick {len([l for l in lines[:upgraded] if SCORES.match(l)])}")
