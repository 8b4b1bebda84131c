#!/usr/bin/env python3
"""Changes the layout of a struct that programs and modules share, in a copy of the headers, as a
later hotswap might: a member added to the server core. The test build then stamps the copy's
digest (tools/headers_digest.py) and builds a module from it, which the code server must refuse.

    change_layout.py INCLUDE_DIR
"""
import pathlib
import sys

runtime = pathlib.Path(sys.argv[1]) / "hotswap/detail/runtime.hpp"
text = runtime.read_text()
anchor = "  bool suspended = false;\n"
if anchor not in text:
    sys.exit(f"{runtime}: the server core no longer has `{anchor.strip()}`: update tests/modules/change_layout.py")
runtime.write_text(text.replace(anchor, anchor + "  std::uint64_t added_by_a_later_version = 0;\n", 1))
