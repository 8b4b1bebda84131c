#!/usr/bin/env python3
"""Release anemone 4 from outside, end to end with the real programs: 2 -> 3 -> 4 -> 3.

    check_release_4.py ANEMONE_LIVE HOTSWAPCTL MODULES_DIR

The Anemone app serves release anemone 2 with a client (`--client`) built against the first
version of the AccountManager's interface calling it every period, and one built against release
4's (which adds Deactivate) asking for its handle. hotswapctl upgrades it to anemone 3 (made
permanent), then to anemone 4: AccountManager v4 (a later version of its interface) and a new
server, the Leaderboard, started by the release; the new client gets its handle and deactivates
alice. Then a rollback to 3: the Leaderboard is stopped, the state goes down, and the new client's
Deactivate is refused with an error it prints. Throughout, the first client's calls all succeed
and every tick is there (bob gains 2 a tick on every version: none lost, none repeated). Waits
are for events (a line printed, a release's status), never for amounts of time.
"""
import json
import os
import re
import sys

sys.dont_write_bytecode = True  # the import below leaves no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from anemone_app import AnemoneApp  # noqa: E402

app_path, ctl_path, modules = sys.argv[1:4]
V3, V4 = (f"{modules}/anemone-{vsn}.release.json" for vsn in ("3", "4"))
app = AnemoneApp(app_path, ctl_path, modules, prefix="hotswap-release4-", args=["--client"])
problems, check, ctl, until = app.problems, app.check, app.ctl, app.until


def printed(pattern):
    """The lines printed so far that match `pattern` (a regular expression, whole line)."""
    with app.new_line:
        return [line for line in app.lines if re.fullmatch(pattern, line)]


def servers():
    return {one["name"]: (one["implementation"], one["vsn"]) for one in ctl("status")["result"]["servers"]}


def releases():
    return {(one["name"], one["vsn"]): one["status"] for one in ctl("releases")["result"]["releases"]}


until(lambda: printed(r"client: calling Scores every tick: alice \d+, bob \d+"), "the first client's first call")
app.wait_for_ticks(3)

# -- 2 -> 3, made permanent --
check(ctl("upgrade", V3).get("ok") is True, "the upgrade to anemone 3")
check(ctl("make-permanent").get("ok") is True, "make-permanent (3)")
app.wait_for_ticks(3)
check(servers().get("account_manager") == ("anemone::AccountManagerV3", 3), f"on 3: {servers()}")

# -- 3 -> 4: a later interface, and a server started --
plan = ctl("plan", V4)
check("leaderboard" in json.dumps(plan), f"the plan does not show the leaderboard's start: {plan}")
upgraded = ctl("upgrade", V4)
check(upgraded.get("ok") is True, f"the upgrade to anemone 4: {upgraded}")
print(f"the upgrade to anemone 4: {json.dumps(upgraded.get('result', upgraded))}")
check(servers().get("account_manager") == ("anemone::AccountManagerV4", 4), f"on 4: {servers()}")
check(servers().get("leaderboard") == ("anemone::LeaderboardV1", 1), f"no leaderboard: {servers()}")
until(lambda: printed(r"client: release 4's interface: deactivate alice: true"), "the new client's deactivate")
until(lambda: len(printed(r"leaderboard: bob \d+, alice \d+")) >= 3, "the leaderboard's lines")
app.wait_for_ticks(3)
alice_then = app.scores()[-1][0]
app.wait_for_ticks(3)
check(app.scores()[-1][0] == alice_then, f"alice deactivated still scores: {app.scores()[-4:]}")

# -- 4 -> 3: the rollback stops the leaderboard, and the new message is refused again --
check(ctl("rollback").get("ok") is True, "the rollback to anemone 3")
check(releases().get(("anemone", "3")) == "permanent", f"releases: {releases()}")
check(servers().get("account_manager") == ("anemone::AccountManagerV3", 3), f"back on 3: {servers()}")
check("leaderboard" not in servers(), f"the leaderboard still runs: {servers()}")
refusal = ("client: deactivate bob: refused: wrong_interface: a message of version 2 of Anemone.AccountManager, and "
           "the server runs version 1 (anemone::AccountManagerV3)")
until(lambda: printed(re.escape(refusal)), "the new client's Deactivate refused")
app.wait_for_ticks(3)
check(app.scores()[-1][0] > alice_then, "alice does not score again on 3 (v3 ignores active)")

status, errors = app.stop()
check(status == 0, f"the app ended with {status}: {errors}")
with app.new_line:
    lines = list(app.lines)
# The first client called throughout; what failed, failed only once the servers were stopping.
summary = [m for m in map(re.compile(r"client: (\d+) calls of Scores, (\d+) failed").fullmatch, lines) if m]
if check(len(summary) == 1, "no client summary"):
    calls, failed = map(int, summary[0].groups())
    # It called before the upgrades (the line waited for above), on release 4 and after the rollback
    # (the second client's lines: each comes after a call of Scores in the same loop).
    check(calls >= 3, f"the client called {calls} times")
    stopping = next((i for i, line in enumerate(lines) if line.startswith("account_manager terminate")), len(lines))
    early = [line for line in lines[:stopping] if line.startswith("client: Scores failed")]
    check(not early, f"the client's calls failed while the app served: {early}")
    check(failed == sum(1 for line in lines if line.startswith("client: Scores failed")), "failures not all printed")
# Every tick is there: bob gains 2 a tick on every version (stage 1), across 2 -> 3 -> 4 -> 3.
bobs = [bob for _, bob in app.scores()]
for before, after in zip(bobs, bobs[1:]):
    if not check(after == before + 2, f"bob's ticks {before} then {after}: a tick lost or repeated"):
        break

for problem in problems:
    print(problem)
print(f"check_release_4: {len(problems)} problem(s)")
sys.exit(1 if problems else 0)
