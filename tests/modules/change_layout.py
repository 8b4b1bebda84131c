#!/usr/bin/env python3
"""Changes the layout of a struct that programs and modules share, in a copy of the headers, as a
later hotswap might: a member added to the server core. The test build then stamps the copy's
digest (tools/headers_digest.py) and builds a module from it, which the code server must refuse.

    change_layout.py INCLUDE_DIR
"""
import pathlib
import sys

runtime = pathlib.Path(sys.argv[1]) / "hotswap/detail/runtime/server_core.hpp"
lines = runtime.read_text().splitlines(keepends=True)
anchor = "  bool suspended = false;"
at = next((i for i, line in enumerate(lines) if line.startswith(anchor)), None)
if at is None:
    sys.exit(f"{runtime}: the server core no longer has `{anchor.strip()}`: update tests/modules/change_layout.py")
lines.insert(at + 1, "  std::uint64_t added_by_a_later_version = 0;\n")
runtime.write_text("".join(lines))
