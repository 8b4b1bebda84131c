#!/usr/bin/env python3
"""Generates single_include/hotswap/hotswap.hpp from include/: every hotswap header inlined once,
in include order, system includes kept. Beside it, single_include/hotswap/releases.hpp, watch.hpp,
control.hpp, signals.hpp and net.hpp: the layers not in the umbrella header, each including the one below and
inlining the rest. First it stamps the headers' digest (tools/headers_digest.py), which the single header carries too.

    tools/amalgamate.py           write the digest and the single header
    tools/amalgamate.py --check   exit 1 if either committed file is stale
"""
import pathlib
import re
import sys

import headers_digest

ROOT = pathlib.Path(__file__).resolve().parent.parent
SOURCE = ROOT / "include/hotswap/hotswap.hpp"
TARGET = ROOT / "single_include/hotswap/hotswap.hpp"
# The layers above the umbrella header, lowest first: (header, what it is), each including the one before.
ABOVE = [("releases.hpp", "releases"), ("watch.hpp", "development loop"), ("control.hpp", "control socket"),
         ("signals.hpp", "stop on signals"), ("net.hpp", "network")]
LOCAL_INCLUDE = re.compile(r'^#include "([^"]+)"\s*$')


def inline(path, seen, out):
    path = path.resolve()
    if path in seen:
        return
    seen.add(path)
    out.append(f"// ---- {path.relative_to(ROOT / 'include').as_posix()} ----\n")
    for line in path.read_text().splitlines(keepends=True):
        match = LOCAL_INCLUDE.match(line)
        if match:
            inline(path.parent / match.group(1), seen, out)
        elif line.strip() != "#pragma once":
            out.append(line)


def generate():
    """The single header and the layers above it, as {target: text}."""
    seen = set()
    out = ["// hotswap single header, generated from include/ by tools/amalgamate.py; do not edit.\n",
           "#pragma once\n"]
    inline(SOURCE, seen, out)
    generated = {TARGET: "".join(out)}
    below = "hotswap.hpp"
    for header, what in ABOVE:
        layer = [f"// hotswap's {what}, generated from include/ by tools/amalgamate.py; do not edit.\n",
                 "#pragma once\n", f'#include "{below}"\n']
        inline(ROOT / "include/hotswap" / header, seen, layer)  # what the layers below have is not inlined twice
        generated[ROOT / "single_include/hotswap" / header] = "".join(layer)
        below = header
    return generated


def main():
    if headers_digest.main(sys.argv[1:]) != 0:
        return 1
    generated = generate()
    if sys.argv[1:] == ["--check"]:
        for target, text in generated.items():
            if not target.exists() or target.read_text() != text:
                print(f"{target.relative_to(ROOT)} is stale: run tools/amalgamate.py and commit the result")
                return 1
            print(f"{target.relative_to(ROOT)} is up to date")
        return 0
    for target, text in generated.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
