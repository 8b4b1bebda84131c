#!/usr/bin/env python3
"""hotswap beside Erlang/OTP (Elixir) and CAF, and its kv service beside redis-server, on the same
machine, in one run, as a report and a chart.

    compare.py run BUILD_DIR OUT_DIR [--rounds N] [--quick] [--only W,...]   run every workload (or those), then report
    compare.py report OUT_DIR                                  the report of OUT_DIR/results.json again

`run` runs each workload on each system (hotswap: BUILD_DIR/benchmarks/hotswap_compare; OTP:
`elixir compare.exs`; CAF: BUILD_DIR/benchmarks/caf_compare; the kv workloads, hotswap-kv's and
redis-server's: `benchmarks/kv_compare.py ... --only WORKLOAD SYSTEM`), interleaved: round after round, each
workload on every system one after the other, the order of the systems turned each round, so that
all of them see the same machine (on a shared VM the host moves the cores and times swing 2-6x for
seconds at a time). A system that is not installed is skipped, and said so. Each run prints
`metric NAME VALUE UNIT` lines; `run` writes them all, with the machine, to OUT_DIR/results.json.

`report` writes OUT_DIR/report.md (the median over rounds of each figure, per system, and the
ratios hotswap/OTP and hotswap/CAF; the kv workloads in a table of their own, with the ratio
hotswap/redis-server) and OUT_DIR/report.svg and report.png, drawn by gnuplot (a
panel a figure, log scale where a panel's figures span more than 10x).
"""
import argparse
import datetime
import json
import os
import pathlib
import platform
import shutil
import statistics
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
SYSTEMS = ["hotswap", "OTP", "CAF"]
KV_SYSTEMS = ["hotswap", "redis-server"]  # the kv workloads' (examples/kv's hotswap-kv beside redis-server 7.0)
# workload: (what it is, the systems that have it, lower is better)
WORKLOADS = {
    "floor": ("ping-pong floor: a cache line bounced between two threads", ["hotswap"], True),
    "call": ("call round trip, idle server, outside client", SYSTEMS, True),
    "cast": ("cast throughput, 1 producer -> 1 server", SYSTEMS, False),
    "upgrade_pause": ("upgrade pause of two servers, idle (suspend, change_code, resume)", ["hotswap", "OTP"], True),
    "upgrade_pause_answered": ("upgrade pause of two servers, each having just answered a call", ["hotswap", "OTP"],
                               True),
    "upgrade_pause_calling": ("upgrade pause of two servers, a client calling one throughout", ["hotswap", "OTP"],
                              True),
    "upgrade_100k": ("upgrade of one server holding 100,000 accounts", ["hotswap", "OTP"], True),
    "upgrade_1m": ("upgrade of one server holding 1,000,000 accounts", ["hotswap", "OTP"], True),
    "load_purge": ("load, then purge, a small module", ["hotswap", "OTP"], True),
    "idle_memory": ("memory per idle server", SYSTEMS, True),
    "churn": ("dynamic child churn: start_child + terminate_child on a dynamic supervisor, a child", SYSTEMS, True),
    "kv_set_get": ("kv service: redis-benchmark -c 50 -t set,get", KV_SYSTEMS, False),
    "kv_set_get_p16": ("kv service: redis-benchmark -c 50 -t set,get -P 16", KV_SYSTEMS, False),
    "kv_idle_memory": ("kv service: RSS per idle connection (2,000 open)", KV_SYSTEMS, True),
    "kv_upgrade_load": ("kv service: kv 1 -> 2 -> 1 under 50 connections' SET/GET (50,000 keys)", ["hotswap"], True),
    "kv_upgrade_idle": ("kv service: kv 1 -> 2 -> 1 with 10,000 idle connections", ["hotswap"], True),
}


def commands(build):
    """Each system's command, or why it is skipped; "kv": the kv workloads' driver, or why they are."""
    found = {"hotswap": [f"{build}/benchmarks/hotswap_compare"]}
    if not os.access(found["hotswap"][0], os.X_OK):
        sys.exit(f"{found['hotswap'][0]} is not built: configure with -DHOTSWAP_BUILD_BENCHMARKS=ON")
    found["OTP"] = ["elixir", str(HERE / "compare.exs")] if shutil.which("elixir") else \
        "Elixir is not installed (apt-get install erlang-nox elixir, or ./tools/run compare)"
    caf = f"{build}/benchmarks/caf_compare"
    found["CAF"] = [caf] if os.access(caf, os.X_OK) else \
        "caf_compare is not built (libcaf-dev was not installed when the build was configured)"
    found["redis-server"] = ["redis-server"] if shutil.which("redis-server") and shutil.which("redis-benchmark") else \
        "redis-server is not installed (apt-get install redis-server redis-tools, or ./tools/run compare)"
    kv = [f"{build}/examples/hotswap-kv", f"{build}/programs/hotswapctl", f"{build}/examples/kv_modules",
          f"{build}/benchmarks/kv_load"]
    found["kv"] = [sys.executable, str(HERE.parent / "kv_compare.py")] + kv if all(map(os.path.exists, kv)) else \
        "hotswap-kv or kv_load is not built (configure with -DHOTSWAP_BUILD_EXAMPLES=ON)"
    return found


def command(found, system, workload):
    """The command that runs `workload` on `system`, or why it cannot run."""
    if not workload.startswith("kv_"):
        return found[system] if isinstance(found[system], str) else found[system] + [workload]
    for needed in ("kv", system) if system != "hotswap" else ("kv",):
        if isinstance(found[needed], str):
            return found[needed]
    return found["kv"] + ["--only", workload, system]


def parse_metrics(text):
    """The `metric NAME VALUE UNIT` lines of a run: {name: (value, unit)}."""
    metrics = {}
    for line in text.splitlines():
        parts = line.split(maxsplit=3)
        if len(parts) == 4 and parts[0] == "metric":
            metrics[parts[1]] = (float(parts[2]), parts[3])
    return metrics


def version(argv, line=-1):
    """A line of what `argv` says of its version (the last: Elixir's; the first: a compiler's)."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        return (done.stdout + done.stderr).strip().splitlines()[line]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "not installed"


def redis_version():
    """redis-server's version (`Redis server v=7.0.15 sha=...`: 7.0.15)."""
    words = [word for word in version(["redis-server", "--version"], 0).split() if word.startswith("v=")]
    return words[0][2:] if words else "not installed"


def machine():
    cpu = "?"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    caf = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "libcaf-dev"], capture_output=True, text=True)
    return {"date": datetime.date.today().isoformat(), "cpu": cpu, "cores": os.cpu_count(),
            "kernel": platform.release(), "compiler": version(["c++", "--version"], 0),
            "elixir": version(["elixir", "--version"]), "redis": redis_version(),
            "caf": caf.stdout.strip() if caf.returncode == 0 and caf.stdout.strip() else "not installed"}


def run(build, out, rounds, quick, only=None):
    systems = commands(build)
    for name, found in systems.items():
        if isinstance(found, str):
            print(f"skipping {'the kv workloads' if name == 'kv' else name}: {found}")
    results = []
    for round_ in range(rounds):
        for workload, (_, having, _) in WORKLOADS.items():
            if only and workload not in only:
                continue
            present = [s for s in having if not isinstance(command(systems, s, workload), str)]
            turned = present[round_ % len(present):] + present[:round_ % len(present)] if present else []
            for system in turned:
                argv = command(systems, system, workload) + (["--quick"] if quick else [])
                done = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
                metrics = parse_metrics(done.stdout)
                if done.returncode != 0 or not metrics:
                    sys.exit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
                shown = ", ".join(f"{name} {value:.4g} {unit}" for name, (value, unit) in metrics.items())
                print(f"[round {round_ + 1}/{rounds}] {workload:<14} {system:<8} {shown}", flush=True)
                results += [{"round": round_ + 1, "workload": workload, "system": system, "metric": name,
                             "value": value, "unit": unit} for name, (value, unit) in metrics.items()]
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"machine": machine(), "rounds": rounds, "quick": quick,
                                                  "results": results}, indent=1) + "\n")
    report(out)


def medians(results):
    """{(workload, metric): {system: (median over rounds, unit)}}, in the order of WORKLOADS."""
    grouped = {}
    for one in results:
        grouped.setdefault((one["workload"], one["metric"]), {}).setdefault(one["system"], []).append(one)
    order = list(WORKLOADS)
    table = {}
    for key in sorted(grouped, key=lambda k: (order.index(k[0]), k[1])):
        table[key] = {system: (statistics.median(o["value"] for o in ones), ones[0]["unit"])
                      for system, ones in grouped[key].items()}
    return table


def number(value):
    """Three significant digits, without an exponent (2,760, not 2.76e+03)."""
    rounded = float(f"{value:.3g}")
    return f"{value:.3g}" if abs(rounded) < 1000 else f"{rounded:,.0f}"


def ratio(table_row, system):
    if "hotswap" not in table_row or system not in table_row or table_row[system][0] == 0:
        return "—"
    return f"{table_row['hotswap'][0] / table_row[system][0]:.2g}×"


def report(out):
    data = json.loads((out / "results.json").read_text())
    table = medians(data["results"])
    m = data["machine"]
    lines = ["# hotswap beside Erlang/OTP and CAF", "",
             f"{m['date']}: {m['cpu']}, {m['cores']} cores, Linux {m['kernel']}; {m['compiler']}; "
             f"{m['elixir']}; CAF {m['caf']}. Median over {data['rounds']} interleaved rounds"
             f"{' (quick: a few iterations each, not figures to quote)' if data['quick'] else ''}.", "",
             "| workload | figure | hotswap | OTP | CAF | hotswap / OTP | hotswap / CAF |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    kv = {key: row for key, row in table.items() if key[0].startswith("kv_")}
    for (workload, metric), row in table.items():
        if (workload, metric) in kv:
            continue
        unit = next(iter(row.values()))[1]
        cells = [f"{number(row[s][0])} {unit}" if s in row else "—" for s in SYSTEMS]
        lines.append(f"| {WORKLOADS[workload][0]} | {metric} | " + " | ".join(cells) +
                     f" | {ratio(row, 'OTP')} | {ratio(row, 'CAF')} |")
    lines += ["", "Lower is better but for cast throughput. Ratios compare across machines; absolute figures do not."]
    if kv:
        lines += ["", "## The kv service beside redis-server", "",
                  f"examples/kv's hotswap-kv beside redis-server {m.get('redis', '?')}, each run on a server started "
                  "for it (benchmarks/kv_compare.py).", "",
                  "| workload | figure | hotswap | redis-server | hotswap / redis-server |", "| --- | --- | --- | --- | --- |"]
        for (workload, metric), row in kv.items():
            unit = next(iter(row.values()))[1]
            cells = [f"{number(row[s][0])} {unit}" if s in row else "—" for s in KV_SYSTEMS]
            lines.append(f"| {WORKLOADS[workload][0]} | {metric} | " + " | ".join(cells) +
                         f" | {ratio(row, 'redis-server')} |")
        lines += ["", "Higher is better for rps, lower for the rest. upgrade_p99: the requests that overlapped "
                  "`hotswapctl kv upgrade`'s run, beside steady_p99, those that overlapped no upgrade."]
    lines += ["", "![the comparison](report.svg)", ""]
    (out / "report.md").write_text("\n".join(lines))
    plot(table, data, out)
    print(f"wrote {out / 'report.md'}, {out / 'report.svg'} and {out / 'report.png'}")


def plot_script(table, data, terminal, output):
    """The gnuplot script that draws the table: a panel a figure, log scale where it spans > 10x."""
    colours = {"hotswap": "0xd62728", "OTP": "0x9467bd", "CAF": "0x1f77b4", "redis-server": "0x2ca02c"}
    columns = 4
    rows = (len(table) + columns - 1) // columns
    m = data["machine"]
    script = [f"set terminal {terminal} size {columns * 330},{rows * 280} font 'sans,10'", "set termoption noenhanced",
              f"set output '{output}'",
              "set style fill solid 0.9 noborder", "set boxwidth 0.6", "set grid ytics", "set format y '%g'",
              f"set multiplot layout {rows},{columns} title \"hotswap, Erlang/OTP, CAF and redis-server on one machine "
              f"({m['date']}, {m['cores']} cores, median of {data['rounds']} rounds; lower is better but for cast and rps)\""]
    for (workload, metric), row in table.items():
        systems = [s for s in SYSTEMS + KV_SYSTEMS[1:] if s in row]
        values = [row[s][0] for s in systems]
        log = min(values) > 0 and max(values) / min(values) > 10
        script += [f"set title '{workload} {metric}'", f"set ylabel '{next(iter(row.values()))[1]}'",
                   "set logscale y" if log else "unset logscale y",
                   f"set yrange [{min(values) / 3:g}:{max(values) * 6:g}]" if log else f"set yrange [0:{max(max(values) * 1.25, 1e-9):g}]",
                   f"set xrange [-0.6:{len(systems) - 0.4}]",
                   "plot '-' using 0:2:3:xtic(1) with boxes lc rgb variable notitle, "
                   "'-' using 0:2:(sprintf('%.3g', $2)) with labels offset 0,0.7 notitle"]
        bars = [f"{s} {v:g} {colours[s]}" for s, v in zip(systems, values)]
        script += bars + ["e"] + [f"{s} {v:g}" for s, v in zip(systems, values)] + ["e"]
    script.append("unset multiplot")
    return "\n".join(script) + "\n"


def plot(table, data, out):
    if not shutil.which("gnuplot"):
        sys.exit("gnuplot is not installed (apt-get install gnuplot-nox, or ./tools/run compare)")
    for terminal, name in (("svg dynamic", "report.svg"), ("pngcairo", "report.png")):
        done = subprocess.run(["gnuplot"], input=plot_script(table, data, terminal, out / name), text=True,
                              capture_output=True)
        if done.returncode != 0:
            sys.exit(f"gnuplot failed on {name}:\n{done.stderr}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    running = sub.add_parser("run")
    running.add_argument("build", type=pathlib.Path)
    running.add_argument("out", type=pathlib.Path)
    running.add_argument("--rounds", type=int, default=5)
    running.add_argument("--quick", action="store_true", help="a few iterations of each workload (the test)")
    running.add_argument("--only", type=lambda text: text.split(","), help="these workloads, comma-separated")
    reporting = sub.add_parser("report")
    reporting.add_argument("out", type=pathlib.Path)
    arguments = parser.parse_args()
    if arguments.command == "run":
        if arguments.only and not set(arguments.only) <= set(WORKLOADS):
            parser.error(f"--only: no such workload: {', '.join(sorted(set(arguments.only) - set(WORKLOADS)))}")
        run(arguments.build.resolve(), arguments.out, arguments.rounds, arguments.quick, arguments.only)
    else:
        report(arguments.out)


if __name__ == "__main__":
    main()
