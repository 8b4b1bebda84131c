#!/usr/bin/env python3
"""The development loop, end to end, as a developer runs it:

    check_live_edit.py LIVE_EDIT BUILD_DIR TARGET SOURCE MODULES_DIR

starts the game of life (`live_edit --plain`) on the rules module in MODULES_DIR, rewrites the
rule in SOURCE (B3/S23 -> B36/S23), rebuilds TARGET alone with the project's CMake setup
(`cmake --build BUILD_DIR --target TARGET`, which writes MODULES_DIR/rules.so), waits for the
program to say it reloaded the rules, and for frames on the new rule; then puts the source back,
rebuilds, and waits for the old rule again. Every frame is then checked against the one before
it: the generation one more, and the board exactly the one before moved on one generation by the
rule the frame names. So the board and its count go on across both reloads, and the new rule is
the one that moved it. SOURCE is put back however the test ends.
Waits are for events (a line printed), never for amounts of time.
"""
import re
import subprocess
import sys
import threading
import time

program, build_dir, target, source, modules = sys.argv[1:6]
OLD_RULE, NEW_RULE = "B3/S23", "B36/S23"
original = open(source).read()
if f'rule = "{OLD_RULE}"' not in original:
    sys.exit(f"{source} does not set rule = \"{OLD_RULE}\"")

app = subprocess.Popen([program, "--plain", "--period", "20", "--modules", modules], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
lines, new_line = [], threading.Condition()


def read_app():
    for line in app.stdout:
        with new_line:
            lines.append(line.rstrip("\n"))
            new_line.notify_all()
    with new_line:
        new_line.notify_all()


threading.Thread(target=read_app, daemon=True).start()


def wait_for(what, happened, limit=600):
    """Waits until happened(lines) holds (the limit only stops a broken build from hanging)."""
    give_up = time.monotonic() + limit
    with new_line:
        while not happened(lines):
            if app.poll() is not None and not happened(lines):
                sys.exit(f"live_edit ended ({app.returncode}) before {what}:\n" + "\n".join(lines[-40:]))
            if not new_line.wait(timeout=max(0.0, give_up - time.monotonic())) and time.monotonic() >= give_up:
                sys.exit(f"no {what} after {limit} s:\n" + "\n".join(lines[-40:]))


def frames_on(rule, after):
    """How many frames on `rule` were printed after line `after`."""
    return lambda seen: sum(1 for line in seen[after:] if line.startswith("generation ") and line.endswith("rule " + rule))


def rebuild(text):
    with open(source, "w") as out:
        out.write(text)
    built = subprocess.run(["cmake", "--build", build_dir, "--target", target], capture_output=True, text=True)
    if built.returncode != 0:
        sys.exit(f"cmake --build {build_dir} --target {target} failed:\n{built.stdout}\n{built.stderr}")


def reloads(seen):
    return [line for line in seen if line.startswith("watch | reloaded life.rules vsn 1 (build ")]


try:
    wait_for("frames on the first rule", lambda seen: frames_on(OLD_RULE, 0)(seen) >= 3)
    for rule, text, count in ((NEW_RULE, original.replace(f'rule = "{OLD_RULE}"', f'rule = "{NEW_RULE}"'), 1),
                              (OLD_RULE, original, 2)):
        rebuild(text)
        wait_for(f"reload {count}", lambda seen: len(reloads(seen)) >= count)
        with new_line:
            reloaded_at = max(i for i, line in enumerate(lines) if line.startswith("watch | reloaded"))
        wait_for(f"frames on {rule}", lambda seen: frames_on(rule, reloaded_at)(seen) >= 3)
finally:
    with open(source, "w") as out:
        out.write(original)
    app.terminate()
    app.wait(timeout=60)

problems = []
with new_line:
    output = list(lines)
for line in output:
    if line.startswith("watch | ") and not line.startswith("watch | reloaded"):
        problems.append(f"the watch said: {line}")
if not re.fullmatch(r"watch \| reloaded life\.rules vsn 1 \(build [0-9a-f]{8} -> [0-9a-f]{8}\): 1 server upgraded "
                    r"in \d+ us \(server \d+ \(life\)\); load \d+\.\d ms", reloads(output)[0]):
    problems.append(f"the reload line reads: {reloads(output)[0]}")
first, second = (re.search(r"build ([0-9a-f]{8}) -> ([0-9a-f]{8})", line).groups() for line in reloads(output)[:2])
if first[1] != second[0] or first[0] == first[1] or second[0] == second[1]:
    problems.append(f"the builds do not chain: {first} then {second}")

# The frames: `generation N: A alive, rule R`, then the board's rows as |...|.
frames, at = [], 0
while at < len(output):
    header = re.fullmatch(r"generation (\d+): (\d+) alive, rule (\S+)", output[at])
    if not header:
        at += 1
        continue
    rows = []
    at += 1
    while at < len(output) and output[at].startswith("|"):
        rows.append(output[at][1:-1])
        at += 1
    frames.append((int(header.group(1)), int(header.group(2)), header.group(3), rows))
shape = (len(frames[0][3]), len(frames[0][3][0]))  # the last frame may be cut off: whole frames only
frames = [frame for frame in frames if len(frame[3]) == shape[0] and all(len(row) == shape[1] for row in frame[3])]


def step(rows, rule):
    born, survives = (set(int(c) for c in part[1:]) for part in rule.split("/"))
    h, w = len(rows), len(rows[0])
    moved = []
    for y in range(h):
        row = ""
        for x in range(w):
            around = sum(rows[(y + dy) % h][(x + dx) % w] == "#" for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                         if dy or dx)
            row += "#" if (around in survives if rows[y][x] == "#" else around in born) else "."
        moved.append(row)
    return moved


rules_seen = []
for before, frame in zip(frames, frames[1:]):
    generation, alive, rule, rows = frame
    if generation != before[0] + 1:
        problems.append(f"generation {before[0]} is followed by {generation}: the board's count did not go on")
    if rows != step(before[3], rule):
        problems.append(f"generation {generation} is not generation {before[0]} moved on by {rule}")
    if alive != sum(row.count("#") for row in rows):
        problems.append(f"generation {generation} counts {alive} alive")
for frame in frames:
    if not rules_seen or rules_seen[-1] != frame[2]:
        rules_seen.append(frame[2])
if rules_seen != [OLD_RULE, NEW_RULE, OLD_RULE]:
    problems.append(f"the rules ran in the order {rules_seen}")

for problem in problems:
    print("FAILED:", problem)
print(f"{len(frames)} frames, generations {frames[0][0]}-{frames[-1][0]}, rules {' -> '.join(rules_seen)}; "
      f"{len(problems)} problem(s)")
sys.exit(1 if problems else 0)
