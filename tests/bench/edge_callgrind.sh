#!/usr/bin/env bash
# Instructions per request, edge and server, per transport (issue 15):
# exact counts (callgrind), unaffected by other load on the machine, to read
# next to tests/bench/edge_bench.sh's CPU times.
#
#   tests/bench/edge_callgrind.sh [BUILD_DIR]     (default build-test)
#
# Server: rcptguardd runs under callgrind; its counters are zeroed before
# and dumped after each row (callgrind_control), so start-up is not
# counted. Edge: rcptguard-bench runs under callgrind twice per row, with
# N and 2N requests; the difference divided by N is the cost of one request
# without start-up. Rows: raw ValidateStream and the client library's
# unary, stream and batch_stream transports at batch 1 (16 callers), and
# batch_stream at batch 100. Needs valgrind. Takes a few minutes.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD="${1:-$REPO/build-test}"
N="${RG_REQUESTS:-2000}"
SERVER="$BUILD/server/rcptguardd"
BENCH="$BUILD/clients/bench/rcptguard-bench"
source "$REPO/tests/bench/lib.sh"
bench_workdir rg-edgecg
sample_valid_addresses "$REPO" >"$WORK/valid.txt"
sample_config "$REPO" 'harvest { disabled: true }
shutdown { grace_ms: 0 drain_timeout_ms: 500 }' >"$WORK/rg.textproto"
valgrind --tool=callgrind --callgrind-out-file="$WORK/server.%p" \
  "$SERVER" --config="$WORK/rg.textproto" --port_file="$WORK/rg.port" \
  >"$WORK/rg.log" 2>&1 &
RG_PID=$!
bench_track "$RG_PID"
# Under valgrind start-up takes a while: up to 60 s.
for _ in $(seq 600); do [[ -s "$WORK/rg.port" ]] && break; sleep 0.1; done
[[ -s "$WORK/rg.port" ]] || { cat "$WORK/rg.log"; exit 1; }
TARGET="127.0.0.1:$(cat "$WORK/rg.port")"

bench() {  # bench MODE BATCH REQUESTS [valgrind]
  local pre=()
  [[ "${4:-}" = cg ]] && pre=(valgrind --tool=callgrind --callgrind-out-file="$WORK/bench.out")
  "${pre[@]}" "$BENCH" --mode="$1" --batch="$2" --requests="$3" \
    --target="$TARGET" --concurrency=16 --client_ips=1000 --duration=300s \
    --deadline=60s --addresses_file="$WORK/valid.txt" --unknown_share=0.5 \
    --json >"$WORK/bench.json" 2>"$WORK/bench.err" || { cat "$WORK/bench.err"; exit 1; }
}
total_ir() { awk '/^(summary|totals):/ {print $2; exit}' "$1"; }

echo "== instructions per request (callgrind), N=$N =="
for row in "stream 1" "client-unary 1" "client-stream 1" "client-batch 1" "client-batch 100"; do
  set -- $row
  n=$N; [[ "$2" = 100 ]] && n=$((N / 10))
  callgrind_control -z "$RG_PID" >/dev/null 2>&1
  bench "$1" "$2" "$n"
  rpm="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("requests_per_message", 0))' "$WORK/bench.json")"
  callgrind_control -d "$RG_PID" >/dev/null 2>&1
  sleep 1
  dump="$(ls -t "$WORK"/server.* | head -1)"
  server_ir="$(total_ir "$dump")"
  rm -f "$WORK"/server.*.[0-9]*
  bench "$1" "$2" "$n" cg; ir1="$(total_ir "$WORK/bench.out")"
  bench "$1" "$2" "$((2 * n))" cg; ir2="$(total_ir "$WORK/bench.out")"
  python3 -c "
import sys
mode, batch, n, s, e1, e2, rpm = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7])
print(f'{mode+\" b\"+str(batch):20s} server {s/n:10.0f} Ir/req {s/n/batch:9.0f} Ir/rcpt   edge {(e2-e1)/n:10.0f} Ir/req' + (f'   {rpm:.1f} req/msg (server row)' if rpm else ''))
" "$1" "$2" "$n" "$server_ir" "$ir1" "$ir2" "$rpm"
done
