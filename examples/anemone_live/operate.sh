#!/usr/bin/env bash
# The Anemone app upgraded from outside, as an operator does it: the app ticks on release
# anemone 2 with its control socket open; after a few ticks, hotswapctl upgrades it to release
# anemone 3, makes the release permanent and shows its status and the accounts; the app ticks
# on, and is stopped. The app's lines start with "app |", the operator's with "ops |".
#
#     operate.sh ANEMONE_LIVE HOTSWAPCTL MODULES_DIR [ticks before and after = 5] [period ms = 1000]
set -euo pipefail
app=$1 ctl=$2 modules=$3 ticks=${4:-5} period=${5:-1000}
out=$(mktemp)
trap 'rm -f "$out"; [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true' EXIT

ticks_seen() { grep -c '^alice:' "$out" || true; }
wait_for_ticks() {  # wait_for_ticks N: N more of the AccountManager's ticks than now
  local until=$(($(ticks_seen) + $1))
  while [ "$(ticks_seen)" -lt "$until" ]; do
    kill -0 "$pid" 2>/dev/null || { echo "the app ended" >&2; exit 1; }
    sleep 0.05
  done
}
ops() {  # ops ARGS...: hotswapctl ARGS on the app, shown as typed and answered
  echo "ops | \$ hotswapctl -p $pid $*"
  "$ctl" -p "$pid" "$@" 2>&1 | sed -u 's/^/ops | /'
  return "${PIPESTATUS[0]}"
}

"$app" --serve "$period" "$modules" > >(tee "$out" | sed -u 's/^/app | /') 2>&1 &
pid=$!
until "$ctl" list | grep -q " $pid "; do  # its socket is open
  kill -0 "$pid" 2>/dev/null || { echo "the app ended before opening its control socket" >&2; exit 1; }
  sleep 0.05
done
wait_for_ticks "$ticks"
ops upgrade "$modules/anemone-3.release.json"
wait_for_ticks "$ticks"
ops make-permanent
ops status
ops state account_manager
kill -TERM "$pid"
wait "$pid"
pid=
