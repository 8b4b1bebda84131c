#!/usr/bin/env python3
"""Runs every hotswapctl command line the README and docs show, against the running Anemone app:

    check_docs_commands.py ANEMONE_LIVE HOTSWAPCTL MODULES_DIR

A command line is a line of a code block (fenced, or indented by four spaces) of README.md,
docs/*.md or examples/*/README*, that starts with `hotswapctl `, `$ hotswapctl ` or a path ending
in `/hotswapctl ` (a `# comment` after it is the shell's; a transcript's `ops | $ hotswapctl ...` is
what `./tools/run demo` typed, not one). The lines of one section (under one
heading) are a session: they run in order, as a reader types them, against one app started on
release anemone 2 (tests/anemone_app.py), from the directory of its modules (where
`anemone-3.release.json` is). Each must exit as the docs imply: 0, unless a line right after it in
its block (before the next command line) shows hotswapctl's error (`hotswapctl: upgrade refused:
plan_refused ...`: 1, and the same error; `failed, rolled back`: 2). `watch` runs until Ctrl-C: it must print its first line,
then it is interrupted. Lines the docs add are run as they come; a placeholder is run only as
PLACEHOLDERS maps it, and one not mapped fails the test (show a real value, or map it here). Lines
addressed to another program than the Anemone app run in that program's test (ELSEWHERE).
"""
import os
import pathlib
import re
import shlex
import signal
import subprocess
import sys

sys.dont_write_bytecode = True  # the import below leaves no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from anemone_app import AnemoneApp  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md")) + sorted((ROOT / "examples").glob("*/README*"))
COMMAND = re.compile(r"^(?:\$ )?(?:\S*/)?hotswapctl( .*)$")
ERROR = re.compile(r"^hotswapctl: \S+ (refused|failed, rolled back): \S+")
HEADING = re.compile(r"^#+ ")

app_path, ctl_path, modules = map(os.path.abspath, sys.argv[1:4])  # (run from the modules' directory)

# A line that stands for others (a synopsis) -> the lines it is run as; PID and SOCKET are the app's.
PLACEHOLDERS = {
    "hotswapctl [-p PID | -s SOCKET | NAME] COMMAND [ARGS] [--json]": [
        "hotswapctl -p PID status",
        "hotswapctl -s SOCKET tree --json",
        "hotswapctl anemone status --json",
        "hotswapctl --json anemone state account_manager",
        "hotswapctl anemone stats --json inspector --timing on",
    ],
}
# Paths as the docs show them (a build tree's) -> this build's; /tmp/x.so, a file that is no module.
PATHS = {
    "build/demo/examples/anemone_modules": modules,
    "build/examples/anemone_modules": modules,
}
NO_MODULE = "/tmp/x.so"
# Programs other than the Anemone app that the docs operate -> the test that runs their lines as shown.
ELSEWHERE = {"kv": "tests/check_kv_service.py (example.kv_service): the README's section on it and docs/net.md's"}


def sections(document):
    """(section title, [(line number, command line, expected status, error shown)]) in order."""
    found, title, block, fenced = [], document.name, None, False
    text = document.read_text().splitlines()
    for number, line in enumerate(text, 1):
        if line.startswith("```"):
            fenced = not fenced
            block = [] if fenced else None
            continue
        indented = not fenced and line.startswith("    ") and (block is not None or not text[number - 2].strip())
        if not fenced and not indented:
            if line.strip():
                block = None
            if HEADING.match(line):
                title = line.lstrip("# ")
            continue
        if block is None:
            block = []
        shown = line.strip()
        if COMMAND.match(shown) and COMMAND.match(shown).group(1).split()[0] in ELSEWHERE:
            block = None
        elif COMMAND.match(shown):
            block.append(shown)
            found.append((title, number, shown, 0, None))
        elif found and block and found[-1][2] == block[-1] and (error := ERROR.match(shown)):
            # The error shown right after a command line is what it must say, with its status.
            found[-1] = found[-1][:3] + (1 if error.group(1) == "refused" else 2, error.group(0))
    grouped = []
    for title, number, shown, status, error in found:
        if not grouped or grouped[-1][0] != title:
            grouped.append((title, []))
        grouped[-1][1].append((number, shown, status, error))
    return grouped


def arguments(shown, app, scratch):
    """The command lines a doc line is run as, each a list of arguments (None: a placeholder not mapped)."""
    lines = PLACEHOLDERS.get(shown, [shown])
    if shown not in PLACEHOLDERS and re.search(r"\b[A-Z]{2,}\b|\[", shown):
        return None
    runs = []
    for line in lines:
        words = shlex.split(COMMAND.match(line).group(1), comments=True)
        for i, word in enumerate(words):
            for shown_path, path in PATHS.items():
                if word.startswith(shown_path):
                    word = path + word[len(shown_path):]
            words[i] = {"PID": str(app.pid), "SOCKET": app.socket, NO_MODULE: scratch}.get(word, word)
        runs.append([ctl_path] + words)
    return runs


def run(command, app):
    """Runs one command line in the modules' directory: (exit status, stdout, stderr)."""
    if "watch" in command:  # runs until Ctrl-C: its first line, then interrupted
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=app.env,
                                   cwd=modules)
        first = process.stdout.readline()
        running = process.poll() is None
        process.send_signal(signal.SIGINT)
        rest, errors = process.communicate(timeout=60)
        if running and first and process.returncode == -signal.SIGINT:
            return 0, first + rest, errors
        return process.returncode, first + rest, errors
    done = subprocess.run(command, capture_output=True, text=True, env=app.env, cwd=modules, timeout=120)
    return done.returncode, done.stdout, done.stderr


problems, ran = [], 0
for document in DOCUMENTS:
    where = document.relative_to(ROOT)
    for title, lines in sections(document):
        app = AnemoneApp(app_path, ctl_path, modules, prefix="hotswap-docs-")
        try:
            scratch = os.path.join(app.runtime, "x.so")
            with open(scratch, "w") as f:
                f.write("not a shared library\n")
            app.wait_for_ticks(1)
            for number, shown, status, error in lines:
                runs = arguments(shown, app, scratch)
                if runs is None:
                    problems.append(f"{where}:{number}: `{shown}` shows a placeholder: show a real value, or map the "
                                    "line in PLACEHOLDERS (tests/check_docs_commands.py)")
                    continue
                for command in runs:
                    ran += 1
                    got, out, err = run(command, app)
                    typed = " ".join(command[1:])
                    print(f"{where}:{number}: hotswapctl {typed} -> {got}", flush=True)
                    if got != status:
                        problems.append(f"{where}:{number} ({title}): hotswapctl {typed} exited with {got}, not "
                                        f"{status} as the docs imply:\n{out}{err}")
                    elif error and not err.startswith(error):
                        problems.append(f"{where}:{number} ({title}): hotswapctl {typed} said {err!r}, "
                                        f"not {error!r} as the docs show")
        finally:
            stopped, err = app.stop()
        if stopped != 0:
            problems.append(f"{where} ({title}): the app exited with {stopped}: {err}")

if problems:
    print("\n\n".join(problems))
    sys.exit(1)
if ran < 20:
    sys.exit(f"only {ran} command lines found in the docs: the extraction is broken")
print(f"ok: {ran} hotswapctl command lines of the docs ran, each as the docs imply")
