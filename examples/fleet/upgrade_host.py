#!/usr/bin/env python3
"""Upgrades one host's running program to a release, for an orchestrator to run on each host of
a fleet (docs/operations.md shows it driven by Ansible, a host at a time):

    upgrade_host.py PROGRAM RELEASE_MANIFEST [--soak SECONDS] [--hotswapctl PATH]

1. dry run: every migration tried on the running states; a refusal stops here, nothing changed;
2. upgrade, its steps printed as they happen: a failure is rolled back by the program itself;
3. soak: the release runs in its grace period for SECONDS (asked for the soak and a minute more:
   a server whose handler throws meanwhile goes back with its state, and the release rolls back
   by itself), then the program must still run it;
4. make-permanent.
Exit status, as hotswapctl's: 0 upgraded and permanent; 1 refused (nothing changed); 2 failed
and rolled back; 3 no program. It reads hotswapctl's --json lines, a JSON object each.
"""
import argparse
import json
import subprocess
import sys
import time

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("program", help="the program's name (its control socket's), or -p PID as hotswapctl takes it")
parser.add_argument("release", help="the release manifest on this host")
parser.add_argument("--soak", type=float, default=0, help="seconds in the grace period before make-permanent")
parser.add_argument("--hotswapctl", default="hotswapctl", help="the hotswapctl to run")
args = parser.parse_args()


def hotswapctl(*command, show=False):
    """Runs hotswapctl --json PROGRAM COMMAND...; returns its exit status and its reply."""
    run = subprocess.Popen([args.hotswapctl, "--json", args.program, *command], stdout=subprocess.PIPE, text=True)
    reply = {}
    for line in run.stdout:
        reply = json.loads(line)
        if show and reply.get("event") == "progress":
            print(f"  {reply['line']}", flush=True)
    return run.wait(), reply


def stop(status, what):
    print(f"{args.program}: {what}", file=sys.stderr)
    sys.exit(status)


status, reply = hotswapctl("dry-run", args.release)
if status != 0:
    stop(status, f"dry run refused: {reply.get('error', {}).get('message', 'no reply')}")
print(f"{args.program}: dry run passed, expected pause {reply['result']['pause_us']:.1f} us")

status, reply = hotswapctl("upgrade", args.release, "--grace", str(args.soak + 60), show=True)
if status != 0:
    stop(status, f"upgrade {'rolled back' if status == 2 else 'refused'}: {reply.get('error', {}).get('message')}")
print(f"{args.program}: upgraded, pause {reply['result']['pause_us']:.1f} us")

time.sleep(args.soak)
status, reply = hotswapctl("releases")
current = [r for r in reply.get("result", {}).get("releases", []) if r["status"] == "current"]
if status != 0 or not current:
    stop(2, "rolled back during the soak: the release is no longer current")
status, reply = hotswapctl("make-permanent")
if status != 0:
    stop(status, f"make-permanent refused: {reply.get('error', {}).get('message')}")
print(f"{args.program}: release {current[0]['name']} {current[0]['vsn']} is permanent")
