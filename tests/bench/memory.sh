#!/usr/bin/env bash
# Server memory per address: rcptguardd's RSS after loading synthetic
# snapshots of 1 M and of N addresses (default 100 M), in the same run, and
# the bytes per address in total and at the margin. Bounded: a few minutes
# and about 2 GB of disk in /var/tmp (RG_BENCH_DIR) at 100 M.
#
#   tests/bench/memory.sh [BUILD_DIR] [N]
#
# Needs the benchmark build (make_snapshot). Processes are stopped by PID.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD="${1:-$ROOT/build}"
N="${2:-100000000}"
WORK="$(mktemp -d "${RG_BENCH_DIR:-/var/tmp}/rg-memory-XXXXXX")"
PID=""
cleanup() {
  if [[ -n "$PID" ]]; then
    kill "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

rss_after_load() {  # rss_after_load ADDRESSES: prints VmRSS in kB
  local n="$1"
  timeout 600 "$BUILD/tests/bench/make_snapshot" "$n" "$WORK/dir.rgs" \
    "$WORK/key" >&2
  cat > "$WORK/rg.textproto" <<CONFIG
listen_address: "127.0.0.1:0"
insecure_plaintext: true
domains { name: "example.com" }
domains { name: "example.org" }
fingerprint_key_file: "$WORK/key"
directory { snapshot_file: "$WORK/dir.rgs" }
CONFIG
  rm -f "$WORK/port"
  "$BUILD/server/rcptguardd" --config="$WORK/rg.textproto" \
    --port_file="$WORK/port" --metrics_listen=127.0.0.1:0 \
    >"$WORK/rg.log" 2>&1 &
  PID=$!
  for _ in $(seq 1200); do
    grep -q "event=serving" "$WORK/rg.log" && break
    kill -0 "$PID" 2>/dev/null || { cat "$WORK/rg.log" >&2; exit 1; }
    sleep 0.1
  done
  grep -q "event=serving" "$WORK/rg.log" || { cat "$WORK/rg.log" >&2; exit 1; }
  sleep 1  # let the loader's temporary memory go back
  awk '/^VmRSS:/ { print $2 }' "/proc/$PID/status"
  kill "$PID"
  wait "$PID" 2>/dev/null || true
  PID=""
  rm -f "$WORK/dir.rgs"
}

small=1000000
rss_small=$(rss_after_load "$small")
rss_large=$(rss_after_load "$N")
python3 - "$small" "$rss_small" "$N" "$rss_large" <<'PY'
import sys
small, rss_small, n, rss_large = (int(x) for x in sys.argv[1:])
print(f"{'addresses':>12} {'RSS MiB':>10} {'bytes/address':>14}")
for count, rss in ((small, rss_small), (n, rss_large)):
    print(f"{count:>12} {rss / 1024:>10.1f} {rss * 1024 / count:>14.2f}")
margin = (rss_large - rss_small) * 1024 / (n - small)
print(f"at the margin ({small} -> {n}): {margin:.2f} bytes per address")
PY
