"""The kv service (examples/kv), its clients and the redis-server it is compared with, for the
end-to-end tests that run them (check_kv_service.py, check_kv_bad_input.py, check_kv_commands.py):

    service = KvService([HOTSWAP_KV, "--port", "0", "--serve"], env=...)  # on release kv 1
    client = Client(service.port)
    client.run(["SET", "k", "v"], ["GET", "k"])  # ["+OK", b"v"]: pipelined, replies in order
    client.close()
    status, errors = service.stop()              # SIGTERM, as an operator stops it

    redis = RedisServer(["--maxclients", "10100"])  # redis-server 7.0 on a free port, the reference
    got, ended = exchange(redis.address(), b"*x\r\n")  # bytes sent, read until it closes
    redis.stop()

A test's checks go to `problems` by check(); finish() prints them and exits. Waits are for events
(a line printed, a reply, a close read as EOF), never for amounts of time.
"""
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
TIMEOUT = 120  # seconds: what a wait may take before it is a failure (never waited out otherwise)
READY = re.compile(r"kv: serving on 127\.0\.0\.1:(\d+), release kv 1\n")

problems = []  # what check() found wrong


def check(condition, what):
    if not condition:
        problems.append(what)
        print(f"FAILED: {what}", flush=True)
    return condition


def finish(passed):
    """Exits 1 with the problems listed, or prints `passed` (what the test checked)."""
    if problems:
        print(f"{len(problems)} problems:\n" + "\n".join(problems))
        sys.exit(1)
    print(passed)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def encode(*args):
    """One command as RESP's multibulk; str and int arguments as their UTF-8 text."""
    out = bytearray(b"*%d\r\n" % len(args))
    for arg in args:
        arg = arg if isinstance(arg, bytes) else str(arg).encode()
        out += b"$%d\r\n%s\r\n" % (len(arg), arg)
    return bytes(out)


class Client:
    """A RESP client on a socket: commands sent pipelined, replies read back in order (a bulk as
    bytes or None, an integer as int, an array as a list, a status or an error as its line)."""

    def __init__(self, port, host="127.0.0.1", timeout=TIMEOUT):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buffer, self.at = bytearray(), 0  # what was received, and where the next reply starts

    def _more(self):
        if self.at > 65536:  # consumed: dropped, so that a long pipeline's replies are not copied again and again
            del self.buffer[:self.at]
            self.at = 0
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("the service closed the connection")
        self.buffer += chunk

    def _line(self):
        end = self.buffer.find(b"\r\n", self.at)
        while end < 0:
            self._more()
            end = self.buffer.find(b"\r\n", self.at)
        line = bytes(self.buffer[self.at:end])
        self.at = end + 2
        return line

    def reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"$":
            length = int(rest)
            if length < 0:
                return None
            while len(self.buffer) < self.at + length + 2:
                self._more()
            data = bytes(self.buffer[self.at:self.at + length])
            self.at += length + 2
            return data
        if kind == b"*":
            return [self.reply() for _ in range(int(rest))]
        if kind == b":":
            return int(rest)
        return line.decode()  # +OK, -ERR ...

    def send(self, *commands):
        self.sock.sendall(b"".join(encode(*command) for command in commands))

    def run(self, *commands):
        self.send(*commands)
        return [self.reply() for _ in commands]

    def close(self):
        self.sock.close()


def info(port):
    """INFO's fields, by a connection of its own (counted in total_connections_received)."""
    client = Client(port)
    text = client.run(["INFO"])[0].decode()
    client.close()
    return dict(line.split(":", 1) for line in text.split("\r\n") if ":" in line)


def exchange(address, payload):
    """Sends `payload` (from a thread: the server may close before it takes it all) and reads until
    the server closes: the bytes read and how it ended ("eof", or "reset")."""
    sock = socket.create_connection(address, timeout=TIMEOUT)

    def send():
        try:
            sock.sendall(payload)
        except OSError:
            pass  # closed by the server before all was sent: what the reading side reports

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    got = bytearray()
    ended = "eof"
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += chunk
    except ConnectionResetError:
        ended = "reset"
    sender.join(timeout=TIMEOUT)
    sock.close()
    return bytes(got), ended


class KvService:
    """hotswap-kv started by `command` (its --port 0: it prints the port it took), until stop().
    Its standard error is read as it comes (a full pipe would stop it), and its standard output's
    lines after the first, which says it serves."""

    def __init__(self, command, env=None):
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.pid = self.process.pid
        self.errors, self.lines = [], []
        self.error_reader = threading.Thread(target=lambda: self.errors.extend(self.process.stderr), daemon=True)
        self.error_reader.start()
        ready = self.process.stdout.readline()  # the event: it serves (its control socket is open before)
        found = READY.fullmatch(ready)
        if not found:
            self.kill()
            sys.exit(f"hotswap-kv did not say it serves: {ready!r}{''.join(self.errors)}")
        self.port = int(found.group(1))
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.process.stdout), daemon=True)
        self.reader.start()

    def stop(self, sent=signal.SIGTERM):
        """Ends it as an operator does; returns its exit status and standard error (read whole)."""
        if self.process.poll() is None:
            self.process.send_signal(sent)
        status = self.process.wait(timeout=TIMEOUT)
        self.error_reader.join(timeout=TIMEOUT)
        return status, "".join(self.errors)

    def kill(self):
        """Whatever failed, the service does not outlive the test."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class RedisServer:
    """A redis-server on a free port (`args`: more options) in a temporary directory, until stop().
    A thread reads its log (so that it never blocks on a full pipe) and says when it is ready.
    FileNotFoundError if redis-server is not installed."""

    def __init__(self, args=()):
        self.process = None
        self.log = []
        self.workdir = tempfile.mkdtemp(prefix="kv-redis-server.")
        for _ in range(5):  # another program may take the port between our probe and redis's bind
            self.port = free_port()
            self.process = subprocess.Popen(
                [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", self.workdir, "--daemonize", "no", "--logfile", "", *args],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            ready = threading.Event()

            def read(process=self.process, ready=ready):
                for line in process.stdout:
                    self.log.append(line)
                    if "Ready to accept connections" in line:
                        ready.set()
                ready.set()  # it exited

            threading.Thread(target=read, daemon=True).start()
            ready.wait(TIMEOUT)
            if self.process.poll() is None and ready.is_set():
                self.pid = self.process.pid
                return
            self._end()
        self.stop()
        raise RuntimeError(f"redis-server did not start: {''.join(self.log)}")

    def address(self):
        return ("127.0.0.1", self.port)

    def stop(self):
        self._end()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _end(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
