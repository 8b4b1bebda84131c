#!/usr/bin/env python3
"""A fleet upgraded by Ansible, end to end with the real programs:

    check_fleet.py ANEMONE_LIVE HOTSWAPCTL HOTSWAP_SEAL MODULES_DIR

Three instances of the Anemone app run on release anemone 2 on this machine, each with its own
control socket and its own release directory, and each takes only modules signed by the fleet's
key (`--trusted-key`). They are the three hosts of an inventory made from
examples/fleet/inventory.yml (ansible_connection=local, each host its control_socket). Host 2's
copy of release anemone 3 was signed by another key. The command line docs/operations.md shows
runs examples/fleet/upgrade.yml, and the play must stop at host 2: host 1 upgraded to anemone 3
and permanent, host 2 refused (nothing changed: on anemone 2 with its accounts, ticking on from
their scores), host 3 never touched (no hotswapctl command ever named its socket). Each app's
ticks go on throughout with no gap or repeat. The play's output has the lines the docs show
(tasks, each host's result, the recap), numbers and messages aside.
Waits are for events (a tick printed, a socket listed, the play's end), never for amounts of time.
"""
import json
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

import yaml  # PyYAML, which ansible-core needs

sys.dont_write_bytecode = True  # the import below leaves no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from anemone_app import AnemoneApp  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
app_path, ctl_path, seal_path, modules = map(os.path.abspath, sys.argv[1:5])
problems = []


def check(condition, what):
    if not condition:
        problems.append(what)
    return condition


playbook_command = shutil.which("ansible-playbook")
if not playbook_command:
    sys.exit("ansible-playbook is not installed: tools/install-deps ansible-core installs it (tools/run test does)")

# -- the command line the docs show, and the output they show after it --

docs = (ROOT / "docs" / "operations.md").read_text()
fleet_section = docs[docs.index("\n### A fleet\n") + 1:]
fleet_section = re.split(r"\n#{2,} ", fleet_section[4:])[0]  # up to the next heading (a playbook's comments are `# `)
shown = re.findall(r"^\$ (ansible-playbook .*)\n((?:(?!```).*\n)*)```", fleet_section, re.M)
if len(shown) != 1:
    sys.exit(f"docs/operations.md, A fleet: {len(shown)} `$ ansible-playbook` command blocks, not one")
shown_command, shown_output = shown[0]
playbook_file = (ROOT / "examples" / "fleet" / "upgrade.yml").read_text()
if f"```yaml\n{playbook_file}```\n" not in fleet_section:
    sys.exit("docs/operations.md, A fleet: the playbook it shows is not examples/fleet/upgrade.yml as it is")
# Every ansible-playbook command line the README, the docs and the examples show is the one run here.
for document in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "examples").rglob("*"))]:
    if document.is_file() and document.suffix in (".md", ".yml", ".yaml", ""):
        for line in document.read_text(errors="replace").splitlines():
            if (command := re.match(r"^[#\s]*(?:\$ )?(ansible-playbook .*)$", line)) and command.group(1) != shown_command:
                sys.exit(f"{document.relative_to(ROOT)} shows `{command.group(1)}`, which no test runs (this one runs "
                         f"`{shown_command}`)")

# -- three hosts' release directories: the fleet's key signs every module, but one --

work = tempfile.mkdtemp(prefix="hotswap-fleet-")
os.chmod(work, 0o700)
apps = []
try:
    def seal(*args):
        run = subprocess.run([seal_path, *args], capture_output=True, text=True, timeout=120)
        if run.returncode != 0:
            sys.exit(f"hotswap-seal {' '.join(args)}: {run.stderr}")

    seal("keygen", f"{work}/fleet.pem", f"{work}/fleet.pub.pem")
    seal("keygen", f"{work}/other.pem", f"{work}/other.pub.pem")  # a key the hosts do not trust
    files = ["anemone-2.release.json", "anemone-3.release.json", "account_manager_v2.so", "inspector_v2.so",
             "account_manager_v3.so", "inspector_v3.so"]
    example_inventory = yaml.safe_load((ROOT / "examples" / "fleet" / "inventory.yml").read_text())
    names = list(example_inventory["anemone"]["hosts"])
    if len(names) != 3:
        sys.exit(f"examples/fleet/inventory.yml has {len(names)} hosts, not 3")
    release_dirs = []
    for i, name in enumerate(names):
        directory = f"{work}/{name}/release"
        os.makedirs(directory, mode=0o700)
        for file in files:
            shutil.copy(f"{modules}/{file}", directory)
            if file.endswith(".so"):  # host 2's release anemone 3 is a build signed by another key
                seal("seal", f"{directory}/{file}", "--key",
                     f"{work}/other.pem" if i == 1 and file == "account_manager_v3.so" else f"{work}/fleet.pem")
        release_dirs.append(directory)

    # -- three instances, each with its socket; a tick of each seen --

    for directory in release_dirs:
        apps.append(AnemoneApp(app_path, ctl_path, directory, prefix="hotswap-fleet-app-",
                               args=["--trusted-key", f"{work}/fleet.pub.pem"]))
    for app in apps:
        app.wait_for_ticks(2)

    def ctl(app, *args):
        """hotswapctl --json -s SOCKET ARGS on one app: its reply (the last line)."""
        run = subprocess.run([ctl_path, "--json", "-s", app.socket, *args], capture_output=True, text=True,
                             timeout=120)
        check(run.returncode == 0, f"hotswapctl {' '.join(args)} on {app.socket}: {run.returncode} {run.stderr}")
        lines = run.stdout.splitlines()
        return json.loads(lines[-1])["result"] if lines else {}

    def releases(app):
        return {(one["name"], one["vsn"]): one["status"] for one in ctl(app, "releases")["releases"]}

    def modules_loaded(app):
        return {one["name"]: (one["current"], one["old"]) for one in ctl(app, "status")["modules"]}

    def servers(app):
        return {one["name"]: (one["implementation"], one["vsn"]) for one in ctl(app, "status")["servers"]}

    before = [app.scores()[-1] for app in apps]

    # -- the inventory, the hotswapctl the hosts run (which notes each command line), ansible --

    commands_log = f"{work}/hotswapctl.log"
    wrapper = f"{work}/hotswapctl"
    with open(wrapper, "w") as f:
        f.write(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {shlex.quote(commands_log)}\nexec {shlex.quote(ctl_path)} "$@"\n')
    os.chmod(wrapper, 0o700)
    inventory = {"anemone": {
        "hosts": {name: {"control_socket": app.socket, "release_dir": directory}
                  for name, app, directory in zip(names, apps, release_dirs)},
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3",
                 "hotswapctl": wrapper}}}
    inventory_path = f"{work}/inventory.yml"
    with open(inventory_path, "w") as f:
        json.dump(inventory, f)  # YAML's superset
    home = f"{work}/home"
    os.makedirs(home)
    open(f"{work}/ansible.cfg", "w").close()  # no ansible.cfg of this machine's or user's
    env = dict(os.environ, HOME=home, ANSIBLE_CONFIG=f"{work}/ansible.cfg", ANSIBLE_HOME=f"{home}/.ansible",
               ANSIBLE_LOCAL_TEMP=f"{work}/ansible-local", ANSIBLE_REMOTE_TEMP=f"{work}/ansible-remote",
               ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_RETRY_FILES_ENABLED="False", ANSIBLE_NOCOLOR="1",
               ANSIBLE_STDOUT_CALLBACK="default", ANSIBLE_LOCALHOST_WARNING="False",
               ANSIBLE_DEPRECATION_WARNINGS="False", ANSIBLE_GATHERING="explicit", PYTHONDONTWRITEBYTECODE="1")
    argv = shlex.split(shown_command)
    argv = [inventory_path if word == "examples/fleet/inventory.yml" else word for word in argv]
    argv[0] = playbook_command
    play = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT, timeout=1800)
    output = play.stdout + play.stderr
    print(output, flush=True)

    # -- the play stopped at host 2 --

    check(play.returncode != 0, f"ansible-playbook exited with {play.returncode}: the play did not stop")
    check(re.search(rf"^fatal: \[{re.escape(names[1])}\]: FAILED! => [^}}]*\"msg\": \"dry run refused, nothing "
                    r"changed \(hotswapctl exit 1\): [^\"]*/account_manager_v3.so: signed by key [0-9a-f]+, which this "
                    r"code server does not trust", output, re.M), "host 2's refusal is not in the play's output")
    check(names[2] not in output, "host 3 is in the play's output")
    recap = dict(re.findall(r"^(\S+) +: (ok=.*\S)", output, re.M))
    check(re.search(r"\bfailed=0\b", recap.get(names[0], "")) and re.search(r"\bchanged=2\b", recap.get(names[0], "")),
          f"host 1's recap: {recap.get(names[0])}")
    check(re.search(r"\bfailed=1\b", recap.get(names[1], "")) and re.search(r"\bchanged=0\b", recap.get(names[1], "")),
          f"host 2's recap: {recap.get(names[1])}")

    # -- what each host was asked: host 1 all the steps, host 2 its dry run, host 3 nothing --

    with open(commands_log) as f:
        asked = [line.split() for line in f.read().splitlines()]
    by_host = [[words[3] for words in asked if len(words) > 3 and words[2] == app.socket] for app in apps]
    check(len(asked) == sum(map(len, by_host)), f"a hotswapctl command named no host's socket: {asked}")
    check(by_host[0][:3] == ["dry-run", "upgrade", "status"] and by_host[0][-1] == "make-permanent" and
          set(by_host[0][3:-1]) == {"status"}, f"host 1 was asked {by_host[0]}")
    check(by_host[1] == ["dry-run"], f"host 2 was asked {by_host[1]}")
    check(by_host[2] == [], f"host 3 was asked {by_host[2]}")

    # -- host 1 upgraded and permanent; 2 and 3 on anemone 2, with their accounts --

    for app in apps:
        app.wait_for_ticks(3)
    check(releases(apps[0]) == {("anemone", "3"): "permanent", ("anemone", "2"): "old"},
          f"host 1's releases: {releases(apps[0])}")
    check(modules_loaded(apps[0]) == {"anemone.account_manager": (3, None), "anemone.inspector": (3, None)},
          f"host 1's modules: {modules_loaded(apps[0])}")
    check(servers(apps[0]) == {"account_manager": ("anemone::AccountManagerV3", 3),
                               "inspector": ("anemone::InspectorV3", 3)}, f"host 1's servers: {servers(apps[0])}")
    check(re.search(r'%Account\{name: "Alice", score: \d+, stage: 0, active: true\}',
                    ctl(apps[0], "state", "account_manager").get("text", "")), "host 1's accounts are not v3's")
    for i in (1, 2):
        check(releases(apps[i]) == {("anemone", "2"): "permanent"}, f"host {i + 1}'s releases: {releases(apps[i])}")
        check(modules_loaded(apps[i]) == {"anemone.account_manager": (2, None), "anemone.inspector": (2, None)},
              f"host {i + 1}'s modules: {modules_loaded(apps[i])}")
        check(servers(apps[i]) == {"account_manager": ("anemone::AccountManagerV2", 2),
                                   "inspector": ("anemone::InspectorV2", 2)}, f"host {i + 1}'s servers: {servers(apps[i])}")
        state = ctl(apps[i], "state", "account_manager").get("text", "")
        check(re.search(r'%Account\{name: "Alice", score: \d+, stage: 0\}', state) and "active" not in state,
              f"host {i + 1}'s accounts: {state}")
    for i, app in enumerate(apps):
        check(app.scores()[-1][0] > before[i][0], f"host {i + 1}'s accounts did not tick on from {before[i]}")

    # -- the docs show this play's lines: its tasks, each host's result, the recap --

    def lines_of(text):
        found = []
        for line in text.splitlines():
            if re.match(r"(PLAY|TASK) \[", line):
                found.append(re.sub(r" \*+$", "", line))
            elif (result := re.match(r"(ok|changed|fatal|skipping|failed): \[[^]]+\]", line)):
                found.append(result.group(0))
            elif re.match(r"\S+ +: ok=", line) or line.startswith("NO MORE HOSTS LEFT"):
                found.append(re.sub(r" \*+$", "", re.sub(r" +", " ", line.strip())))
        return found

    played, documented = lines_of(output), lines_of(shown_output)
    check(played == documented, "docs/operations.md shows another play's output:\n  shown: " +
          "\n         ".join(documented) + "\n  run:   " + "\n         ".join(played))
finally:
    for i, app in enumerate(apps):
        stopped, errors = app.stop()
        check(stopped == 0, f"host {i + 1}'s app exited with {stopped}: {errors}")
        scores = app.scores()
        check([a for a, _ in scores] == list(range(1, len(scores) + 1)) and all(b == 2 * a for a, b in scores),
              f"host {i + 1}: ticks lost or repeated: {scores}")
        shutil.rmtree(app.runtime, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)

if problems:
    print("\n".join(problems))
    sys.exit(1)
print(f"ok: the play stopped at {names[1]}: {names[0]} on anemone 3, permanent; {names[1]} refused, on anemone 2 "
      f"with its accounts; {names[2]} untouched; every tick of the three apps kept")
