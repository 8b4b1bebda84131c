#!/usr/bin/env python3
"""Runs the same commands through redis-cli against redis-server 7.0 (the reference, started here)
and against a target, and fails on the first difference, printing both outputs:

    check_kv_commands.py HOST:PORT [--release 1|2]
    check_kv_commands.py --reference [--release 1|2]

HOST:PORT is the service under test (examples/kv). With --reference the target is a second
redis-server started here: the script checked against itself, and every case checked to be
deterministic. --release 1 leaves out kv 2's expiry (EXPIRE, TTL, PERSIST, SET's EX/PX/EXAT/PXAT/
KEEPTTL), which kv 1 does not know and Redis does. Each redis-server runs on a free port with
`--save "" --appendonly no` in a temporary directory, and is stopped at the end whatever happens.

Each case starts from an empty server (FLUSHALL, not compared) and runs its command lines in one
redis-cli session, fed on stdin (so redis-cli also starts as it does interactively, with COMMAND
DOCS); `--no-raw` shows each reply's type. KEYS replies are compared as sets. Some cases send raw
bytes over a socket instead (protocol errors, inline and pipelined commands) and compare the bytes
received until the server closes the connection.
"""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys

sys.dont_write_bytecode = True  # the import below leaves no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kv_app import RedisServer, exchange  # noqa: E402

REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"
TIMEOUT = 60  # seconds; a bound on a hang, not a wait


def quote(arg):
    """An argument as a redis-cli line holds it: double-quoted, with sdssplitargs' escapes."""
    out = []
    for byte in arg.encode():
        c = chr(byte)
        if c in '"\\':
            out.append("\\" + c)
        elif 32 <= byte < 127:
            out.append(c)
        else:
            out.append(f"\\x{byte:02x}")
    return '"' + "".join(out) + '"'


# ---- the cases: (name, [command, ...]) with each command a list of arguments; a name ending in
# " (keys)" compares the replies as sets; EXPIRY marks kv 2's cases ----
EXPIRY = "expiry: "


def cases(release):
    c = []

    def case(name, *commands):
        if release >= 2 or not name.startswith(EXPIRY):
            c.append((name, [list(command) for command in commands]))

    # The connection's own commands.
    case("ping", ["PING"], ["ping", "hello"], ["PING", "a", "b"])
    case("echo", ["ECHO", "hi there"], ["ECHO"], ["ECHO", "a", "b"], ["ECHO", ""])
    case("select", ["SELECT", "16"], ["SELECT", "-1"], ["SELECT", "x"], ["SELECT", "2147483648"],
         ["SELECT", "1"], ["SET", "k", "one"], ["SELECT", "15"], ["GET", "k"], ["SET", "k", "fifteen"],
         ["DBSIZE"], ["SELECT", "1"], ["GET", "k"], ["SELECT", "0"], ["GET", "k"], ["DBSIZE"])
    case("unknown commands", ["foo"], ["foo", "a", "b"], ["FOO", "a" * 200, "b"], ["f" * 200, "x"],
         ["foo", "ab", "x" * 200, "c"], ["foo", "a\r\nb"])
    case("arity", ["GET"], ["GET", "a", "b"], ["SET", "a"], ["GETSET", "a"], ["DEL"], ["EXISTS"], ["INCR"],
         ["DECR", "a", "b"], ["INCRBY", "a"], ["MGET"], ["MSET", "a"], ["MSET", "a", "1", "b"], ["LPUSH", "l"],
         ["RPUSH", "l"], ["LPOP"], ["RPOP"], ["LRANGE", "l", "0"], ["KEYS"], ["DBSIZE", "x"], ["SELECT"],
         ["LPOP", "l", "1", "2"])
    case("containers", ["CONFIG"], ["CONFIG", "GET"], ["config", "foo"], ["COMMAND", "foo"],
         ["COMMAND", "COUNT", "x"])
    case("config", ["CONFIG", "GET", "save"], ["CONFIG", "GET", "appendonly"], ["config", "get", "APPENDONLY"],
         ["CONFIG", "GET", "no-such-setting"])
    # Strings.
    case("get and set", ["GET", "k"], ["SET", "k", "v"], ["GET", "k"], ["SET", "k", "w", "NX"],
         ["SET", "k", "w", "XX"], ["GET", "k"], ["SET", "n", "v", "XX"], ["GET", "n"], ["SET", "n", "v", "NX"],
         ["SET", "k", "x", "NX", "XX"], ["SET", "k", "x", "nx", "nx"], ["SET", "k", "x", "GET"],
         ["SET", "new", "x", "GET"], ["SET", "k", "y", "bogus"], ["SET", "k", "y", "NX", "GET"],
         ["SET", "empty", ""], ["GET", "empty"], ["SET", "bin", "a\x00b\xff"], ["GET", "bin"])
    case("getset", ["GETSET", "k", "a"], ["GETSET", "k", "b"], ["GET", "k"], ["RPUSH", "l", "x"],
         ["GETSET", "l", "v"])
    case("incr and decr", ["INCR", "c"], ["INCR", "c"], ["DECR", "c"], ["DECR", "d"], ["INCRBY", "c", "10"],
         ["INCRBY", "c", "-100"], ["INCRBY", "c", "x"], ["INCRBY", "c", "1.5"], ["INCRBY", "c", "01"],
         ["SET", "s", "abc"], ["INCR", "s"], ["SET", "s", " 1"], ["INCR", "s"], ["SET", "s", "+1"], ["INCR", "s"],
         ["SET", "big", "9223372036854775807"], ["INCR", "big"], ["INCRBY", "big", "-1"],
         ["SET", "small", "-9223372036854775808"], ["DECR", "small"], ["INCRBY", "small", "9223372036854775807"],
         ["INCRBY", "x", "9223372036854775808"], ["RPUSH", "l", "a"], ["INCR", "l"], ["DECR", "l"])
    case("del and exists", ["MSET", "a", "1", "b", "2", "c", "3"], ["EXISTS", "a"], ["EXISTS", "a", "a", "z"],
         ["DEL", "a", "z"], ["DEL", "b", "c", "b"], ["EXISTS", "a", "b", "c"], ["DBSIZE"])
    case("mget and mset", ["MSET", "a", "1", "b", "2"], ["MGET", "a", "b", "z"], ["RPUSH", "l", "x"],
         ["MGET", "l", "a"], ["MSET", "a", "x", "a", "y"], ["GET", "a"], ["MSET", "l", "now a string"],
         ["GET", "l"])
    # Lists.
    case("lists", ["RPUSH", "l", "b", "c"], ["LPUSH", "l", "a", "z"], ["LRANGE", "l", "0", "-1"],
         ["LRANGE", "l", "1", "2"], ["LRANGE", "l", "-2", "100"], ["LRANGE", "l", "3", "1"],
         ["LRANGE", "l", "-100", "-50"], ["LRANGE", "l", "x", "1"], ["LRANGE", "none", "0", "1"], ["LPOP", "l"],
         ["RPOP", "l"], ["RPUSH", "l", "d", "e"], ["RPOP", "l", "3"], ["LPOP", "l", "0"], ["LPOP", "l", "-1"],
         ["LPOP", "l", "x"], ["LPOP", "l", "5"], ["EXISTS", "l"], ["LPOP", "l"], ["LPOP", "l", "2"],
         ["RPOP", "none", "0"])
    case("wrong types", ["SET", "s", "v"], ["LPUSH", "s", "x"], ["RPUSH", "s", "x"], ["LPOP", "s"],
         ["RPOP", "s", "1"], ["LRANGE", "s", "0", "1"], ["RPUSH", "l", "x"], ["GET", "l"], ["INCR", "l"],
         ["INCRBY", "l", "1"], ["SET", "l", "v", "GET"], ["SET", "l", "v"], ["GET", "l"])
    # Every shard.
    keys = [f"key:{i}" for i in range(30)] + ["a*b", "a\\b", "h[e]llo", "hallo", "hello", "hbllo", "x?y", ""]
    mset = ["MSET"] + [part for key in keys for part in (key, "v")]
    case("keys (keys)", mset, ["KEYS", "*"], ["KEYS", "key:1?"], ["KEYS", "key:[12]*"], ["KEYS", "key:[^1]"],
         ["KEYS", "key:[2-1]?"], ["KEYS", "h[ae]llo"], ["KEYS", "h[^e]llo"], ["KEYS", "h[a-b]llo"],
         ["KEYS", "a\\*b"], ["KEYS", "a\\\\b"], ["KEYS", "a*"], ["KEYS", "*\\?*"], ["KEYS", "h\\[e\\]llo"],
         ["KEYS", "h[e"], ["KEYS", "["], ["KEYS", "nothing*"], ["KEYS", "*a*a*a*a*a*a*a*a*a*a*a*a*a*b"],
         ["KEYS", "k*y*:*1*"], ["KEYS", ""], ["KEYS", "**"], ["EXISTS", ""], ["GET", ""])
    case("dbsize and flush", mset, ["DBSIZE"], ["SELECT", "3"], ["SET", "x", "y"], ["DBSIZE"], ["FLUSHDB"],
         ["DBSIZE"], ["SELECT", "0"], ["DBSIZE"], ["FLUSHALL", "now"], ["FLUSHALL", "SYNC", "x"],
         ["FLUSHDB", "x"], ["FLUSHALL", "ASYNC"], ["DBSIZE"], ["SET", "a", "b"], ["FLUSHALL", "sync"], ["DBSIZE"],
         ["FLUSHALL"])
    # kv 2: expiry, with times far enough that nothing expires while the case runs.
    case(EXPIRY + "set", ["SET", "k", "v", "EX", "100"], ["TTL", "k"], ["SET", "k", "v", "PX", "200000"],
         ["TTL", "k"], ["SET", "k", "w", "KEEPTTL"], ["TTL", "k"], ["GET", "k"], ["SET", "k", "w"], ["TTL", "k"],
         ["TTL", "none"], ["SET", "k", "v", "EXAT", "4102444800"], ["SET", "k", "v", "PXAT", "4102444800000"],
         ["SET", "k", "v", "EX", "0"], ["SET", "k", "v", "PX", "-5"], ["SET", "k", "v", "EX", "x"],
         ["SET", "k", "v", "EX", "9223372036854775"], ["SET", "k", "v", "EX", "10", "PX", "10"],
         ["SET", "k", "v", "KEEPTTL", "EX", "10"], ["SET", "k", "v", "EX"], ["SET", "k", "v", "EXAT", "1"],
         ["GET", "k"], ["EXISTS", "k"])
    case(EXPIRY + "expire", ["EXPIRE", "none", "10"], ["SET", "k", "v"], ["EXPIRE", "k", "100"], ["TTL", "k"],
         ["EXPIRE", "k", "200", "NX"], ["EXPIRE", "k", "200", "GT"], ["TTL", "k"], ["EXPIRE", "k", "300", "LT"],
         ["EXPIRE", "k", "50", "LT"], ["TTL", "k"], ["EXPIRE", "k", "5", "NX", "XX"], ["EXPIRE", "k", "5", "GT", "LT"],
         ["EXPIRE", "k", "5", "SOON"], ["EXPIRE", "k", "x"], ["EXPIRE", "k", "9223372036854775807"],
         ["EXPIRE", "k"], ["PERSIST", "k"], ["PERSIST", "k"], ["PERSIST", "none"], ["TTL", "k"],
         ["EXPIRE", "k", "10", "XX"], ["EXPIRE", "k", "10", "GT"], ["SET", "n", "1", "EX", "100"], ["INCR", "n"],
         ["TTL", "n"], ["RPUSH", "l", "a"], ["EXPIRE", "l", "100"], ["TTL", "l"], ["EXPIRE", "k", "-1"],
         ["EXISTS", "k"], ["TTL", "k"], ["EXPIRE", "l", "0"], ["LRANGE", "l", "0", "-1"], ["TTL"], ["PERSIST"])
    return c


def raw_cases():
    """(name, bytes): sent at once; the reply is every byte until the server closes."""
    big_inline = b"a" * (70 * 1024)
    return [
        ("inline and pipelined", b"PING\r\nECHO \"a b\" 'c'\r\n\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nv1\r\n"
                                 b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nset k2 v2\nGET k2\r\nQUIT\r\n"),
        ("empty multibulks", b"*0\r\n*-1\r\nPING\r\nQUIT\r\n"),
        ("nested array", b"*1\r\n*1\r\n$4\r\nPING\r\n"),
        ("not a bulk", b"*2\r\n$3\r\nGET\r\n:1\r\n"),
        ("invalid multibulk length", b"*x\r\n"),
        ("invalid bulk length", b"*1\r\n$-5\r\n"),
        ("bulk length above 512 MB", b"*1\r\n$536870913\r\n"),
        ("unbalanced quotes", b"PING\r\nECHO \"abc\r\nPING\r\n"),
        ("too big inline request", big_inline),
        ("commands before a protocol error", b"SET k v\r\nGET k\r\n*1\r\n$x\r\n"),
    ]


# ---- running the cases ----

def cli(address, commands):
    host, port = address
    script = "".join(" ".join(quote(arg) for arg in command) + "\n" for command in commands)
    run = subprocess.run([REDIS_CLI, "-h", host, "-p", str(port), "--no-raw"], input=script.encode(),
                         capture_output=True, timeout=TIMEOUT)
    return run.stdout.decode(errors="replace") + run.stderr.decode(errors="replace")


def cli_args(address, command):
    """One command as redis-cli's arguments (QUIT: the interactive redis-cli would not send it)."""
    host, port = address
    run = subprocess.run([REDIS_CLI, "-h", host, "-p", str(port), "--no-raw"] + command, capture_output=True,
                         timeout=TIMEOUT)
    return run.stdout.decode(errors="replace") + run.stderr.decode(errors="replace")


def as_sets(output):
    """KEYS replies compared as sets: each array's `N) "key"` lines, unnumbered and sorted."""
    out, group = [], []
    for line in output.splitlines():
        m = re.match(r'\s*\d+\) (.*)$', line)
        if m:
            group.append(m.group(1))
            continue
        out.extend(sorted(group))
        group = []
        out.append(line)
    out.extend(sorted(group))
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", nargs="?", help="HOST:PORT of the service under test")
    parser.add_argument("--reference", action="store_true", help="the target is a second redis-server")
    parser.add_argument("--release", type=int, choices=(1, 2), default=2)
    options = parser.parse_args()
    if bool(options.target) == options.reference:
        parser.error("give HOST:PORT or --reference")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # so that `finally` stops the servers

    servers = []
    try:
        reference = RedisServer()
        servers.append(reference)
        if options.reference:
            target_server = RedisServer()
            servers.append(target_server)
            target = target_server.address()
        else:
            host, _, port = options.target.rpartition(":")
            target = (host or "127.0.0.1", int(port))

        checked = 0
        for name, commands in cases(options.release):
            outputs = []
            for address in (reference.address(), target):
                cli_args(address, ["FLUSHALL"])
                outputs.append(cli(address, commands))
            if name.endswith("(keys)"):
                outputs = [as_sets(output) for output in outputs]
            if outputs[0] != outputs[1]:
                print(f"DIFFERENT: {name}")
                for command in commands:
                    print("  > " + " ".join(quote(arg) for arg in command))
                print(f"--- redis-server:\n{outputs[0]}--- target:\n{outputs[1]}")
                return 1
            checked += len(commands)
        outputs = [cli_args(address, ["QUIT"]) for address in (reference.address(), target)]
        if outputs[0] != outputs[1]:
            print(f"DIFFERENT: QUIT\n--- redis-server:\n{outputs[0]}--- target:\n{outputs[1]}")
            return 1
        for name, data in raw_cases():
            outputs = []
            for address in (reference.address(), target):
                cli_args(address, ["FLUSHALL"])
                outputs.append(exchange(address, data)[0])  # every byte until it closes
            if outputs[0] != outputs[1]:
                print(f"DIFFERENT: raw bytes, {name}: {data[:200]!r}")
                print(f"--- redis-server:\n{outputs[0]!r}\n--- target:\n{outputs[1]!r}")
                return 1
        print(f"same output from redis-server and {'redis-server' if options.reference else options.target}: "
              f"{checked + 1} commands through redis-cli in {len(cases(options.release))} sessions, "
              f"{len(raw_cases())} raw exchanges (release {options.release})")
        return 0
    finally:
        for server in servers:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
