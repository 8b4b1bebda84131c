#!/usr/bin/env python3
"""Fails when the README's C++ examples and the programs the tests build and run from them no
longer say the same thing: the first block is examples/quickstart.cpp (from its first namespace
on); every line of the second stands, in order, in examples/servers_quickstart.cpp (which wraps
the statements in main)."""
import pathlib
import re
import sys

root = pathlib.Path(__file__).resolve().parent.parent
readme = (root / "README.md").read_text()
blocks = re.findall(r"```cpp\n(.*?)```", readme, re.S)
problems = []

example = (root / "examples/quickstart.cpp").read_text()
start = "namespace v1"
if blocks[0][blocks[0].index(start):] != example[example.index(start):]:
    problems.append("README.md's first example differs from examples/quickstart.cpp: make them the same")

program = [line.strip() for line in (root / "examples/servers_quickstart.cpp").read_text().splitlines()]
at = 0
for line in (l.strip() for l in blocks[1].splitlines() if l.strip()):
    while at < len(program) and program[at] != line:
        at += 1
    if at == len(program):
        problems.append(f"README.md's servers example has a line examples/servers_quickstart.cpp lacks (or has out of order): {line}")
        break
    at += 1

if problems:
    print("\n".join(problems))
    sys.exit(1)
print("README.md's examples are examples/quickstart.cpp and examples/servers_quickstart.cpp")
