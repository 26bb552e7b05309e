#!/usr/bin/env bash
# A/B of two rcptguardd binaries under the same load, alternating A B A B
# so that both see the same machine noise (bounded: about 2 minutes).
#
#   tests/bench/ab_server.sh OLD_RCPTGUARDD NEW_RCPTGUARDD [BUILD_DIR]
#
# Serves 100,000 generated addresses on 127.0.0.1, drives each server with
# rcptguard-bench (BUILD_DIR/clients/bench) at unary batch 1, 10, 100 and
# ValidateStream batch 1, 4 s per run (RG_BENCH_SECONDS), and prints
# recipients/s and server CPU seconds per million recipients for both, with
# the new/old ratios (median of the two rounds). Processes are stopped by
# PID.
set -euo pipefail
OLD="$1"; NEW="$2"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD="${3:-$ROOT/build}"
BENCH="$BUILD/clients/bench/rcptguard-bench"
N=100000
SECONDS_PER_RUN="${RG_BENCH_SECONDS:-4}"
WORK="$(mktemp -d /tmp/rg-ab-XXXXXX)"
PID=""
cleanup() {
  if [[ -n "$PID" ]]; then
    kill "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

python3 - "$N" "$WORK/dir.ldif" <<'PY'
import sys
n, path = int(sys.argv[1]), sys.argv[2]
with open(path, "w") as out:
    for i in range(n):
        out.write("dn: cn=user%d,ou=people,dc=example,dc=com\nobjectClass: user\n"
                  "cn: user%d\nmail: user%d@example.com\n"
                  "proxyAddresses: SMTP:user%d@example.com\n\n" % (i, i, i, i))
PY
cat > "$WORK/rg.textproto" <<CONFIG
listen_address: "127.0.0.1:0"
insecure_plaintext: true
domains { name: "example.com" }
directory { ldif_files: "$WORK/dir.ldif" preset: "ad" }
limits { max_recipients_per_request: 1000 }
shutdown { grace_ms: 0 drain_timeout_ms: 1000 }
CONFIG

start() {  # start BINARY: sets PID and TARGET once serving
  rm -f "$WORK/port"
  "$1" --config="$WORK/rg.textproto" --port_file="$WORK/port" \
    --metrics_listen=127.0.0.1:0 >"$WORK/rg.log" 2>&1 &
  PID=$!
  for _ in $(seq 300); do [[ -s "$WORK/port" ]] && break; sleep 0.1; done
  TARGET="127.0.0.1:$(cat "$WORK/port")"
  for _ in $(seq 300); do
    grep -q "event=serving" "$WORK/rg.log" && return 0
    sleep 0.1
  done
  cat "$WORK/rg.log" >&2
  return 1
}
stop() {
  kill "$PID"
  wait "$PID" 2>/dev/null || true
  PID=""
}

CONFIGS=("unary 1" "unary 10" "unary 100" "stream 1")
for round in 1 2; do
  for which in old new; do
    bin="$OLD"
    [[ $which == new ]] && bin="$NEW"
    start "$bin"
    for c in "${CONFIGS[@]}"; do
      read -r mode batch <<<"$c"
      timeout 60 "$BENCH" --target="$TARGET" --server_pid="$PID" \
        --mode="$mode" --batch="$batch" --concurrency=16 --connections=2 \
        --client_threads=2 --generate="$N" --unknown_share=0.1 \
        --duration="${SECONDS_PER_RUN}s" --json \
        > "$WORK/$which-$mode-$batch-$round.json"
    done
    stop
  done
done

python3 - "$WORK" "${CONFIGS[@]}" <<'PY'
import json, statistics, sys
work, configs = sys.argv[1], sys.argv[2:]
def get(which, mode, batch, key):
    vals = []
    for r in (1, 2):
        d = json.load(open(f"{work}/{which}-{mode}-{batch}-{r}.json"))
        if d.get("errors_total", 0):
            sys.exit(f"{which} {mode} {batch}: {d['errors_total']} errors")
        vals.append(d[key])
    return statistics.median(vals)
print(f"{'load':<16}{'old rcpt/s':>12}{'new rcpt/s':>12}{'ratio':>8}"
      f"{'old CPU s/M':>13}{'new CPU s/M':>13}{'ratio':>8}")
for c in configs:
    mode, batch = c.split()
    ro, rn = (get(w, mode, batch, "recipients_per_second") for w in ("old", "new"))
    co, cn = (get(w, mode, batch, "server_cpu_seconds_per_million_recipients")
              for w in ("old", "new"))
    print(f"{mode + ' batch ' + batch:<16}{ro:>12.0f}{rn:>12.0f}{rn/ro:>8.2f}"
          f"{co:>13.2f}{cn:>13.2f}{cn/co:>8.2f}")
PY
