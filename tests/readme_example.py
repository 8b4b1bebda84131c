#!/usr/bin/env python3
"""Fails when the README's C++ examples and the programs the tests build and run from them no
longer say the same thing: the first block is examples/quickstart.cpp (from its first namespace
on); every line of the second stands, in order, in examples/servers_quickstart/ (counter.hpp, then
main.cpp, which wraps the statements in main); of the third in modules_quickstart/counter_v2.cpp;
of the fourth in modules_quickstart/main.cpp."""
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

def lines_of(*paths):
    return [line.strip() for path in paths for line in (root / path).read_text().splitlines()]


def stands_in(block, program, names):
    """Every non-empty line of `block` is a line of `program`, in order."""
    at = 0
    for line in (l.strip() for l in block.splitlines() if l.strip()):
        while at < len(program) and program[at] != line:
            at += 1
        if at == len(program):
            problems.append(f"README.md has a line {names} lack (or have out of order): {line}")
            return
        at += 1


servers = ("examples/servers_quickstart/counter.hpp", "examples/servers_quickstart/main.cpp")
stands_in(blocks[1], lines_of(*servers), " and ".join(servers))
stands_in(blocks[2], lines_of("examples/modules_quickstart/counter_v2.cpp"), "examples/modules_quickstart/counter_v2.cpp")
stands_in(blocks[3], lines_of("examples/modules_quickstart/main.cpp"), "examples/modules_quickstart/main.cpp")

if problems:
    print("\n".join(problems))
    sys.exit(1)
print("README.md's examples are examples/quickstart.cpp, servers_quickstart and modules_quickstart")
