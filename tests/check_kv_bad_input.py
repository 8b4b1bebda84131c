#!/usr/bin/env python3
"""The kv service (examples/kv) against hostile clients, end to end:

    check_kv_bad_input.py HOTSWAP_KV

hotswap-kv serves on a free port, its open-files limit raised (inherited from this test's, raised to
its hard limit). Each case runs against it, and after each a well-behaved client (one kept connected,
and one new) is still served (PING, SET, GET):
- N idle connections (10,000, or what the open-files limit allows, said so), each answered one
  PING, first (their memory not taken from what the cases before freed): the service serves on,
  its RSS per idle connection is printed (and redis-server's, with its INFO used_memory), then they
  close and connected_clients comes back to its value before;
- malformed RESP (`*x`, `$-5`, a bulk with a wrong terminator, 100,000 nested arrays): the bytes the
  service sends and whether it closes are the same as redis-server 7.0's for the same input (one
  runs on another port in this test: the reference is the real Redis) -- an error reply and a close;
- a declared 512 MB bulk, a few of its bytes sent, then the client closes: the service's RSS
  (/proc/PID/status VmRSS, once it counts the connection closed) grows by a few MB at most;
- a client that sends GETs of a large value and never reads is cut off (the service closes its
  socket, said in its log) while the others are served, the RSS bounded.
Every wait is for an event: a reply, a close read as EOF, a count reached.
"""
import atexit
import os
import re
import resource
import select
import socket
import sys

sys.dont_write_bytecode = True  # the import below leaves no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kv_app import Client, KvService, RedisServer, check, encode, exchange, finish, info  # noqa: E402

kv_path = sys.argv[1]
IDLE_WANTED = 10000
DEADLINE = 120  # seconds: what a wait may take before it is a failure (never waited out otherwise)


# The open-files limit: the idle connections' (the test's) and the services' (inherited).
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
wanted = IDLE_WANTED + 200
limit = wanted if hard == resource.RLIM_INFINITY or hard >= wanted else hard
if soft != resource.RLIM_INFINITY and soft < limit:
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
IDLE = min(IDLE_WANTED, limit - 200)
if IDLE < IDLE_WANTED:
    print(f"the open-files hard limit is {hard}: {IDLE} idle connections, not {IDLE_WANTED}", flush=True)

# Under AddressSanitizer (the sanitize suite), its quarantine keeps freed memory resident, up to
# 256 MB, and its allocator keeps what it freed for each size: the quarantine kept small and free
# memory given back at once, the service's RSS is what it holds, as without it.
asan = os.environ.get("ASAN_OPTIONS", "")
service = KvService([kv_path, "--port", "0", "--serve"],
                    env=dict(os.environ, ASAN_OPTIONS=(asan + ":" if asan else "") + "quarantine_size_mb=4:allocator_release_to_os_interval_ms=0"))
atexit.register(service.kill)  # whatever failed, it does not outlive the test
port = service.port

redis = None  # redis-server 7.0, the reference, if installed
try:
    redis = RedisServer(["--maxclients", str(IDLE + 100)])
    atexit.register(redis.stop)
    redis_port = redis.port
except FileNotFoundError:
    print("redis-server is not installed: the malformed inputs are checked against expected texts", flush=True)


def connect(at):
    sock = socket.create_connection(("127.0.0.1", at), timeout=DEADLINE)
    return sock


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as status:
        return int(re.search(r"^VmRSS:\s+(\d+) kB", status.read(), re.M).group(1))


def open_files_limit(pid):
    with open(f"/proc/{pid}/limits") as limits:
        return re.search(r"^Max open files\s+(\S+)\s+(\S+)", limits.read(), re.M).groups()


def wait_connected(expected, at=None):
    """Until INFO's connected_clients (less the INFO's own connection) is `expected`: asked again
    at each answer (a count reached), at most DEADLINE seconds' worth of answers."""
    got = None
    for _ in range(100000):
        got = int(info(at or port)["connected_clients"]) - 1
        if got == expected:
            return True
    return check(False, f"connected_clients stayed {got}, not {expected}")


kept = Client(port)  # the well-behaved client, connected throughout
turn = 0


def still_served(after):
    """The kept client and a new one are served: PING, SET, GET."""
    global turn
    turn += 1
    for client in (kept, Client(port)):
        try:
            got = client.run(["PING"], ["SET", f"good:{turn}", f"value {turn}"], ["GET", f"good:{turn}"])
        except (ConnectionError, OSError) as failed:
            got = failed
        check(got == ["+PONG", "+OK", f"value {turn}".encode()], f"after {after}, a good client got {got}")
        if client is not kept:
            client.close()


# -- idle connections: served on, RSS per connection; all closed, connected_clients as before --
print(f"open files: the service's limit {open_files_limit(service.pid)}, this test's "
      f"{resource.getrlimit(resource.RLIMIT_NOFILE)}", flush=True)


def idle_connections(at, pid):
    """Opens IDLE connections, each answered a PING (so each is accepted and served), in batches
    the listen backlog holds; returns them and the RSS grown (kB)."""
    connected = int(info(at)["connected_clients"]) - 1
    before = rss_kb(pid)
    used_before = int(info(at).get("used_memory", "0"))
    sockets = []
    ping = encode("PING")
    while len(sockets) < IDLE:
        batch = [connect(at) for _ in range(min(500, IDLE - len(sockets)))]
        for sock in batch:
            sock.sendall(ping)
        for sock in batch:
            got = b""
            while len(got) < 7:
                chunk = sock.recv(7 - len(got))
                if not chunk:
                    break
                got += chunk
            if not check(got == b"+PONG\r\n", f"an idle connection's PING got {got!r}"):
                break
        sockets += batch
    grown = rss_kb(pid) - before
    check(int(info(at)["connected_clients"]) - 1 == connected + IDLE, "connected_clients with the idle connections")
    used = int(info(at).get("used_memory", "0")) - used_before
    return sockets, connected, grown, used


sockets, connected, grown, _ = idle_connections(port, service.pid)
print(f"hotswap-kv: {IDLE} idle connections, RSS grown {grown} kB: {grown * 1024 / IDLE:.0f} bytes each", flush=True)
still_served(f"{IDLE} idle connections")
for sock in sockets:
    sock.close()
wait_connected(connected)
still_served(f"{IDLE} idle connections closed")
if redis:
    sockets, connected, grown, used = idle_connections(redis_port, redis.pid)
    print(f"redis-server: {IDLE} idle connections, RSS grown {grown} kB: {grown * 1024 / IDLE:.0f} bytes each "
          f"(INFO used_memory grown {used} bytes: {used / IDLE:.0f} each)", flush=True)
    for sock in sockets:
        sock.close()
    wait_connected(connected, redis_port)

# -- malformed RESP: the error and the close, as redis-server's --
MALFORMED = [
    ("a multibulk count that is no number", b"*x\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
    ("a negative bulk length", b"*1\r\n$-5\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    ("a bulk length that is no number", b"*1\r\n$x\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    # Redis skips a bulk's two trailing bytes unread: PING is run; then `x` is no '$'.
    ("a bulk with a wrong terminator", b"*1\r\n$4\r\nPINGxx*2\r\n$4\r\nECHO\r\nx1\r\n",
     b"+PONG\r\n-ERR Protocol error: expected '$', got 'x'\r\n"),
    ("100,000 nested arrays", b"*1\r\n" * 100000, b"-ERR Protocol error: expected '$', got '*'\r\n"),
]
for what, payload, expected in MALFORMED:
    got, ended = exchange(("127.0.0.1", port), payload)
    reference = exchange(redis.address(), payload)[0] if redis else expected
    print(f"{what}: {got!r}, then {ended}", flush=True)
    check(got == reference, f"{what}: the service sent {got!r}, redis-server {reference!r}")
    check(got == expected, f"{what}: the service sent {got!r}, not {expected!r}")
    still_served(what)

# -- a declared 512 MB bulk, a few bytes of it, then the client closes --
before = rss_kb(service.pid)
connected = int(info(port)["connected_clients"]) - 1
big = connect(port)
big.sendall(b"*2\r\n$3\r\nSET\r\n$536870912\r\n" + b"x" * 1000)
still_served("a declared 512 MB bulk, its bytes still to come")  # the bulk is read meanwhile
big.close()
wait_connected(connected)
grown = rss_kb(service.pid) - before
print(f"a declared 512 MB bulk: the service's RSS grew by {grown} kB", flush=True)
check(grown < 8 * 1024, f"a declared 512 MB bulk grew the service's RSS by {grown} kB")
still_served("a declared 512 MB bulk")

# -- a client that sends GETs of a large value and never reads: cut off, the others served --
VALUE = 64 * 1024
kept.run(["SET", "large", "v" * VALUE])
before = rss_kb(service.pid)
greedy = connect(port)
greedy.setblocking(False)
get = encode("GET", "large")
poller = select.poll()
poller.register(greedy, select.POLLOUT | select.POLLRDHUP)
sent = 0
cut = False
pending = b""
while sent < 1000000 and not cut:  # bounded: 23 MB of GETs
    events = poller.poll(DEADLINE * 1000)
    if not events:
        break
    mask = events[0][1]
    if mask & (select.POLLRDHUP | select.POLLHUP | select.POLLERR):
        cut = True
        break
    if not pending:
        pending = get * 16
        sent += 16
    try:
        pending = pending[greedy.send(pending):]
    except BlockingIOError:
        pass
    except OSError:
        cut = True
    if sent == 64:
        still_served("a client that does not read, still connected")
peak = rss_kb(service.pid) - before
greedy.close()
print(f"a client that never reads: cut off {cut} after {sent} GETs sent (of {VALUE} bytes each), RSS grown {peak} kB",
      flush=True)
check(cut, f"a client that never reads was not cut off after {sent} GETs")
# Bounded: the replies of 256 commands in flight and 4 MB queued, with room for the allocator.
check(peak < (256 * VALUE + 4 * 1024 * 1024) // 1024 + 32 * 1024, f"RSS grew by {peak} kB under a client that never reads")
still_served("a client that never reads")

kept.close()
status, errors = service.stop()
check(status == 0, f"hotswap-kv exited with {status} on SIGTERM: {errors}")
# The cut-off was the service's (its bound on what a connection has queued), said in a log line.
check(sum("cut off" in line for line in errors.splitlines()) == 1, f"the service's log of the cut-off: {errors}")
if redis:
    redis.stop()

finish(f"kv service: malformed RESP as redis-server answers it, a 512 MB bulk, 100,000 nested arrays, a client that "
      f"never reads and {IDLE} idle connections, each refused or closed or served, the others served throughout")
