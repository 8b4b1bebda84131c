#!/usr/bin/env python3
"""The comparison's parsing, report and chart, from fixed inputs: a run's output parsed into its
figures, and the report of tests/compare/results.json (three rounds of a few workloads, each
figure's median the middle one), checked exactly: the medians, the ratios, the machine line, the
kv service's rows in a table of their own beside redis-server's, and that gnuplot drew an SVG and
a PNG. Not timed.

    check_compare_report.py COMPARE_PY
"""
import importlib.util
import pathlib
import shutil
import subprocess
import sys
import tempfile

compare = sys.argv[1]
fixed = pathlib.Path(__file__).resolve().parent / "compare" / "results.json"
problems = []

# A run's output: its metric lines, and whatever else it printed (Elixir's warnings, say).
spec = importlib.util.spec_from_file_location("compare", compare)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
parsed = module.parse_metrics("warning: something\nmetric p50 1.25 us\nmetric throughput 33.5 M msg/s\nmetric bad\n")
if parsed != {"p50": (1.25, "us"), "throughput": (33.5, "M msg/s")}:
    problems.append(f"parse_metrics read {parsed}")

with tempfile.TemporaryDirectory() as out:
    out = pathlib.Path(out)
    shutil.copy(fixed, out / "results.json")
    done = subprocess.run([sys.executable, compare, "report", str(out)], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"compare.py report failed:\n{done.stdout}{done.stderr}")
    report = (out / "report.md").read_text()
    expected = [
        "2026-12-01: Test CPU, 2 cores, Linux 6.1.0; c++ (Debian 12.2.0-14) 12.2.0; Elixir 1.14.0 (compiled with "
        "Erlang/OTP 24); CAF 0.17.6-2.1+b1. Median over 3 interleaved rounds.",
        "| ping-pong floor: a cache line bounced between two threads | p50 | 0.2 us | — | — | — | — |",
        "| call round trip, idle server, outside client | p50 | 0.3 us | 3 us | 100 us | 0.1× | 0.003× |",
        "| cast throughput, 1 producer -> 1 server | throughput | 40 M msg/s | 2 M msg/s | — | 20× | — |",
        "| upgrade pause of two servers, idle (suspend, change_code, resume) | p50 | 3 us | 9 us | — | 0.33× | — |",
        "| dynamic child churn: start_child + terminate_child on a dynamic supervisor, a child | p50 | 9 us | 11 us | "
        "45 us | 0.82× | 0.2× |",
        "## The kv service beside redis-server",
        "examples/kv's hotswap-kv beside redis-server 7.0.15, each run on a server started for it "
        "(benchmarks/kv_compare.py).",
        "| workload | figure | hotswap | redis-server | hotswap / redis-server |",
        "| kv service: redis-benchmark -c 50 -t set,get | get_p99 | 600 us | 400 us | 1.5× |",
        "| kv service: redis-benchmark -c 50 -t set,get | set_rps | 100 k req/s | 125 k req/s | 0.8× |",
        "| kv service: RSS per idle connection (2,000 open) | bytes | 2,500 B | 1,200 B | 2.1× |",
        "| kv service: kv 1 -> 2 -> 1 under 50 connections' SET/GET (50,000 keys) | upgrade_p99 | 900 us | — | — |",
    ]
    for line in expected:
        if line not in report.splitlines():
            problems.append(f"report.md lacks the line: {line}")
    rows = [line for line in report.splitlines() if line.startswith("| ") and not line.startswith("| workload")]
    if len(rows) != 11:  # each table's header's rule, and one row per figure
        problems.append(f"report.md has {len(rows)} table rows, not 11 (9 figures and 2 rules): {rows}")
    # The kv rows after the kv table's heading, the others before it.
    lines = report.splitlines()
    heading = lines.index("## The kv service beside redis-server") if "## The kv service beside redis-server" in lines \
        else -1
    misplaced = [line for at, line in enumerate(lines) if line in rows and not line.startswith("| ---") and
                 (at > heading) != line.startswith("| kv service:")]
    if misplaced:
        problems.append(f"report.md has rows in the other table than theirs: {misplaced}")
    svg, png = (out / "report.svg").read_text(), (out / "report.png").read_bytes()
    if "<svg" not in svg or "call p50" not in svg or "upgrade_pause p50" not in svg or "churn p50" not in svg or \
            "kv_set_get set_rps" not in svg or "kv_upgrade_load upgrade_p99" not in svg:
        problems.append("report.svg is not the chart: no <svg>, or a panel's title missing")
    if not png.startswith(b"\x89PNG\r\n\x1a\n") or len(png) < 10_000:
        problems.append(f"report.png is not a chart ({len(png)} bytes)")
for problem in problems:
    print("FAILED:", problem)
print(f"{len(problems)} problem(s)")
sys.exit(1 if problems else 0)
