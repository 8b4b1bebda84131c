#!/usr/bin/env python3
"""The Anemone app ends as OTP's init:stop ends a node, on SIGTERM and on SIGINT (Ctrl-C):

    check_stop_on_signals.py ANEMONE_LIVE HOTSWAPCTL MODULES_DIR

starts `anemone_live --serve` (tests/anemone_app.py), waits for its ticks, sends the signal, and
checks that its servers were stopped, their terminate run: the AccountManager's last line is
`account_manager terminate (shutdown): alice: k, bob: 2k` with the last tick's scores, the app
says which signal stopped it, and it exits with 0. Waits are for events (a tick printed, the
program's end), never for amounts of time.
"""
import os
import re
import signal
import sys

sys.dont_write_bytecode = True  # the import below leaves no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from anemone_app import AnemoneApp  # noqa: E402

app_path, ctl_path, modules = sys.argv[1:4]
TERMINATE = re.compile(r"account_manager terminate \(shutdown\): alice: (\d+), bob: (\d+)$")
problems = []
for sent, name in ((signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "SIGINT")):
    app = AnemoneApp(app_path, ctl_path, modules, prefix="hotswap-signals-")
    app.wait_for_ticks(2)
    status, errors = app.stop(sent)
    scores = app.scores()
    with app.new_line:
        lines = list(app.lines)
    if status != 0:
        problems.append(f"{name}: the app exited with {status}: {errors}")
    ended = TERMINATE.match(lines[-1]) if lines else None
    if not ended:
        problems.append(f"{name}: the AccountManager's terminate did not print last: {lines[-3:]}")
    elif tuple(map(int, ended.groups())) != scores[-1]:
        problems.append(f"{name}: terminate printed {ended.group(0)}, the last tick was {scores[-1]}")
    if sum(1 for line in lines if TERMINATE.match(line)) != 1:
        problems.append(f"{name}: terminate ran more than once")
    if f"-- stopped ({name})" not in errors:
        problems.append(f"{name}: the app did not say the signal stopped it: {errors}")

if problems:
    print("\n".join(problems))
    sys.exit(1)
print("SIGTERM and SIGINT each stopped the servers, their terminate run")
