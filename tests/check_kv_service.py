#!/usr/bin/env python3
"""The kv service (examples/kv) end to end, with clients no one here wrote:

    check_kv_service.py HOTSWAP_KV HOTSWAPCTL MODULES_DIR BUILD_DIR

The command lines the README's section on the service shows (build, run, redis-benchmark, and
`hotswapctl kv upgrade` to kv 2 and back), the same as docs/net.md's, run here as shown, on this
build (BUILD_DIR for build/demo) with a free port for 6380 (hotswap-kv's `--port 0`: it prints the
one it took) and redis-benchmark's -n made BENCHMARK_REQUESTS (the docs' lasts long enough for a
reader to type the upgrade in a Release build). hotswap-kv's modules and releases are the build's,
MODULES_DIR, its control socket in a runtime directory of its own. On release kv 1,
tests/check_kv_commands.py compares redis-cli sessions against it with a real redis-server's.
100,000 keys are written with known values (of 0 to 300 bytes and 64 KiB, CR LF, NUL and every
byte among them), pipelined; then the docs' `hotswapctl kv upgrade kv-2.release.json` runs from
outside while the docs' redis-benchmark (-c 50 -t set,get,incr -q) is going: redis-benchmark
exits 0 and prints no error, and the keys read back byte-equal, with no expiry; the service's
accepted connections (INFO's total_connections_received) grew by redis-benchmark's clients (50 a
test) and its CONFIG GET's only: none dropped and reopened. check_kv_commands.py runs for release 2
(expiry); the 100,000 keys are written again, half with a TTL (each its own, an hour and more),
the TTLs read back in range; three idle clients stay connected; the docs' downgrade to kv 1, under
redis-benchmark pipelined (-P 16 -t set, its 50 connections open), drops the TTLs (kv 1 no longer
knows TTL or EXPIRE, the idle clients too, their database still selected) and keeps every key
byte-equal; check_kv_commands.py runs for release 1 again. SIGTERM stops the service: exit status
0. Every wait is for an event (a line printed, a reply, redis-benchmark's progress, the service's
connections, a process's end).
"""
import json
import math
import os
import pathlib
import random
import re
import shlex
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # the import below leaves no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kv_app import Client, KvService, check, finish, info  # noqa: E402

kv_path, ctl_path, modules, build = sys.argv[1:5]
here = os.path.dirname(os.path.abspath(__file__))
ROOT = pathlib.Path(here).parent

# ---- the command lines the docs show for the service: the README's section and docs/net.md's ----
SECTIONS = [("README.md", "## A Redis-protocol server"), ("docs/net.md", "## examples/kv")]
SHOWN_BUILD, SHOWN_PORT = "build/demo", "6380"
# redis-benchmark's requests a test, here: all 50 connections open and busy when the upgrade starts,
# each test long enough that the upgrade falls inside one (a connection that closes during the
# pause is left out of the release, and one that opens starts on the version current then).
BENCHMARK_REQUESTS = "100000"


def shown(document, heading=None):
    """The command lines of the ```sh blocks of the section under `heading` (None: of every section),
    as words (a `# comment` after a command is the shell's)."""
    lines, inside, fenced, language, continued = [], heading is None, False, "", ""
    for line in (ROOT / document).read_text().splitlines():
        if line.startswith("```"):
            fenced, language = not fenced, line[3:]
        elif not fenced and line.startswith("#") and heading is not None:
            inside = line.startswith(heading)
        elif inside and fenced and language == "sh" and line.strip():
            if line.endswith("\\"):  # the command goes on on the next line
                continued += line[:-1]
                continue
            lines.append(shlex.split(continued + line, comments=True))
            continued = ""
    return lines


def for_the_service(words):
    """A line addressed to the service: hotswap-kv, redis-benchmark, `hotswapctl kv`."""
    program = os.path.basename(words[0]) if words else ""
    return program in ("hotswap-kv", "redis-benchmark") or (program == "hotswapctl" and words[1:2] == ["kv"])


def as_run(words):
    """A shown line as it runs here: build/demo's programs, modules and tree this build's; its port
    (--port, -p) 0 for hotswap-kv (a free one), the service's for a client; redis-benchmark's -n."""
    paths = {f"{SHOWN_BUILD}/examples/hotswap-kv": kv_path, f"{SHOWN_BUILD}/programs/hotswapctl": ctl_path,
             f"{SHOWN_BUILD}/examples/kv_modules": modules, SHOWN_BUILD: build}
    out = []
    for before, word in zip([None] + words, words):
        if before in ("--port", "-p"):
            check(word == SHOWN_PORT, f"the docs show port {word} in {shlex.join(words)}, not {SHOWN_PORT}")
            word = "0" if words[0].endswith("hotswap-kv") else "PORT"
        elif before == "-n" and words[0] == "redis-benchmark":
            word = BENCHMARK_REQUESTS
        for path, ours in paths.items():
            if word == path or word.startswith(path + "/"):
                word = ours + word[len(path):]
                break
        out.append(word)
    return out


SHOWN = {document: shown(document, heading) for document, heading in SECTIONS}
LINES = SHOWN["README.md"]
check(all(lines == LINES for lines in SHOWN.values()), f"docs/net.md shows other kv command lines than the README's: "
      f"{SHOWN}")
# The docs' other lines for the service would run nowhere (check_docs_commands.py leaves them to this test).
DOCUMENTS = ["README.md"] + [str(path.relative_to(ROOT)) for path in sorted((ROOT / "docs").glob("*.md")) +
                             sorted((ROOT / "examples").glob("*/README*"))]
elsewhere = [(document, words) for document in DOCUMENTS for words in shown(document) if for_the_service(words)]
check(len(elsewhere) == sum(1 for lines in SHOWN.values() for words in lines if for_the_service(words)),
      f"the docs show lines for the kv service outside the sections this test runs ({SECTIONS}): {elsewhere}")
PROGRAMS = [os.path.basename(words[0]) if words else "" for words in LINES]
if PROGRAMS != ["cmake", "hotswap-kv", "redis-benchmark", "hotswapctl", "hotswapctl"]:
    sys.exit(f"the README's kv section shows other lines than build, run, redis-benchmark, and hotswapctl's upgrade "
             f"and downgrade (this test runs those): {LINES}")
BUILD_LINE, SERVE_LINE, BENCHMARK_LINE, UPGRADE, DOWNGRADE = map(as_run, LINES)
check(UPGRADE[1:] == ["kv", "upgrade", os.path.join(modules, "kv-2.release.json")] and
      DOWNGRADE[1:] == ["kv", "upgrade", os.path.join(modules, "kv-1.release.json")],
      f"the README shows other hotswapctl lines for the service than the upgrade and downgrade: {LINES[3:]}")
BENCHMARK = BENCHMARK_LINE  # its -p PORT, the service's
CLIENTS = int(BENCHMARK[BENCHMARK.index("-c") + 1]) if "-c" in BENCHMARK else 50
TESTS = tuple(BENCHMARK[BENCHMARK.index("-t") + 1].upper().split(",")) if "-t" in BENCHMARK else ()
check("-q" in BENCHMARK and CLIENTS == 50 and TESTS == ("SET", "GET", "INCR"),
      f"the README's redis-benchmark is not -c 50 -t set,get,incr -q: {LINES[2]}")
# The downgrade's: pipelined (commands in flight in every connection across the transaction, their
# replies handled by the new code), one test, its 50 connections all open (none opening) when it starts: a
# connection accepted while a downgrade runs starts on the version left, still current until the
# end (the release handler's note "kv.connection vsn 2 is still used by ...: it stays current").
BENCHMARK_PIPELINED = ["redis-benchmark", "-c", "50", "-n", "400000", "-P", "16", "-t", "set", "-q", "-p", "PORT"]

# ---- the known keys ----
KEYS = 100000
BATCH = 1000  # commands sent at once; two batches in flight (the service works on one while the next is made)
# The bytes values are cut from: every byte, CR LF, RESP's own syntax, and random ones.
POOL = (bytes(range(256)) + b"\r\n\r\n*1\r\n$3\r\nSET\r\n\x00\r" + random.Random(29).randbytes(3000)) * 24


def key(i):
    return f"kvtest:{i}"


def value(i, generation):
    """Key i's known value: its generation and number, then 0 to 300 bytes of POOL (64 KiB for one
    key in 1,000), from a place of its own."""
    length = 65536 + i % 13 if i % 1000 == 999 else (i * 7) % 301
    start = (i * 131) % (len(POOL) - 65536 - 13)
    return b"%s %d:" % (generation.encode(), i) + POOL[start:start + length]


def ttl(i):
    """Key i's TTL in seconds under kv 2, if it has one (the even keys): an hour and more, a minute
    apart from one key to the next (more than the test takes), so that one key's is not another's."""
    return 3600 + (i % 1000) * 60


def batches(commands_of):
    """Runs commands_of(numbers) for each batch of key numbers on one connection, the next batch
    sent before the replies of one are read (their replies, well under what the service queues for
    a client, are read in turn): the replies, in order."""
    client = Client(port)
    replies, in_flight = [], []
    for start in range(0, KEYS, BATCH):
        commands = commands_of(range(start, min(start + BATCH, KEYS)))
        client.send(*commands)
        in_flight.append(len(commands))
        if len(in_flight) == 2:
            replies += [client.reply() for _ in range(in_flight.pop(0))]
    for count in in_flight:
        replies += [client.reply() for _ in range(count)]
    client.close()
    return replies


def write_keys(generation, with_ttl=False):
    """KEYS keys with known values; with_ttl: the even ones with their TTL (SET ... EX)."""
    replies = batches(lambda numbers: [["SET", key(i), value(i, generation)] +
                                       (["EX", ttl(i)] if with_ttl and i % 2 == 0 else []) for i in numbers])
    check(replies == ["+OK"] * KEYS, f"SET of the known keys ({generation}): {set(map(str, replies))}")


def read_keys(generation, what):
    """The known keys, read back (MGET, 100 keys each) byte-equal."""
    got = batches(lambda numbers: [["MGET", *map(key, numbers[j:j + 100])] for j in range(0, len(numbers), 100)])
    values = [one for reply in got for one in (reply if isinstance(reply, list) else [reply])]
    wrong = [i for i in range(KEYS) if i >= len(values) or values[i] != value(i, generation)]
    first = f"kvtest:{wrong[0]}, {values[wrong[0]][:80] if wrong[0] < len(values) else None!r}" if wrong else ""
    check(not wrong, f"{what}: {len(wrong)} of {KEYS} keys read back wrong (the first: {first})")


def ttls():
    return batches(lambda numbers: [["TTL", key(i)] for i in numbers])


def ctl(*args):
    """hotswapctl kv ARGS --json (the only kv in its runtime directory): its reply, the last line."""
    return ctl_run([ctl_path, "kv", *args])


def ctl_run(command):
    """A hotswapctl command line, with --json: its reply, the last line (checked for exit status 0)."""
    run = subprocess.run(command + ["--json"], capture_output=True, text=True, env=env, timeout=120)
    check(run.returncode == 0, f"{shlex.join(command[1:])} exited with {run.returncode}: {run.stdout}{run.stderr}")
    out = run.stdout.splitlines()
    return json.loads(out[-1]) if out else {}


def commands_match(release):
    run = subprocess.run([sys.executable, os.path.join(here, "check_kv_commands.py"), f"127.0.0.1:{port}", "--release",
                          str(release)], capture_output=True, text=True, timeout=600)
    print(run.stdout + run.stderr, end="", flush=True)
    check(run.returncode == 0, f"check_kv_commands.py --release {release} failed")


def connection_servers():
    return sum(1 for one in ctl("status").get("result", {}).get("servers", [])
               if one.get("implementation", "").startswith("kv::Connection"))


def upgrade_under_benchmark(upgrade, command, tests, open_before=0):
    """The `hotswapctl kv upgrade` line `upgrade` once redis-benchmark's requests flow; checks
    redis-benchmark, and that the service accepted no connection but its clients: none dropped and
    reopened."""
    manifest = upgrade[-1]
    accepted_before = int(info(port)["total_connections_received"])
    benchmark = subprocess.Popen([str(port) if word == "PORT" else word for word in command], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT)
    output = bytearray()
    while b"rps=" not in output:  # the event: its first progress line, requests flowing
        chunk = benchmark.stdout.read1(4096)
        if not chunk:
            break
        output += chunk
    check(b"rps=" in output, f"redis-benchmark showed no progress: {output.decode(errors='replace')}")
    while open_before and connection_servers() < open_before and benchmark.poll() is None:
        time.sleep(0.02)  # between two looks at the service's connections, not an amount waited for
    upgraded = ctl_run(upgrade)
    running = benchmark.poll() is None
    output += benchmark.stdout.read()
    status = benchmark.wait(timeout=600)
    text = output.decode(errors="replace").replace("\r", "\n")
    steps = upgraded.get("result", {}).get("steps", [])
    connections = sum(1 for step in steps if step.get("to", "").startswith("kv::Connection"))
    shards = sum(1 for step in steps if step.get("to", "").startswith("kv::Shard"))
    pause = upgraded.get("result", {}).get("pause_us")
    print(f"upgrade to {os.path.basename(manifest)} under redis-benchmark: ok {upgraded.get('ok')}, "
          f"{shards} shards and {connections} connections changed, paused {pause} us", flush=True)
    for note in upgraded.get("result", {}).get("notes", []):
        print(f"  note: {note}", flush=True)
    check(upgraded.get("ok") is True, f"the upgrade to {manifest}: {upgraded}")
    check(shards == 4, f"the upgrade changed {shards} shards, not 4")
    check(connections >= open_before, f"the upgrade changed {connections} connections, not {open_before}")
    check(running, "redis-benchmark ended before the upgrade did: it did not run across it")
    check(status == 0, f"redis-benchmark exited with {status}: {text}")
    check(not re.search(r"error|closed|refused", text, re.I), f"redis-benchmark printed an error: {text}")
    for test in tests:
        check(re.search(rf"^{test}: [\d.]+ requests per second", text, re.M), f"no {test} result: {text}")
    # redis-benchmark opens its 50 clients for each test, and one connection before them (its CONFIG
    # GET, as redis-server counts it too); this INFO's connection is one more.
    accepted = int(info(port)["total_connections_received"]) - accepted_before
    expected = CLIENTS * len(tests) + 1 + 1
    print(f"accepted during the run: {accepted} (redis-benchmark's {CLIENTS * len(tests)} clients, its CONFIG GET, "
          "the INFO)", flush=True)
    check(accepted == expected, f"the service accepted {accepted} connections under redis-benchmark, not {expected}")
    print("\n".join(line for line in text.splitlines() if "requests per second" in line), flush=True)


def timed(what, run, *args):
    started = time.monotonic()
    result = run(*args)
    print(f"{what}: {time.monotonic() - started:.1f} s", flush=True)
    return result


# -- the docs' build line: the programs are built (here, already: nothing to do) --
built = subprocess.run(BUILD_LINE, capture_output=True, text=True, timeout=3600)
check(built.returncode == 0, f"{shlex.join(BUILD_LINE)} exited with {built.returncode}: {built.stdout}{built.stderr}")
if built.returncode != 0:
    finish("")

# -- the docs' run line --
runtime = tempfile.mkdtemp(prefix="hotswap-kv-")
os.chmod(runtime, 0o700)
env = dict(os.environ, XDG_RUNTIME_DIR=runtime)
service = KvService(SERVE_LINE, env=env)
port = service.port
try:
    # -- kv 1: the commands as redis-server answers them --
    commands_match(1)
    timed(f"{KEYS} keys written", write_keys, "one")

    # -- kv 1 -> 2 under redis-benchmark: the keys stay byte-equal, with no expiry --
    upgrade_under_benchmark(UPGRADE, BENCHMARK, TESTS, CLIENTS)
    timed(f"{KEYS} keys read back", read_keys, "one", "after the upgrade to kv 2")
    check(timed(f"{KEYS} TTLs read", ttls) == [-1] * KEYS, "after the upgrade to kv 2, a key has an expiry")
    commands_match(2)

    # -- kv 2 -> 1 under redis-benchmark: the keys stay byte-equal, their TTLs dropped --
    written = time.monotonic()
    timed(f"{KEYS} keys written, half with a TTL", write_keys, "two", True)
    got = timed(f"{KEYS} TTLs read", ttls)
    elapsed = math.ceil(time.monotonic() - written)  # the TTLs counted down meanwhile, at most this
    wrong = [i for i in range(KEYS) if i >= len(got) or
             not (isinstance(got[i], int) and ttl(i) - elapsed - 1 <= got[i] <= ttl(i) if i % 2 == 0 else got[i] == -1)]
    first = f"kvtest:{wrong[0]}: {got[wrong[0]] if wrong[0] < len(got) else None}, set {ttl(wrong[0])}" if wrong else ""
    check(not wrong, f"under kv 2, {len(wrong)} TTLs out of their range (the first: {first}; written {elapsed} s "
          "ago at most)")
    idle = [Client(port) for _ in range(3)]  # connections open across the downgrade, idle
    check(all(one.run(["SELECT", "1"], ["SET", "idle", "kept"]) == ["+OK", "+OK"] for one in idle), "idle clients")
    upgrade_under_benchmark(DOWNGRADE, BENCHMARK_PIPELINED, ("SET",), len(idle) + 50)
    read_keys("two", "after the downgrade to kv 1")
    for one in idle:  # still connected, on kv 1's code, their database still selected
        got = one.run(["GET", "idle"], ["EXPIRE", "idle", "10"])
        check(got == [b"kept", "-ERR unknown command 'EXPIRE', with args beginning with: 'idle' '10' "],
              f"an idle client after the downgrade: {got}")
        one.close()
    asking = Client(port)
    got = asking.run(["TTL", key(0)])[0]
    asking.close()
    check(got == "-ERR unknown command 'TTL', with args beginning with: 'kvtest:0' ", f"kv 1 still answers TTL: {got}")
    commands_match(1)

    # -- SIGTERM: the listener stops, then the servers; exit status 0 --
    status, errors = service.stop()
    check(status == 0, f"hotswap-kv exited with {status} on SIGTERM: {errors}")
    check("stopped (SIGTERM)" in errors, f"hotswap-kv did not say it stopped: {errors}")
finally:  # whatever failed, the service does not outlive the test
    service.kill()

finish("kv service: the docs' command lines as shown, commands as redis-server's on kv 1 and kv 2, upgraded and "
       f"downgraded under redis-benchmark, {KEYS} keys kept byte-equal each way (with their TTLs on kv 2), stopped by "
       "SIGTERM")
