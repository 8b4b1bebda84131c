#!/usr/bin/env python3
"""Save to serving: how long from saving a module's source to its new code serving, in a running
program, rebuilt with the project's CMake setup (the module alone) and reloaded by a watch.

    benchmarks/save_to_serving.py BUILD_DIR [ROUNDS=5]

BUILD_DIR is a configured build of this project (examples on). Three subjects, each a copy of a
module's source in the build tree (examples/CMakeLists.txt, example_scratch_module), edited as a
developer would and rebuilt with `cmake --build BUILD_DIR --target ...`:

- Anemone's AccountManager, built as its release builds it, while `anemone_live --serve
  --development` runs release anemone 2 and `hotswapctl anemone watch` reloads the module;
- the same module precompiled (hotswap_add_module PRECOMPILED);
- live_edit's rules (precompiled), its rule constant switched, while live_edit watches itself.

Each round: the source is saved (the clock starts), the module rebuilt, and the clock stops at the
watch's line saying the servers run the new build (printed once the transaction committed). The
table gives each round's build time, save -> serving, the load and the pause the line reports,
and the medians. The sources are put back after.
"""
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

build = os.path.abspath(sys.argv[1])
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
examples = f"{build}/examples"
scratch = f"{examples}/scratch"
RELOADED = re.compile(r"reloaded \S+ vsn \d+ \(build \w+ -> \w+\): \d+ servers? upgraded in (\d+) us.*; load ([\d.]+) ms")


class watched:
    """A program whose output (or its watcher's) is read as it comes, each line with its time."""

    def __init__(self, argv, env=None):
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        self.lines, self.new_line = [], threading.Condition()
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        for line in self.process.stdout:
            with self.new_line:
                self.lines.append((time.monotonic(), line.rstrip("\n")))
                self.new_line.notify_all()

    def wait_for(self, pattern, after=0, limit=300):
        """The first line from index `after` on matching `pattern`: (its index, time, match)."""
        give_up = time.monotonic() + limit
        with self.new_line:
            while True:
                for i in range(after, len(self.lines)):
                    found = re.search(pattern, self.lines[i][1])
                    if found:
                        return i + 1, self.lines[i][0], found
                if not self.new_line.wait(timeout=give_up - time.monotonic()):
                    sys.exit(f"no line matching {pattern!r} within {limit} s:\n" +
                             "\n".join(line for _, line in self.lines[-20:]))

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=60)


def measure(name, target, source, edit, watcher, after):
    original = open(source).read()
    results = []
    try:
        for i in range(rounds + 1):  # the first round warms the build (its PCH, the program's code)
            with open(source, "w") as out:
                out.write(edit(original, i))
            saved = time.monotonic()
            subprocess.run(["cmake", "--build", build, "--target", target], check=True, capture_output=True)
            built = time.monotonic()
            after, serving, found = watcher.wait_for(RELOADED.pattern, after)
            if i:
                results.append((built - saved, serving - saved, float(found.group(2)), int(found.group(1))))
    finally:
        with open(source, "w") as out:
            out.write(original)
    print(f"\n{name} ({target})")
    print(f"  {'round':<6} {'build s':>8} {'save->serving s':>16} {'load ms':>8} {'pause us':>9}")
    for i, (b, s, load, pause) in enumerate(results, 1):
        print(f"  {i:<6} {b:>8.2f} {s:>16.2f} {load:>8.1f} {pause:>9}")
    medians = [statistics.median(column) for column in zip(*results)]
    print(f"  {'median':<6} {medians[0]:>8.2f} {medians[1]:>16.2f} {medians[2]:>8.1f} {medians[3]:>9.0f}")
    return after


def marked(text, i):
    """A one-line change that changes the module's bytes (a rebuild of the same bytes is no new build)."""
    return text + f"\n[[gnu::used]] static const int save_to_serving_edit = {i};\n"


# Anemone's AccountManager, reloaded through the control socket by hotswapctl watch.
runtime = tempfile.mkdtemp(prefix="hotswap-save-to-serving-")
env = dict(os.environ, XDG_RUNTIME_DIR=runtime)
app = watched([f"{examples}/anemone_live", "--serve", "100", f"{examples}/anemone_modules", "--development"], env)
app.wait_for(r"alice: \d+")
try:
    for target in ("account_manager_v2_scratch", "account_manager_v2_scratch_pch"):
        ctl = watched([f"{build}/programs/hotswapctl", "-p", str(app.process.pid), "watch", f"{scratch}/{target}/modules"],
                      env)
        after, _, _ = ctl.wait_for("^watching ")
        measure("Anemone's AccountManager" + (", precompiled" if target.endswith("pch") else ""), target,
                f"{scratch}/{target}/account_manager_v2.cpp", marked, ctl, after)
        ctl.stop()
finally:
    app.stop()

# live_edit's rules: the rule switched between B3/S23 and B36/S23, as its README does.
game = watched([f"{examples}/live_edit", "--plain", "--period", "50", "--modules",
                f"{scratch}/live_edit_rules_scratch/modules"])
after, _, _ = game.wait_for("^generation 2:")
try:
    measure("live_edit's rules, precompiled", "live_edit_rules_scratch", f"{scratch}/live_edit_rules_scratch/rules.cpp",
            lambda text, i: text.replace('rule = "B3/S23"', 'rule = "B36/S23"') if i % 2 == 0 else text, game, after)
finally:
    game.stop()
