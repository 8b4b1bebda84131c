#!/usr/bin/env python3
"""The grace period from outside, end to end with the real programs:

    check_grace.py ANEMONE_LIVE HOTSWAPCTL MODULES_DIR

The Anemone app on release anemone 2 is upgraded by hotswapctl to anemone 3-faulty, whose
AccountManager throws in its tick. In the grace period the server goes back to v2 with its
accounts, the release rolls back to anemone 2 by itself, and the program says so on standard
error: a crash report, then the release handler's lines. The ticks go on from the scores they
had, with no reset. Then anemone 3 with `--grace 0` purges the versions before at once, and one
with a grace period keeps them until make-permanent. Waits are for events (a tick printed, a
release's status), never for amounts of time.
"""
import os
import sys

sys.dont_write_bytecode = True  # the import below leaves no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from anemone_app import AnemoneApp  # noqa: E402

app_path, ctl_path, modules = sys.argv[1:4]
V2, V3, FAULTY = (f"{modules}/anemone-{vsn}.release.json" for vsn in ("2", "3", "3-faulty"))
app = AnemoneApp(app_path, ctl_path, modules, prefix="hotswap-grace-")
problems, check, ctl, until = app.problems, app.check, app.ctl, app.until


def releases():
    return {(one["name"], one["vsn"]): one["status"] for one in ctl("releases")["result"]["releases"]}


def modules_loaded():
    return {one["name"]: (one["current"], one["old"]) for one in ctl("status")["result"]["modules"]}


def manager():
    return next(one for one in ctl("status")["result"]["servers"] if one["name"] == "account_manager")


app.wait_for_ticks(3)
before = app.scores()[-1]

# -- a faulty release, upgraded from outside with a grace period: rolled back by itself --

upgraded = ctl("upgrade", FAULTY, "--grace", "600")
check(upgraded.get("ok") is True, f"the upgrade to anemone 3-faulty: {upgraded}")
until(lambda: releases().get(("anemone", "3-faulty")) == "old", "anemone 3-faulty rolled back")
check(releases() == {("anemone", "2"): "permanent", ("anemone", "3-faulty"): "old"}, f"releases: {releases()}")
check((manager()["implementation"], manager()["vsn"]) == ("anemone::AccountManagerV2", 2), f"{manager()}")
check(modules_loaded()["anemone.account_manager"] == (2, None), f"modules: {modules_loaded()}")
check(modules_loaded()["anemone.inspector"] == (2, None), f"modules: {modules_loaded()}")
app.wait_for_ticks(3)
scores = app.scores()
at = scores.index(before)
# Every tick after the one seen before the upgrade adds 1 to alice and 2 to bob (v2's stages): no
# tick lost its accounts, none started again from init.
for (alice, bob), (next_alice, next_bob) in zip(scores[at:], scores[at + 1:]):
    if not check((next_alice, next_bob) == (alice + 1, bob + 2), f"ticks {alice},{bob} then {next_alice},{next_bob}"):
        break

# -- no grace period: the versions before go at once; with one, they stay until make-permanent --

check(ctl("upgrade", V3, "--grace", "0").get("ok") is True, "the upgrade to anemone 3 with --grace 0")
check(modules_loaded()["anemone.account_manager"] == (3, None), f"--grace 0 kept a version: {modules_loaded()}")
check(ctl("make-permanent").get("ok") is True, "make-permanent")
check(ctl("downgrade", V2).get("ok") is True, "the downgrade to anemone 2 (the program's grace period)")
check(modules_loaded()["anemone.account_manager"] == (2, 3), f"the grace period kept no version: {modules_loaded()}")
check(ctl("make-permanent").get("ok") is True, "make-permanent")
check(modules_loaded()["anemone.account_manager"] == (2, None), f"make-permanent purged nothing: {modules_loaded()}")
check(ctl("upgrade", V3, "--grace", "-1", status=64) == {}, "a negative grace period is refused by hotswapctl")

status, errors = app.stop()
check(status == 0, f"the app ended with {status}: {errors}")
crash = ("hotswap: crash report: server 1 (account_manager), anemone::FaultyAccountManagerV3 vsn 3, handling "
         "anemone::Tick: std::runtime_error: a fault in the v3 build's tick; its state: %{\"alice\" => %Account{")
check(crash in errors, f"no crash report on standard error:\n{errors}")
check("; back on anemone::AccountManagerV2 vsn 2, its state kept\n" in errors, f"not back on v2:\n{errors}")
check("hotswap: release handler: rollback: server 1 (account_manager) failed in a handler of anemone.account_manager "
      "vsn 3 (a fault in the v3 build's tick); back on vsn 2, its state kept in the grace period of release anemone "
      "3-faulty: rolling back to anemone 2\n" in errors, f"the rollback is not told:\n{errors}")
check("hotswap: release handler: rollback: rolled back: release anemone 2 runs again\n" in errors,
      f"the rollback's end is not told:\n{errors}")

for problem in problems:
    print(problem)
print(f"check_grace: {len(problems)} problem(s)")
sys.exit(1 if problems else 0)
