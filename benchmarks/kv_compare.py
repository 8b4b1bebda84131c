#!/usr/bin/env python3
"""The kv service (examples/kv, hotswap-kv) beside redis-server 7.0 on the same machine, interleaved:

    kv_compare.py HOTSWAP_KV HOTSWAPCTL MODULES_DIR KV_LOAD [--rounds 3] [--quick]
    kv_compare.py HOTSWAP_KV HOTSWAPCTL MODULES_DIR KV_LOAD --only FIGURE SYSTEM [--quick]

Round after round, each figure on each system, the order of the systems turned each round, each
run on a server started for it (hotswap-kv on a free port, its control socket in a runtime
directory of its own; redis-server with no persistence), stopped after:
- kv_set_get, kv_set_get_p16: `redis-benchmark -c 50 -n N -t set,get --csv`, unpipelined and with
  -P 16: requests per second, p50 and p99 latency of SET and of GET;
- kv_idle_memory: the server's RSS grown by 2,000 idle connections (each answered one PING), a
  connection;
- kv_upgrade_load (hotswap only): kv_load's 50 connections doing SET/GET request-reply (1,000
  keys each: the store holds 50,000), each request timed with its start; `hotswapctl kv upgrade
  kv-2.release.json` and back to kv 1 from outside, the monotonic time taken around each: the
  p99 of the requests that overlap neither (steady) and of those that overlap each, and the
  pause the release handler reports (and how much of it the shards' steps took: their values
  migrated);
- kv_upgrade_idle (hotswap only): the pause of the upgrade and the downgrade with 10,000 idle
  connections open.

Without --only it prints each run's figures as it goes, then the median over rounds of each as
`metric FIGURE.SYSTEM.NAME VALUE UNIT` lines and as a table. With --only (compare.py's use), one
figure on one system, as `metric NAME VALUE UNIT` lines. --quick: a few requests and connections
each, not figures to quote (the test that the driver runs).
"""
import argparse
import array
import csv
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

SYSTEMS = ["hotswap", "redis-server"]
CLIENTS = 50  # redis-benchmark's -c, and kv_load's connections
DEADLINE = 300  # seconds a step may take before the run fails


def fail(what):
    sys.exit(f"kv_compare: {what}")


def raise_open_files(wanted):
    """The open-files limit raised to `wanted` (or the hard limit): the idle connections' and,
    inherited, the servers'. Returns what it is."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = wanted if hard == resource.RLIM_INFINITY or hard >= wanted else hard
    if soft != resource.RLIM_INFINITY and soft < limit:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    return limit


class Server:
    """hotswap-kv or redis-server on a free port of 127.0.0.1, until stop()."""

    def __init__(self, system, paths):
        self.paths = paths
        self.runtime = tempfile.mkdtemp(prefix="kv-compare-")
        os.chmod(self.runtime, 0o700)
        self.env = dict(os.environ, XDG_RUNTIME_DIR=self.runtime)
        if system == "hotswap":
            self.process = subprocess.Popen([paths.kv, "--port", "0", "--serve", "--modules", paths.modules],
                                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=self.env)
            ready = self.process.stdout.readline()  # the event: it serves
            found = re.fullmatch(r"kv: serving on 127\.0\.0\.1:(\d+), release kv 1\n", ready)
            if not found:
                self.stop()
                fail(f"hotswap-kv did not say it serves: {ready!r}")
            self.port = int(found.group(1))
        else:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                self.port = probe.getsockname()[1]
            self.process = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                             "--save", "", "--appendonly", "no", "--maxclients", "10100"],
                                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if not any("Ready to accept connections" in line for line in self.process.stdout):
                self.stop()
                fail("redis-server did not say it accepts connections")
        # Whatever else it prints, read, so that it never blocks on a full pipe.
        threading.Thread(target=self.process.stdout.read, daemon=True).start()

    def ctl(self, *args):
        """`hotswapctl kv ARGS --json`: its reply (the last line)."""
        done = subprocess.run([self.paths.ctl, "kv", *args, "--json"], capture_output=True, text=True, env=self.env,
                              timeout=DEADLINE)
        if done.returncode != 0:
            fail(f"hotswapctl kv {' '.join(args)} exited with {done.returncode}: {done.stdout}{done.stderr}")
        return json.loads(done.stdout.splitlines()[-1])

    def upgrade(self, vsn):
        """hotswap-kv upgraded (or downgraded) to release kv VSN from outside: (report, start_ns, end_ns)."""
        start = time.monotonic_ns()
        reply = self.ctl("upgrade", os.path.join(self.paths.modules, f"kv-{vsn}.release.json"))
        end = time.monotonic_ns()
        if reply.get("ok") is not True:
            fail(f"the upgrade to kv {vsn}: {reply}")
        return reply["result"], start, end

    def rss_kb(self):
        with open(f"/proc/{self.process.pid}/status") as status:
            return int(re.search(r"^VmRSS:\s+(\d+) kB", status.read(), re.M).group(1))

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.runtime, ignore_errors=True)


def percentile(ordered, q):
    """The q-th percentile (nearest rank) of a sorted list."""
    return ordered[max(0, -(-len(ordered) * q // 100) - 1)] if ordered else float("nan")


def shards_us(report):
    """The time of the pause spent changing the shards (migrating the store's values), of an
    upgrade's report."""
    return sum(step["time_us"] for step in report["steps"] if step["to"].startswith("kv::Shard"))


def open_idle(port, count):
    """`count` connections, each answered one PING (so each is accepted and served), opened in
    batches the listen backlog holds."""
    sockets = []
    while len(sockets) < count:
        batch = [socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
                 for _ in range(min(500, count - len(sockets)))]
        for sock in batch:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
        for sock in batch:
            got = b""
            while len(got) < 7:
                chunk = sock.recv(7 - len(got))
                if not chunk:
                    break
                got += chunk
            if got != b"+PONG\r\n":
                fail(f"an idle connection's PING got {got!r}")
        sockets += batch
    return sockets


# -- the figures: each takes a server started for it, returns {name: (value, unit)} --

def throughput(server, options, pipeline):
    """redis-benchmark -c 50 -t set,get --csv (-P 16 if pipeline): rps, p50, p99 of SET and GET."""
    requests = options.requests * (10 if pipeline else 1)
    argv = ["redis-benchmark", "-p", str(server.port), "-c", str(CLIENTS), "-n", str(requests), "-t", "set,get",
            "--csv"] + (["-P", "16"] if pipeline else [])
    done = subprocess.run(argv, capture_output=True, text=True, timeout=DEADLINE)
    rows = list(csv.DictReader(done.stdout.splitlines()))
    if done.returncode != 0 or len(rows) != 2 or re.search(r"error", done.stdout + done.stderr, re.I):
        fail(f"{' '.join(argv)} exited with {done.returncode}: {done.stdout}{done.stderr}")
    metrics = {}
    for row in rows:
        test = row["test"].lower()
        metrics[f"{test}_rps"] = (float(row["rps"]) / 1000, "k req/s")
        metrics[f"{test}_p50"] = (float(row["p50_latency_ms"]) * 1000, "us")
        metrics[f"{test}_p99"] = (float(row["p99_latency_ms"]) * 1000, "us")
    return metrics


def idle_memory(server, options):
    """The RSS grown by options.idle idle connections, a connection."""
    before = server.rss_kb()
    sockets = open_idle(server.port, options.idle)
    grown = server.rss_kb() - before
    for sock in sockets:
        sock.close()
    return {"bytes": (grown * 1024 / options.idle, "B")}


def upgrade_under_load(server, options):
    """kv 1 -> 2 -> 1 while kv_load's 50 connections run: the p99 of the requests overlapping each
    upgrade's window (hotswapctl's run) beside the steady p99, and the pauses reported."""
    with tempfile.TemporaryDirectory() as scratch:
        out = os.path.join(scratch, "samples")
        load = subprocess.Popen([options.paths.load, "--port", str(server.port), "--connections", str(CLIENTS),
                                 "--out", out], stdout=subprocess.PIPE, text=True)
        try:
            ready = load.stdout.readline()  # the event: every connection has had a reply
            if ready != f"kv_load: {CLIENTS} connections running\n":
                fail(f"kv_load did not start: {ready!r}")
            # The steady stretches are what is measured (the requests between the upgrades): a
            # length of time is the point here, not a wait for something to happen.
            time.sleep(options.steady)
            up, up_start, up_end = server.upgrade(2)
            time.sleep(options.steady)
            down, down_start, down_end = server.upgrade(1)
            time.sleep(options.steady)
            load.send_signal(signal.SIGTERM)
            said = load.communicate(timeout=DEADLINE)[0]
            if load.returncode != 0:
                fail(f"kv_load failed ({load.returncode}): {said}")
        finally:  # whatever failed, the load does not outlive the run
            if load.poll() is None:
                load.kill()
                load.wait()
        samples = array.array("q")
        with open(out, "rb") as file:
            samples.frombytes(file.read())
    connections = sum(1 for step in up["steps"] if step["to"].startswith("kv::Connection"))
    if connections < CLIENTS:
        fail(f"the upgrade changed {connections} connection servers, not {CLIENTS}")
    steady, during_up, during_down = [], [], []
    for start, latency in zip(samples[0::2], samples[1::2]):
        end = start + latency
        if start < up_end and end > up_start:
            during_up.append(latency)
        elif start < down_end and end > down_start:
            during_down.append(latency)
        else:
            steady.append(latency)
    steady.sort()
    during_up.sort()
    during_down.sort()
    if not steady or not during_up or not during_down:
        fail(f"no requests to compare: {len(steady)} steady, {len(during_up)} and {len(during_down)} overlapping")
    p99 = percentile(steady, 99)
    # The ratios of this run (the goal: <= 2x), whose median over rounds is steadier on a shared
    # machine than the ratio of the medians.
    return {"steady_p50": (percentile(steady, 50) / 1000, "us"),
            "steady_p99": (p99 / 1000, "us"),
            "upgrade_p99": (percentile(during_up, 99) / 1000, "us"),
            "upgrade_max": (during_up[-1] / 1000, "us"),
            "upgrade_requests": (len(during_up), "requests"),
            "upgrade_p99_ratio": (percentile(during_up, 99) / p99, "x steady"),
            "downgrade_p99": (percentile(during_down, 99) / 1000, "us"),
            "downgrade_p99_ratio": (percentile(during_down, 99) / p99, "x steady"),
            "pause": (up["pause_us"], "us"),
            "pause_shards": (shards_us(up), "us"),
            "downgrade_pause": (down["pause_us"], "us")}


def upgrade_idle(server, options):
    """The pause of kv 1 -> 2 and back with options.idle_upgrade idle connections open."""
    sockets = open_idle(server.port, options.idle_upgrade)
    up = server.upgrade(2)[0]
    down = server.upgrade(1)[0]
    connections = sum(1 for step in up["steps"] if step["to"].startswith("kv::Connection"))
    for sock in sockets:
        sock.close()
    if connections < options.idle_upgrade:
        fail(f"the upgrade changed {connections} connection servers, not {options.idle_upgrade}")
    return {"pause": (up["pause_us"], "us"), "pause_shards": (shards_us(up), "us"),
            "downgrade_pause": (down["pause_us"], "us"),
            "connections": (connections, "connections")}


# figure: (what it measures, its function, the systems that have it)
FIGURES = {
    "kv_set_get": ("redis-benchmark -c 50 -t set,get", lambda s, o: throughput(s, o, False), SYSTEMS),
    "kv_set_get_p16": ("redis-benchmark -c 50 -t set,get -P 16", lambda s, o: throughput(s, o, True), SYSTEMS),
    "kv_idle_memory": ("RSS per idle connection", idle_memory, SYSTEMS),
    "kv_upgrade_load": ("kv 1 -> 2 -> 1 under 50 connections' SET/GET", upgrade_under_load, ["hotswap"]),
    "kv_upgrade_idle": ("kv 1 -> 2 -> 1 with idle connections open", upgrade_idle, ["hotswap"]),
}


def measure(figure, system, options):
    server = Server(system, options.paths)
    try:
        return FIGURES[figure][1](server, options)
    finally:
        server.stop()


def number(value):
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def show(metrics):
    return ", ".join(f"{name} {number(value)} {unit}" for name, (value, unit) in metrics.items())


def run_all(options):
    runs = {}  # (figure, system): [metrics of each round]
    for round_ in range(options.rounds):
        for figure, (_, _, systems) in FIGURES.items():
            turned = systems[round_ % len(systems):] + systems[:round_ % len(systems)]
            for system in turned:
                metrics = measure(figure, system, options)
                print(f"[round {round_ + 1}/{options.rounds}] {figure:<16} {system:<12} {show(metrics)}", flush=True)
                runs.setdefault((figure, system), []).append(metrics)
    medians = {}  # (figure, name): {system: (median, unit)}
    for (figure, system), rounds in runs.items():
        for name, (_, unit) in rounds[0].items():
            value = statistics.median(metrics[name][0] for metrics in rounds)
            medians.setdefault((figure, name), {})[system] = (value, unit)
            print(f"metric {figure}.{system}.{name} {value:.6g} {unit}")
    print(f"\nmedian over {options.rounds} interleaved rounds{' (quick: not figures to quote)' if options.quick else ''}")
    print(f"{'figure':<16} {'metric':<17} {'hotswap':>16} {'redis-server':>16} {'hotswap / redis':>16}")
    for (figure, name), row in medians.items():
        cells = [f"{number(row[s][0])} {row[s][1]}" if s in row else "-" for s in SYSTEMS]
        ratio = f"{row['hotswap'][0] / row['redis-server'][0]:.2f}x" if len(row) == 2 and row["redis-server"][0] else "-"
        print(f"{figure:<16} {name:<17} {cells[0]:>16} {cells[1]:>16} {ratio:>16}")
    ratios = [(metrics["upgrade_p99_ratio"][0], metrics["downgrade_p99_ratio"][0])
              for metrics in runs[("kv_upgrade_load", "hotswap")]]
    print("\nupgrade under load, the p99 of the requests overlapping it / the steady p99 (goal <= 2x), each round: " +
          ", ".join(f"{up:.2f}x (downgrade {down:.2f}x)" for up, down in ratios))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("kv", help="the hotswap-kv program")
    parser.add_argument("ctl", help="hotswapctl")
    parser.add_argument("modules", help="the kv modules and releases (kv-1.release.json, kv-2.release.json)")
    parser.add_argument("load", help="the kv_load client")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a few requests and connections each (the test)")
    parser.add_argument("--only", nargs=2, metavar=("FIGURE", "SYSTEM"), help="one figure on one system")
    options = parser.parse_args()
    options.paths = argparse.Namespace(kv=options.kv, ctl=options.ctl, modules=options.modules, load=options.load)
    options.requests = 2000 if options.quick else 200000  # -P 16: ten times as many
    options.idle = 100 if options.quick else 2000
    options.idle_upgrade = 200 if options.quick else 10000
    options.steady = 0.3 if options.quick else 3.0  # seconds of load before, between and after the upgrades
    limit = raise_open_files(options.idle_upgrade + 500)
    if limit < options.idle_upgrade + 500:
        options.idle_upgrade = limit - 500
        print(f"the open-files hard limit is {limit}: the pause with {options.idle_upgrade} idle connections",
              flush=True)
    for path in (options.kv, options.ctl, options.load):
        if not os.access(path, os.X_OK):
            fail(f"{path} is not built")
    if not shutil.which("redis-server") or not shutil.which("redis-benchmark"):
        fail("redis-server or redis-benchmark is not installed (apt-get install redis-server redis-tools)")
    if options.only:
        figure, system = options.only
        if figure not in FIGURES or system not in FIGURES[figure][2]:
            fail(f"no figure {figure} on {system}")
        for name, (value, unit) in measure(figure, system, options).items():
            print(f"metric {name} {value:.6g} {unit}")
    else:
        run_all(options)


if __name__ == "__main__":
    main()
