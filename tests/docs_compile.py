#!/usr/bin/env python3
"""Compiles every C++ block of the README and docs/ exactly as it is shown, each as its own file.

    docs_compile.py CXX FLAGS...

Users paste the blocks first, so each must compile alone, warning-free under -Werror. A block
whose first line is a comment naming a file (`// examples/servers_quickstart/counter.hpp: ...`)
is that file: later blocks may include it, a name shown twice must be shown the same, and a name
under examples/ must be the repository's file byte for byte (the tests build and run those, and
check what they print). A header is compiled as a file that includes it; a block with
HOTSWAP_MODULE is compiled as hotswap_add_module compiles a module.
"""
import concurrent.futures
import pathlib
import re
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
NAMED = re.compile(r"^// ([\w./-]+\.(?:hpp|cpp))(?::|$)")
MODULE_FLAGS = ["-DHOTSWAP_MODULE_BUILD", "-fvisibility=hidden", "-fPIC"]

cxx, flags = sys.argv[1], sys.argv[2:]
problems = []
files = {}   # name -> text, over all documents in reading order
blocks = []  # (document, number, name or None, text)
for document in DOCUMENTS:
    for number, text in enumerate(re.findall(r"^```cpp\n(.*?)^```", document.read_text(), re.S | re.M), 1):
        named = NAMED.match(text)
        name = named.group(1) if named else None
        where = f"{document.relative_to(ROOT)}, C++ block {number}"
        if name:
            if name in files and files[name] != text:
                problems.append(f"{where} shows {name} differently from an earlier block")
            files[name] = text
            if name.startswith("examples/"):
                path = ROOT / name
                if not path.exists() or path.read_text() != text:
                    problems.append(f"{where} is not {name} as the repository has it: make them the same")
        blocks.append((where, name, text))

with tempfile.TemporaryDirectory() as work:
    work = pathlib.Path(work)
    for name, text in files.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(text)

    def compile_block(index, block):
        where, name, text = block
        if name and name.endswith(".hpp"):
            source = work / f"includes_{index}.cpp"
            source.write_text(f'#include "{name}"\n')
        elif name:
            source = work / name
        else:
            source = work / f"block_{index}.cpp"
            source.write_text(text)
        extra = MODULE_FLAGS if "HOTSWAP_MODULE(" in text else []
        run = subprocess.run([cxx, *flags, *extra, "-I", str(work), "-c", str(source), "-o", str(work / f"{index}.o")],
                             capture_output=True, text=True)
        return None if run.returncode == 0 else f"{where} does not compile as shown:\n{run.stdout}{run.stderr}"

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        problems += [p for p in pool.map(compile_block, range(len(blocks)), blocks) if p]

if problems:
    print("\n\n".join(problems))
    sys.exit(1)
print(f"{len(blocks)} C++ blocks of {len(DOCUMENTS)} documents compile as shown")
