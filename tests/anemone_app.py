"""The Anemone app served with its control socket open, for the end-to-end tests that operate it
from outside (check_operator.py, check_release_sequence.py, check_docs_commands.py, check_fleet.py,
check_grace.py, check_release_4.py):

    app = AnemoneApp(ANEMONE_LIVE, HOTSWAPCTL, MODULES_DIR)  # on release anemone 2 (args=[...]: more arguments)
    app.wait_for_ticks(2)
    ... hotswapctl with env=app.env ...
    app.stop()

`anemone_live --serve PERIOD MODULES_DIR` runs with its socket in a runtime directory of its own
(XDG_RUNTIME_DIR, in `env`: hotswapctl run with it finds the app and nothing else); its lines are
read as they come. Waits are for events (a tick printed, the socket listed by hotswapctl), never
for amounts of time.
"""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

SCORES = re.compile(r"alice: (\d+), bob: (\d+)$")


class AnemoneApp:
    def __init__(self, app_path, ctl_path, modules, period_ms=20, prefix="hotswap-app-", args=()):
        self.ctl_path = ctl_path
        self.problems = []  # what check() found wrong
        self.runtime = tempfile.mkdtemp(prefix=prefix)
        os.chmod(self.runtime, 0o700)
        self.env = dict(os.environ, XDG_RUNTIME_DIR=self.runtime)
        self.process = subprocess.Popen([app_path, "--serve", str(period_ms), modules, *args], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, env=self.env)
        self.pid = self.process.pid
        self.lines, self.new_line = [], threading.Condition(threading.Lock())
        self.errors = []  # its standard error, read as it comes: a full pipe would stop the app
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.error_reader = threading.Thread(target=lambda: self.errors.extend(self.process.stderr), daemon=True)
        self.error_reader.start()
        self.socket = None
        while self.socket is None:
            listed = subprocess.run([ctl_path, "list"], capture_output=True, text=True, env=self.env).stdout
            found = re.search(rf"^anemone +{self.pid} +(\S+)$", listed, re.M)
            self.socket = found.group(1) if found else None
            if self.process.poll() is not None:
                sys.exit(f"the app ended before opening its socket: {self.stop()[1]}")
            time.sleep(0.02)  # polling for the socket file, not waiting for an amount of anything

    def _read(self):
        for line in self.process.stdout:
            with self.new_line:
                self.lines.append(line.rstrip("\n"))
                self.new_line.notify_all()

    def ticks(self):
        """The AccountManager's ticks printed so far."""
        with self.new_line:
            return sum(1 for line in self.lines if SCORES.match(line))

    def wait_for_ticks(self, n):
        """Until the AccountManager has printed n more ticks than now."""
        with self.new_line:
            target = sum(1 for line in self.lines if SCORES.match(line)) + n
            while sum(1 for line in self.lines if SCORES.match(line)) < target:
                if self.process.poll() is not None:
                    sys.exit(f"the app ended: {self.stop()[1]}")
                self.new_line.wait(timeout=1)

    def scores(self):
        """Each tick's (alice, bob), in order."""
        with self.new_line:
            return [(int(m.group(1)), int(m.group(2))) for m in map(SCORES.match, self.lines) if m]

    # -- a test's checks, its problems listed in self.problems --

    def check(self, condition, what):
        if not condition:
            self.problems.append(what)
        return condition

    def ctl(self, *args, status=0):
        """hotswapctl --json -p PID ARGS: its reply, the last line (checked for the exit status)."""
        run = subprocess.run([self.ctl_path, "--json", "-p", str(self.pid), *args], capture_output=True, text=True,
                             env=self.env, timeout=120)
        self.check(run.returncode == status, f"hotswapctl {' '.join(args)} exited with {run.returncode}, not "
                                             f"{status}: {run.stdout}{run.stderr}")
        lines = run.stdout.splitlines()
        return json.loads(lines[-1]) if lines else {}

    def until(self, happened, what):
        """Waits for `happened` (each look reads what the app printed, or asks it), at most two minutes."""
        deadline = time.monotonic() + 120
        while not happened():
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.check(False, f"never: {what}")
                return False
            time.sleep(0.02)  # between two looks, not an amount waited for
        return True

    def stop(self, sent=signal.SIGTERM):
        """Ends the app as an operator does (SIGTERM); returns its exit status and standard error.
        Its standard output has been read whole when this returns."""
        if self.process.poll() is None:
            self.process.send_signal(sent)
        self.process.wait(timeout=60)
        self.error_reader.join(timeout=60)
        self.reader.join(timeout=60)
        return self.process.returncode, "".join(self.errors)
