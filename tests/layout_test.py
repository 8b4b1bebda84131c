#!/usr/bin/env python3
"""The layout rules of include/hotswap (docs/architecture.md), checked:

1. Every header compiles on its own (the generated ones too), warning-free.
2. A detail header includes only detail headers, and the two vocabulary headers every layer
   speaks (result.hpp, version.hpp), which include nothing else of hotswap.
3. Layers include only downward: a header includes headers of its own layer or of lower ones.
4. Every header is in a layer this script knows: a new folder or public header is placed here
   (and in docs/architecture.md) on purpose.
5. Below the releases layer (what the umbrella header includes), <chrono>, <functional>,
   <memory> and <algorithm> come only through detail/common/std_*.hpp, which take the parts
   used: whole, they would cost as much to compile as the rest of hotswap.
6. A public header holds public API: at most 600 lines, and no detail block. Bodies go to
   impl/<its name>.hpp (as Boost.Asio's impl/), which it includes at its end; machinery that is
   a mechanism of its own, to its layer's detail/ folder.
7. An impl/X.hpp has the layer of X.hpp: it includes detail headers and public headers of its
   own layer or lower ones, and nothing but X.hpp includes it.

    layout_test.py CXX [FLAGS...]     (FLAGS: what a user has, -I for include/ among them)
"""
import concurrent.futures
import os
import pathlib
import re
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
INCLUDE = ROOT / "include"

# Lowest first. A detail folder and the public headers of its layer share a rank.
LAYERS = ["common", "abi", "reflect", "schemas", "migrations", "runtime", "servers", "modules", "releases", "umbrella",
          "development", "control", "signals", "net"]
PUBLIC = {
    "version.hpp": "common", "result.hpp": "common",
    "schemas.hpp": "schemas", "inspect.hpp": "schemas",
    "migrations.hpp": "migrations",
    "servers.hpp": "servers", "sys.hpp": "servers", "supervisors.hpp": "servers",
    "modules.hpp": "modules",
    "releases.hpp": "releases",
    "hotswap.hpp": "umbrella",
    "watch.hpp": "development",
    "control.hpp": "control",
    "signals.hpp": "signals",
    "net.hpp": "net",
}
VOCABULARY = {"hotswap/result.hpp", "hotswap/version.hpp"}
PUBLIC_LINES = 600
DETAIL_BLOCK = re.compile(r"^\s*namespace\s+(?:hotswap::)?detail\b", re.M)
LOCAL_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
HEAVY_INCLUDE = re.compile(r"^\s*#\s*include\s+<(chrono|functional|memory|algorithm)>", re.M)


def layer_of(header):
    """The layer of a header given relative to include/ (hotswap/...), or None."""
    parts = pathlib.PurePosixPath(header).parts
    if len(parts) == 2:
        return PUBLIC.get(parts[1])
    if len(parts) == 3 and parts[1] == "impl":  # the bodies of a public header: its layer
        return PUBLIC.get(parts[2])
    if len(parts) >= 3 and parts[1] == "detail" and parts[2] in LAYERS:
        return parts[2]
    return None


def is_public(header):
    return len(pathlib.PurePosixPath(header).parts) == 2


def public_of(impl):
    """The public header whose bodies impl/X.hpp holds."""
    return "hotswap/" + pathlib.PurePosixPath(impl).name


def check_users():
    """Outside include/, nothing includes an impl/ header: its public header does."""
    problems = []
    for folder in ("tests", "examples", "programs", "benchmarks"):
        for path in sorted((ROOT / folder).rglob("*.[ch]pp")):
            if re.search(r'^\s*#\s*include\s+[<"]hotswap/impl/', path.read_text(errors="replace"), re.M):
                problems.append(f"{path.relative_to(ROOT)}: includes a hotswap/impl/ header: include its public header")
    return problems


def check_includes(headers):
    problems = []
    for header in headers:
        path = INCLUDE / header
        layer = layer_of(header)
        if layer is None:
            problems.append(f"{header}: in no layer (place it in tests/layout_test.py and docs/architecture.md)")
            continue
        is_detail = "/detail/" in header
        text = path.read_text()
        if is_public(header):
            lines = text.count("\n")
            if lines > PUBLIC_LINES:
                problems.append(f"{header}: {lines} lines, over {PUBLIC_LINES}: a public header holds declarations; "
                                f"move bodies to hotswap/impl/{pathlib.PurePosixPath(header).name} (included at its "
                                f"end) and machinery to detail/")
            for match in DETAIL_BLOCK.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                problems.append(f"{header}:{line}: a detail block in a public header: move it to detail/ (a "
                                f"mechanism of its own) or to hotswap/impl/{pathlib.PurePosixPath(header).name} "
                                f"(bodies)")
        for included in LOCAL_INCLUDE.findall(text):
            target = (path.parent / included).resolve().relative_to(INCLUDE.resolve()).as_posix()
            if not (INCLUDE / target).exists():
                problems.append(f"{header}: includes {included}, which does not exist")
                continue
            if is_detail and "/detail/" not in target and target not in VOCABULARY:
                problems.append(f"{header}: a detail header includes the public {target}")
            if header in VOCABULARY and ("/detail/" not in target or LOCAL_INCLUDE.search((INCLUDE / target).read_text())):
                problems.append(f"{header}: a vocabulary header includes {target} (only detail headers that "
                                f"include nothing of hotswap)")
            if target.startswith("hotswap/impl/") and header != public_of(target):
                problems.append(f"{header}: includes {target}, which only {public_of(target)} includes")
            target_layer = layer_of(target)
            if target_layer is None or LAYERS.index(target_layer) > LAYERS.index(layer):
                problems.append(f"{header} ({layer}) includes {target} ({target_layer}): layers include only downward")
        light = LAYERS.index(layer) < LAYERS.index("releases") and not header.startswith("hotswap/detail/common/std_")
        for heavy in HEAVY_INCLUDE.findall(path.read_text()) if light else []:
            problems.append(f"{header}: includes <{heavy}>; include detail/common/std_*.hpp for the parts it uses")
    return problems


def compiles_alone(cxx, flags, header):
    with tempfile.TemporaryDirectory() as work:
        source = pathlib.Path(work) / "alone.cpp"
        source.write_text(f"#include <{header}>\n")
        done = subprocess.run([cxx, *flags, "-fsyntax-only", str(source)], capture_output=True, text=True)
    if done.returncode != 0:
        return f"{header} does not compile on its own:\n{done.stderr[:3000]}"
    return None


def main(arguments):
    cxx, flags = arguments[0], arguments[1:]
    headers = sorted(p.relative_to(INCLUDE).as_posix() for p in (INCLUDE / "hotswap").rglob("*.hpp"))
    problems = check_includes(headers) + check_users()
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        problems += [p for p in pool.map(lambda h: compiles_alone(cxx, flags, h), headers) if p]
    for problem in problems:
        print(problem)
    print(f"{len(headers)} headers: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
