#!/usr/bin/env bash
# What a lookup costs the edge and the server, per transport (issue 15), in
# one run on this machine: rcptguardd serving the sample directory, driven
# by rcptguard-bench in alternating rounds:
#
#   stream b1 / b100     raw ValidateStream (the issue-8 reference rows)
#   client-unary b1      the C++ client library, one Validate per lookup
#   client-stream b1     the library over ValidateStream (pipelined)
#   client-batch b1      the library over ValidateBatchStream (group commit:
#                        16 callers, each its own client IP, one recipient
#                        per request, grouped while a message is in flight)
#   client-batch b100    the same with 100 recipients per request
#
# For each: requests/s, server CPU per request and per recipient (from
# /proc/PID/stat), the generator's own CPU per request (for the client-*
# rows: what an edge pays, client library included) and, for client-batch,
# requests per stream message.
#
#   tests/bench/edge_bench.sh [BUILD_DIR]     (default build-rel; Release)
#
#   RG_ROUNDS=3        alternating rounds
#   RG_DURATION=4s     per row
#   RG_CONCURRENCY=16  callers / requests in flight
#   RG_PIN=1           rcptguardd on CPU 1, the generator on CPU 0 (taskset)
#
# Bounded: each row runs under timeout(1); rcptguardd listens on 127.0.0.1
# (port 0) and is stopped by its PID.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD="${1:-$REPO/build-rel}"
ROUNDS="${RG_ROUNDS:-3}"
DURATION="${RG_DURATION:-4s}"
CONCURRENCY="${RG_CONCURRENCY:-16}"
SERVER="$BUILD/server/rcptguardd"
BENCH="$BUILD/clients/bench/rcptguard-bench"
for bin in "$SERVER" "$BENCH"; do
  [[ -x "$bin" ]] || { echo "edge_bench.sh: $bin missing" >&2; exit 2; }
done
if [[ "${RG_PIN:-0}" = 1 ]]; then
  PIN_SERVER=(taskset -c 1); PIN_BENCH=(taskset -c 0)
else
  PIN_SERVER=(); PIN_BENCH=()
fi
source "$REPO/tests/bench/lib.sh"
bench_workdir rg-edge

sample_valid_addresses "$REPO" >"$WORK/valid.txt"
sample_config "$REPO" 'limits { max_recipients_per_request: 1000 }
harvest { disabled: true }
shutdown { grace_ms: 0 drain_timeout_ms: 500 }' >"$WORK/rg.textproto"
"${PIN_SERVER[@]}" "$SERVER" --config="$WORK/rg.textproto" \
  --port_file="$WORK/rg.port" >"$WORK/rg.log" 2>&1 &
RG_PID=$!
bench_track "$RG_PID"
wait_file "$WORK/rg.port" || { cat "$WORK/rg.log"; exit 1; }
TARGET="127.0.0.1:$(cat "$WORK/rg.port")"
sleep 0.5

row() {  # row LABEL MODE BATCH
  timeout 60 "${PIN_BENCH[@]}" "$BENCH" --mode="$2" --batch="$3" \
    --target="$TARGET" --concurrency="$CONCURRENCY" --client_ips=1000 \
    --addresses_file="$WORK/valid.txt" --unknown_share=0.5 \
    --duration="$DURATION" --server_pid="$RG_PID" --json >"$WORK/out.json" ||
    { echo "$1: rcptguard-bench failed"; cat "$WORK/out.json"; return 0; }
  python3 - "$1" "$WORK/out.json" <<'PY'
import json, sys
label, path = sys.argv[1], sys.argv[2]
r = json.load(open(path))
n, rcpt, s = r["requests"], r["recipients"], r["seconds"]
srv, cli = r["server_cpu_seconds"], r["client_cpu_seconds"]
rpm = r.get("requests_per_message", 0)
print(f"{label:24s} {n/s:9.0f} req/s  server {srv/n*1e6:6.2f} us/req "
      f"{srv/rcpt*1e6:6.3f} us/rcpt  generator {cli/n*1e6:6.2f} us/req"
      + (f"  {rpm:5.1f} req/msg" if rpm else "") + f"  errors {r['errors_total']}")
PY
}

echo "== rcptguardd $TARGET, $CONCURRENCY in flight, $DURATION per row, pinned: ${RG_PIN:-0} =="
for round in $(seq "$ROUNDS"); do
  echo "-- round $round"
  row "stream b1" stream 1
  row "client-batch b1" client-batch 1
  row "client-stream b1" client-stream 1
  row "client-unary b1" client-unary 1
  row "stream b100" stream 100
  row "client-batch b100" client-batch 100
done
