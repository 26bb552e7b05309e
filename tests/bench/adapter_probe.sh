#!/usr/bin/env bash
# What the Postfix adapter itself costs per request (issue 15), without
# Postfix: rcptguardd on the sample directory, one rcptguard-postfix, and
# SESSIONS Python clients that each keep one policy (or socketmap)
# connection busy, one request at a time, half valid and half unknown
# recipients. Prints the adapter's CPU (utime + stime of all its threads)
# and voluntary context switches per request, and rcptguardd's CPU per
# request.
#
#   tests/bench/adapter_probe.sh [BUILD_DIR]       (default build-test)
#
#   RG_SESSIONS=1           connections kept busy
#   RG_PROTOCOL=policy      or socketmap
#   RG_SECONDS=4            measured seconds per run
#   RG_ROUNDS=1             runs; with RG_ADAPTER_B, alternating A and B
#   RG_ADAPTER_B=PATH       a second rcptguard-postfix binary to compare
#                           (e.g. one built from the previous commit)
#
# Bounded: each client stops after RG_SECONDS (under timeout(1)); every
# process listens on 127.0.0.1 (port 0) and is stopped by its PID.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD="${1:-$ROOT/build-test}"
SESSIONS="${RG_SESSIONS:-1}"
PROTOCOL="${RG_PROTOCOL:-policy}"
SECONDS_PER_RUN="${RG_SECONDS:-4}"
ROUNDS="${RG_ROUNDS:-1}"
RGD="$BUILD/server/rcptguardd"
ADAPTER_A="$BUILD/clients/postfix/rcptguard-postfix"
for bin in "$RGD" "$ADAPTER_A" ${RG_ADAPTER_B:+"$RG_ADAPTER_B"}; do
  [[ -x "$bin" ]] || { echo "adapter_probe.sh: $bin missing" >&2; exit 2; }
done
case "$PROTOCOL" in
  policy | socketmap) ;;
  *) echo "adapter_probe.sh: RG_PROTOCOL must be policy or socketmap" >&2; exit 2 ;;
esac
source "$ROOT/tests/bench/lib.sh"
bench_workdir rg-adapter-probe

sample_valid_addresses "$ROOT" >"$WORK/valid.txt"
sample_config "$ROOT" 'metrics { disabled: true }
harvest { disabled: true }
shutdown { grace_ms: 0 drain_timeout_ms: 500 }' >"$WORK/rg.textproto"
"$RGD" --config="$WORK/rg.textproto" --port_file="$WORK/rg.port" \
  >"$WORK/rg.log" 2>&1 &
RGD_PID=$!
bench_track "$RGD_PID"
wait_file "$WORK/rg.port" || { cat "$WORK/rg.log"; exit 1; }

cat >"$WORK/client.py" <<'PY'
# client.py PROTOCOL PORT SECONDS VALID_FILE: requests answered
import random, socket, sys, time
protocol, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
valid = [l.strip() for l in open(sys.argv[4]) if l.strip()]
s = socket.create_connection(("127.0.0.1", port))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
f = s.makefile("rb")
n, end = 0, time.time() + seconds
while time.time() < end:
    rcpt = (random.choice(valid) if random.random() < 0.5
            else "nobody%d@example.com" % random.randint(0, 1 << 30))
    if protocol == "policy":
        s.sendall(("request=smtpd_access_policy\nprotocol_state=RCPT\n"
                   "client_address=192.0.2.%d\nsender=a@b.example\n"
                   "recipient=%s\ninstance=%d\n\n"
                   % (random.randint(1, 200), rcpt, n)).encode())
        while f.readline() not in (b"\n", b""):
            pass
    else:
        payload = ("rcpt " + rcpt).encode()
        s.sendall(b"%d:%s," % (len(payload), payload))
        length = b""
        while (c := f.read(1)) not in (b":", b""):
            length += c
        f.read(int(length) + 1)
    n += 1
print(n)
PY

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
switches() {
  local total=0 t
  for t in /proc/"$1"/task/*/status; do
    total=$((total + $(awk '/^voluntary_ctxt_switches/ {print $2}' "$t")))
  done
  echo "$total"
}

# run LABEL ADAPTER: one measured run of ADAPTER.
run() {
  local label=$1 adapter=$2 port pid a0 c0 r0 a1 c1 r1 total=0 i
  local clients=()
  rm -f "$WORK/ad.port"
  "$adapter" --server="127.0.0.1:$(cat "$WORK/rg.port")" \
    --policy_listen="$([[ $PROTOCOL == policy ]] && echo inet:127.0.0.1:0)" \
    --socketmap_listen="$([[ $PROTOCOL == socketmap ]] && echo inet:127.0.0.1:0)" \
    --metrics_listen= --port_file="$WORK/ad.port" >"$WORK/ad.log" 2>&1 &
  pid=$!
  bench_track "$pid"
  wait_file "$WORK/ad.port" || { cat "$WORK/ad.log"; exit 1; }
  port=$(sed -n "s/^$PROTOCOL=//p" "$WORK/ad.port")
  # Warm-up: the stream to rcptguardd opens.
  timeout 10 python3 "$WORK/client.py" "$PROTOCOL" "$port" 0.5 "$WORK/valid.txt" >/dev/null
  a0=$(ticks "$pid"); c0=$(switches "$pid"); r0=$(ticks "$RGD_PID")
  for i in $(seq "$SESSIONS"); do
    timeout $((SECONDS_PER_RUN + 10)) python3 "$WORK/client.py" "$PROTOCOL" "$port" \
      "$SECONDS_PER_RUN" "$WORK/valid.txt" >"$WORK/n.$i" &
    clients+=("$!")
  done
  wait "${clients[@]}"
  a1=$(ticks "$pid"); c1=$(switches "$pid"); r1=$(ticks "$RGD_PID")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  for i in $(seq "$SESSIONS"); do total=$((total + $(cat "$WORK/n.$i"))); done
  python3 -c "
n=max($total,1); hz=$(getconf CLK_TCK)
print('%-2s %-9s sessions %-3d %7.0f req/s  adapter %6.1f us/req  %.2f switches/req  rcptguardd %6.1f us/req' % (
  '$label', '$PROTOCOL', $SESSIONS, n/$SECONDS_PER_RUN, ($a1-$a0)*1e6/hz/n, ($c1-$c0)/n, ($r1-$r0)*1e6/hz/n))"
}

for _ in $(seq "$ROUNDS"); do
  run A "$ADAPTER_A"
  if [[ -n "${RG_ADAPTER_B:-}" ]]; then run B "$RG_ADAPTER_B"; fi
done
