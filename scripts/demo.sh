#!/usr/bin/env bash
# Quick start: installs what is missing, builds, runs rcptguardd on the
# bundled sample directory (deploy/examples/), and checks two addresses.
# The server keeps running in the background; the last lines say how to
# stop it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

scripts/deps.sh build
RG_TARGETS="rcptguardd rcptguard" scripts/build.sh build

run="$root/build/demo"
mkdir -p "$run"
if [[ -f "$run/rcptguardd.pid" ]] && kill -0 "$(cat "$run/rcptguardd.pid")" 2>/dev/null; then
  echo "demo: stopping the previous demo server (pid $(cat "$run/rcptguardd.pid"))"
  kill "$(cat "$run/rcptguardd.pid")"
  sleep 1
fi
rm -f "$run/port"
build/server/rcptguardd --config=deploy/examples/rcptguard.textproto \
  --port_file="$run/port" >"$run/rcptguardd.log" 2>&1 &
pid=$!
echo "$pid" >"$run/rcptguardd.pid"

for _ in $(seq 1 100); do
  if build/clients/rcptguard health --server=127.0.0.1:50051 >/dev/null 2>&1; then break; fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "demo: rcptguardd exited; its log:"; cat "$run/rcptguardd.log"; exit 1
  fi
  sleep 0.1
done

echo
echo "== rcptguardd is serving on 127.0.0.1:50051 (pid $pid, log $run/rcptguardd.log)"
build/clients/rcptguard status
echo
echo "== rcptguard check alice@example.com nobody@example.com"
# Exits 1 when a recipient is not VALID (like `postmap -q`): expected here.
build/clients/rcptguard check alice@example.com nobody@example.com ||
  echo "(exit status $?: a recipient is not VALID)"
echo
echo "Stop it with: kill $pid"
