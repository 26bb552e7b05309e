#!/usr/bin/env bash
# Haraka benchmark: RCPT commands per second through a real Haraka with
# haraka-plugin-rcptguard, against the same Haraka with no recipient check
# (rcpt_to.in_host_list: the domain alone decides), in the same run.
#
#   tests/bench/haraka_bench.sh [BUILD_DIR]     (needs node, npm, python3)
#
# One rcptguardd on the sample directory (harvest detection on, default
# rules), four Haraka processes (one worker each, nodes unset): no check,
# the plugin as configured by default (stream with group commit, two
# messages in flight: "batch"), the same with one message in flight
# ("batch1", only when named in RG_BENCH_VARIANTS), over a plain
# ValidateStream ("stream"), over unary calls ("unary").
# tests/bench/smtp_driver.py keeps RG_BENCH_SESSIONS (8) SMTP sessions busy, each
# sending up to 300 RCPTs of valid demo addresses per transaction (every
# answer is 250 in every variant, so the work differs only by the check).
# Variants alternate for RG_BENCH_ROUNDS (3) rounds of RG_BENCH_SECONDS (10)
# each, each round starting one variant later (in a fixed order, one run's
# differences up to 0.1x were noise); the ratio per round is against that round's
# baseline, and the
# summary gives, per variant, the ratio of its RCPTs over all rounds to the
# baseline's (short alternating rounds even out a machine whose load
# changes) and the median of the per-round ratios. Also printed: CPU us of
# Haraka and of rcptguardd per RCPT.
#
# Everything listens on 127.0.0.1; every process is stopped by PID.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD="${1:-${RG_BINARY_DIR:-$ROOT/build}}"
SECONDS_PER_RUN="${RG_BENCH_SECONDS:-10}"
SESSIONS="${RG_BENCH_SESSIONS:-8}"
ROUNDS="${RG_BENCH_ROUNDS:-3}"
VARIANTS="${RG_BENCH_VARIANTS:-none batch stream unary}"
RGD="$BUILD/server/rcptguardd"
for b in "$RGD" node npm python3; do
  command -v "$b" >/dev/null || { echo "missing: $b" >&2; exit 2; }
done
ENV_DIR="$("$ROOT/scripts/haraka_env.sh" "${RG_HARAKA_DIR:-$BUILD/haraka-env}")"
HARAKA="$ENV_DIR/node_modules/Haraka/bin/haraka"

source "$ROOT/tests/bench/lib.sh"
bench_workdir rg-haraka-bench

sample_config "$ROOT" 'metrics { disabled: true }' >"$WORK/rg.textproto"
"$RGD" --config "$WORK/rg.textproto" --port_file "$WORK/rg.port" >"$WORK/rg.log" 2>&1 &
RGD_PID=$!
bench_track "$RGD_PID"
wait_file "$WORK/rg.port" || { cat "$WORK/rg.log"; exit 1; }
RG_PORT="$(cat "$WORK/rg.port")"

sample_valid_addresses "$ROOT" example.com >"$WORK/valid.txt"

declare -A PORT PID
# start_haraka NAME PLUGINS RCPTGUARD_INI_LINE
start_haraka() {
  local name=$1 plugins=$2 ini=$3 dir="$WORK/$1" port
  node "$HARAKA" -i "$dir" >/dev/null 2>&1
  port=$(free_port)
  printf 'listen=127.0.0.1:%s\nnodes=\n' "$port" >"$dir/config/smtp.ini"
  printf '%s\n' "$plugins" >"$dir/config/plugins"
  printf 'example.com\nmail.example.com\nexample.org\n' >"$dir/config/host_list"
  printf '[main]\nlevel=warn\n' >"$dir/config/log.ini"
  printf '[main]\nservers=127.0.0.1:%s\nstats_interval_s=0\n%s\n' "$RG_PORT" "$ini" \
    >"$dir/config/rcptguard.ini"
  node ${RG_BENCH_NODE_ARGS:-} "$HARAKA" -c "$dir" >"$dir/haraka.log" 2>&1 &
  bench_track "$!"
  PORT[$name]=$port
  PID[$name]=$!
  for _ in $(seq 200); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $port)).close()" \
      2>/dev/null && return 0
    sleep 0.1
  done
  echo "haraka $name did not start"; cat "$dir/haraka.log"; exit 1
}
for v in $VARIANTS; do
  case $v in
    none) start_haraka none "rcpt_to.in_host_list" "" ;;
    batch) start_haraka batch "rcptguard" "transport=stream
batch=true" ;;
    batch1) start_haraka batch1 "rcptguard" "transport=stream
batch=true
messages_in_flight=1" ;;
    stream) start_haraka stream "rcptguard" "transport=stream
batch=false" ;;
    unary) start_haraka unary "rcptguard" "transport=unary" ;;
  esac
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

# rcpt_rate NAME -> "RCPT/s haraka_cpu_ms_per_1k rcptguardd_cpu_ms_per_1k non_250"
rcpt_rate() {
  local h0 r0 total bad
  h0=$(cpu_ticks "${PID[$1]}"); r0=$(cpu_ticks "$RGD_PID")
  read -r total bad _ < <(python3 "$ROOT/tests/bench/smtp_driver.py" "${PORT[$1]}" \
    "$SECONDS_PER_RUN" "$SESSIONS" "$WORK/valid.txt" valid)
  [[ $total =~ ^[0-9]+$ ]] || { echo "$1: the SMTP driver failed" >&2; exit 1; }
  python3 -c "
t=max($total,1); hz=$HZ
print(f'{$total/$SECONDS_PER_RUN:.0f} {1e6*($(cpu_ticks "${PID[$1]}")-$h0)/hz/t:.0f} {1e6*($(cpu_ticks "$RGD_PID")-$r0)/hz/t:.0f} $bad')"
}

echo "== Haraka RCPT/s: $SESSIONS sessions, ${SECONDS_PER_RUN}s per variant, $ROUNDS rounds =="
echo "   (per variant: RCPT/s, ratio to no check, CPU us per RCPT of Haraka + rcptguardd, non-250 replies)"
declare -A SUM RATIOS RATE HCPU RCPU BAD
read -r -a ORDER <<<"$VARIANTS"
for round in $(seq "$ROUNDS"); do
  # Each round starts one variant later: a variant's place in the round
  # (right after another Haraka's burst, or not) changes its rate, so no
  # variant keeps one place.
  n=${#ORDER[@]}
  for ((i = 0; i < n; i++)); do
    v=${ORDER[$(( (i + round - 1) % n ))]}
    read -r "RATE[$v]" "HCPU[$v]" "RCPU[$v]" "BAD[$v]" <<<"$(rcpt_rate "$v")"
    SUM[$v]=$(( ${SUM[$v]:-0} + ${RATE[$v]} ))
  done
  line="round $round:"
  for v in $VARIANTS; do
    if [[ $v == none ]]; then
      line+=" none ${RATE[$v]}/s (${HCPU[$v]} us, bad ${BAD[$v]}) |"
    else
      ratio=$(python3 -c "print(f'{${RATE[$v]}/max(${RATE[none]:-1},1):.2f}')")
      RATIOS[$v]+=" $ratio"
      line+=" $v ${RATE[$v]}/s = ${ratio}x (${HCPU[$v]} + ${RCPU[$v]} us, bad ${BAD[$v]}) |"
    fi
  done
  echo "$line"
done
for v in $VARIANTS; do
  [[ $v == none ]] && continue
  python3 -c "
import statistics
r=[float(x) for x in '${RATIOS[$v]}'.split()]
print(f'$v: {${SUM[$v]}/max(${SUM[none]},1):.2f}x of no check over all rounds, median {statistics.median(r):.2f}x, range {min(r):.2f}-{max(r):.2f}')"
done
