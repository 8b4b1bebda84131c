#!/usr/bin/env python3
"""Fails when the README's first C++ example and examples/quickstart.cpp (which the tests build
and run) no longer say the same thing."""
import pathlib
import re
import sys

root = pathlib.Path(__file__).resolve().parent.parent
readme = (root / "README.md").read_text()
example = (root / "examples/quickstart.cpp").read_text()
snippet = re.search(r"```cpp\n(.*?)```", readme, re.S).group(1)
start = "namespace v1"
if snippet[snippet.index(start):] != example[example.index(start):]:
    print("README.md's first example differs from examples/quickstart.cpp: make them the same")
    sys.exit(1)
print("README.md's first example is examples/quickstart.cpp")
