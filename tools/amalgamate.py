#!/usr/bin/env python3
"""Generates single_include/hotswap/hotswap.hpp from include/: every hotswap header inlined once,
in include order, system includes kept. Beside it, single_include/hotswap/releases.hpp and
control.hpp: the layers not in the umbrella header, each including the one below and inlining
the rest. First
it stamps the headers' digest (tools/headers_digest.py), which the single header carries too.

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
RELEASES_SOURCE = ROOT / "include/hotswap/releases.hpp"
RELEASES_TARGET = ROOT / "single_include/hotswap/releases.hpp"
CONTROL_SOURCE = ROOT / "include/hotswap/control.hpp"
CONTROL_TARGET = ROOT / "single_include/hotswap/control.hpp"
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
    """The single header, the releases header and the control header, as {target: text}."""
    seen = set()
    out = ["// hotswap single header, generated from include/ by tools/amalgamate.py; do not edit.\n",
           "#pragma once\n"]
    inline(SOURCE, seen, out)
    releases = ["// hotswap's releases, generated from include/ by tools/amalgamate.py; do not edit.\n",
                "#pragma once\n", '#include "hotswap.hpp"\n']
    inline(RELEASES_SOURCE, seen, releases)  # what hotswap.hpp has is not inlined twice
    control = ["// hotswap's control socket, generated from include/ by tools/amalgamate.py; do not edit.\n",
               "#pragma once\n", '#include "releases.hpp"\n']
    inline(CONTROL_SOURCE, seen, control)
    return {TARGET: "".join(out), RELEASES_TARGET: "".join(releases), CONTROL_TARGET: "".join(control)}


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
