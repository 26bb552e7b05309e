#!/usr/bin/env bash
# rcptguard against its baselines, in one run on this machine (issue 8):
# rcptguardd over gRPC (unary batch 1/10/100, ValidateStream batch 1, and a
# light-load run for latency), OpenLDAP slapd answering the Postfix ldap
# table's query per recipient, gRPC's own floor (empty unary calls: health
# Check), and the in-process floors (flat_hash_set, the real Directory,
# random memory access). Prints one table with the absolute figures, the
# ratios and the issue's targets.
#
#   tests/bench/compare.sh [BUILD_DIR]
#
#   BUILD_DIR  a Release build with rcptguardd, rcptguard and
#              rcptguard-bench (default: build-rel under the repo)
#
# Environment (all optional):
#   RG_ADDRESSES=1000000        addresses in the served directory and slapd
#   RG_INPROC_ADDRESSES=10000000 addresses for the in-process modes
#   RG_DURATION=5s              length of each measured run
#   RG_CONCURRENCY=16           requests in flight (gRPC) / connections (LDAP)
#   RG_KEEP=1                   keep the work dir (LDIF, configs, logs, JSON)
#
# Everything listens on 127.0.0.1 only. rcptguardd and slapd are started by
# this script and stopped by their PIDs (never by name), also on failure or
# interrupt. The whole script is bounded: every step runs under timeout(1),
# and a watchdog sends the script SIGTERM after 290 s (bash acts on it when
# the step in progress ends). A normal run takes about 90-110 s. Needs python3 and slapd (Debian
# packages python3, slapd).
set -euo pipefail

REPO="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD="${1:-$REPO/build-rel}"
ADDRESSES="${RG_ADDRESSES:-1000000}"
INPROC_ADDRESSES="${RG_INPROC_ADDRESSES:-10000000}"
DURATION="${RG_DURATION:-5s}"
CONCURRENCY="${RG_CONCURRENCY:-16}"

SERVER="$BUILD/server/rcptguardd"
CLI="$BUILD/clients/rcptguard"
BENCH="$BUILD/clients/bench/rcptguard-bench"
SLAPD=/usr/sbin/slapd
SLAPADD=/usr/sbin/slapadd
for bin in "$SERVER" "$CLI" "$BENCH"; do
  [[ -x "$bin" ]] || { echo "compare.sh: $bin missing (build it: ninja -C $BUILD rcptguardd rcptguard rcptguard-bench)" >&2; exit 2; }
done
[[ -x "$SLAPD" && -x "$SLAPADD" ]] || { echo "compare.sh: slapd missing (apt-get install slapd)" >&2; exit 2; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/rg-compare-XXXXXX")"
RG_PID=""
SLAPD_PID=""
WATCHDOG_PID=""
stop_pid() {  # stop_pid PID: TERM, wait up to 5 s, then KILL; by PID only
  local pid="$1"
  [[ -n "$pid" ]] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}
cleanup() {
  stop_pid "$RG_PID"
  stop_pid "$SLAPD_PID"
  [[ -n "$WATCHDOG_PID" ]] && kill "$WATCHDOG_PID" 2>/dev/null || true
  if [[ "${RG_KEEP:-0}" == 1 ]]; then
    echo "compare.sh: work dir kept: $WORK" >&2
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'echo "compare.sh: interrupted" >&2; exit 130' INT TERM
(
  trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
  sleep 290 & sleeper=$!
  wait "$sleeper"
  echo "compare.sh: 290 s bound reached, stopping" >&2
  kill -TERM $$
) &
WATCHDOG_PID=$!

T_START=$(date +%s)
log() { echo "== [$(( $(date +%s) - T_START ))s] $*" >&2; }
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

log "generating $ADDRESSES entries (user<i>@example.com, objectClass user)"
timeout 120 python3 - "$ADDRESSES" "$WORK/dir.ldif" <<'PY'
import sys
n, path = int(sys.argv[1]), sys.argv[2]
with open(path, "w") as out:
    out.write("dn: dc=example,dc=com\nobjectClass: domain\ndc: example\n\n"
              "dn: ou=people,dc=example,dc=com\nobjectClass: organizationalUnit\n"
              "ou: people\n\n")
    chunk = []
    for i in range(n):
        chunk.append("dn: cn=user%d,ou=people,dc=example,dc=com\nobjectClass: user\n"
                     "cn: user%d\nmail: user%d@example.com\n"
                     "proxyAddresses: SMTP:user%d@example.com\n\n" % (i, i, i, i))
        if len(chunk) == 10000:
            out.write("".join(chunk))
            chunk = []
    out.write("".join(chunk))
PY

log "starting rcptguardd on it (loads in the background)"
cat > "$WORK/rcptguard.textproto" <<EOF
listen_address: "127.0.0.1:0"
insecure_plaintext: true
domains { name: "example.com" subaddress_delimiters: "+" }
directory { ldif_files: "$WORK/dir.ldif" preset: "ad" max_shrink: 1.0 }
metrics { disabled: true }
limits { max_recipients_per_request: 1000 }
shutdown { grace_ms: 0 drain_timeout_ms: 1000 }
EOF
"$SERVER" --config="$WORK/rcptguard.textproto" --port_file="$WORK/rg.port" \
  > "$WORK/rcptguardd.log" 2>&1 &
RG_PID=$!

log "slapadd of the same entries (back_mdb, index mail,proxyAddresses eq)"
mkdir -p "$WORK/slapd/db"
MODULES=""
if [[ -r /usr/lib/ldap/back_mdb.so ]]; then
  MODULES=$'modulepath /usr/lib/ldap\nmoduleload back_mdb'
fi
# As tests/testutil/slapd.cc writes it, plus the equality indexes a Postfix
# ldap table needs (without them every search scans the whole database).
cat > "$WORK/slapd/slapd.conf" <<EOF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include $REPO/tests/testdata/ldap/ad-lite.schema
pidfile $WORK/slapd/slapd.pid
argsfile $WORK/slapd/slapd.args
$MODULES
sizelimit unlimited
database mdb
maxsize 17179869184
suffix "dc=example,dc=com"
rootdn "cn=admin,dc=example,dc=com"
rootpw bench-only
directory $WORK/slapd/db
index objectClass eq
index mail,proxyAddresses eq
access to attrs=userPassword by anonymous auth by * none
access to * by * read
EOF
SA_T0=$(date +%s.%N)
timeout 200 "$SLAPADD" -q -f "$WORK/slapd/slapd.conf" -l "$WORK/dir.ldif"
SA_T1=$(date +%s.%N)
SLAPADD_S=$(awk -v a="$SA_T0" -v b="$SA_T1" 'BEGIN { printf "%.1f", b - a }')
SLAPD_PORT=$(free_port)
"$SLAPD" -f "$WORK/slapd/slapd.conf" -h "ldap://127.0.0.1:$SLAPD_PORT/" -d 0 \
  > "$WORK/slapd.log" 2>&1 &
SLAPD_PID=$!

log "waiting for rcptguardd to serve"
for _ in $(seq 600); do
  [[ -s "$WORK/rg.port" ]] && break
  kill -0 "$RG_PID" 2>/dev/null || { cat "$WORK/rcptguardd.log" >&2; exit 1; }
  sleep 0.1
done
RG_TARGET="127.0.0.1:$(cat "$WORK/rg.port")"
for _ in $(seq 600); do
  timeout 5 "$CLI" health --server "$RG_TARGET" >/dev/null 2>&1 && break
  kill -0 "$RG_PID" 2>/dev/null || { cat "$WORK/rcptguardd.log" >&2; exit 1; }
  sleep 0.2
done
timeout 5 "$CLI" health --server "$RG_TARGET" >/dev/null || { echo "compare.sh: rcptguardd not serving" >&2; exit 1; }
RG_RSS_KB=$(awk '/^VmRSS:/ { print $2 }' "/proc/$RG_PID/status")
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$SLAPD_PORT") 2>/dev/null && break
  kill -0 "$SLAPD_PID" 2>/dev/null || { cat "$WORK/slapd.log" >&2; exit 1; }
  sleep 0.1
done

COMMON=(--generate="$ADDRESSES" --unknown_share=0.1 --duration="$DURATION" --json)
bench() {  # bench NAME ARGS...: one run, JSON kept in $WORK/NAME.json
  local name="$1"; shift
  log "run $name: $*"
  if ! timeout 120 "$BENCH" "${COMMON[@]}" "$@" > "$WORK/$name.json" 2> "$WORK/$name.err"; then
    echo "compare.sh: run $name failed or had errors:" >&2
    cat "$WORK/$name.json" "$WORK/$name.err" >&2
  fi
}
GRPC=(--target="$RG_TARGET" --server_pid="$RG_PID" --connections=2 --client_threads=2)
bench unary_b1 --mode=unary --batch=1 --concurrency="$CONCURRENCY" "${GRPC[@]}"
bench unary_b10 --mode=unary --batch=10 --concurrency="$CONCURRENCY" "${GRPC[@]}"
bench unary_b100 --mode=unary --batch=100 --concurrency="$CONCURRENCY" "${GRPC[@]}"
bench stream_b1 --mode=stream --batch=1 --concurrency="$CONCURRENCY" "${GRPC[@]}"
# gRPC's own cost per unary call: empty health checks to the same server.
bench grpc_floor --mode=grpc-floor --concurrency="$CONCURRENCY" "${GRPC[@]}"
# Light load for the latency target: few calls in flight.
bench unary_b10_light --mode=unary --batch=10 --concurrency=2 --client_threads=1 \
  --target="$RG_TARGET" --server_pid="$RG_PID" --connections=1
bench ldap --mode=ldap --ldap_uri="ldap://127.0.0.1:$SLAPD_PORT/" \
  --ldap_base=dc=example,dc=com --concurrency="$CONCURRENCY" --server_pid="$SLAPD_PID"
stop_pid "$RG_PID"; RG_PID=""
stop_pid "$SLAPD_PID"; SLAPD_PID=""
INPROC=(--generate="$INPROC_ADDRESSES" --unknown_share=0.5 --duration="$DURATION" --json --batch=64 --threads=1)
for mode in inprocess-hashset inprocess-directory random-access; do
  log "run $mode ($INPROC_ADDRESSES addresses)"
  timeout 150 "$BENCH" "${INPROC[@]}" --mode="$mode" > "$WORK/$mode.json" 2> "$WORK/$mode.err" \
    || { echo "compare.sh: $mode failed:" >&2; cat "$WORK/$mode.json" "$WORK/$mode.err" >&2; }
done

log "done"
python3 - "$WORK" "$ADDRESSES" "$INPROC_ADDRESSES" "$RG_RSS_KB" "$SLAPADD_S" "$(nproc)" <<'PY'
import json, os, sys
work, n, n_in, rss_kb, slapadd_s, cores = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], int(sys.argv[6])

def load(name):
    try:
        with open(os.path.join(work, name + ".json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None

runs = {k: load(k) for k in ["unary_b1", "unary_b10", "unary_b100", "stream_b1",
                             "grpc_floor", "unary_b10_light", "ldap", "inprocess-hashset",
                             "inprocess-directory", "random-access"]}

def f(v, unit=""):
    if v is None:
        return "-"
    if v >= 1e6:
        return "%.2f M%s" % (v / 1e6, unit)
    if v >= 1e3:
        return "%.1f k%s" % (v / 1e3, unit)
    return "%.1f%s" % (v, unit)

def g(r, *keys):
    for k in keys:
        if r is None or r.get(k) is None:
            return None
        r = r[k]
    return r

print()
print("rcptguard vs baselines: %d addresses served (gRPC, slapd), %d in-process; %d cores" % (n, n_in, cores))
print()
hdr = "%-30s %10s %10s %8s %8s %8s %9s %9s %9s %8s %6s" % (
    "run", "RPCs/s", "rcpts/s", "p50 us", "p90 us", "p99 us", "p99.9 us",
    "srv cores", "cli cores", "srv s/M", "errors")
print(hdr)
print("-" * len(hdr))
labels = [("unary_b1", "gRPC unary, batch 1"), ("unary_b10", "gRPC unary, batch 10"),
          ("unary_b100", "gRPC unary, batch 100"), ("stream_b1", "gRPC stream, batch 1"),
          ("grpc_floor", "gRPC floor: empty unary call"),
          ("unary_b10_light", "gRPC unary b10, 2 in flight"),
          ("ldap", "slapd, 1 search per rcpt")]
for key, label in labels:
    r = runs[key]
    if r is None:
        print("%-30s %s" % (label, "(failed)"))
        continue
    lat = r["latency_us"]
    srv = r.get("server_cpu_seconds")
    cores_used = srv / r["seconds"] if srv is not None and r["seconds"] else None
    print("%-30s %10s %10s %8.0f %8.0f %8.0f %9.0f %9s %9.2f %8s %6d" % (
        label, f(r["requests_per_second"]), f(r["recipients_per_second"]),
        lat["p50"], lat["p90"], lat["p99"], lat["p999"],
        "-" if cores_used is None else "%.2f" % cores_used,
        r["client_cpu_seconds"] / r["seconds"],
        "-" if r.get("server_cpu_seconds_per_million_recipients") is None
        else "%.2f" % r["server_cpu_seconds_per_million_recipients"],
        r["errors_total"]))
print()
hdr2 = "%-30s %14s %16s %12s %7s" % ("in-process (1 thread, batch 64)", "lookups/s", "per CPU second", "table MiB", "errors")
print(hdr2)
print("-" * len(hdr2))
for key, label in [("inprocess-hashset", "flat_hash_set<std::string>"),
                   ("inprocess-directory", "Directory::LookupBatch"),
                   ("random-access", "random access (floor)")]:
    r = runs[key]
    if r is None:
        print("%-30s %s" % (label, "(failed)"))
        continue
    print("%-30s %14s %16s %12.1f %7d" % (label, f(r["lookups_per_second_per_thread"]),
          f(r["lookups_per_cpu_second"]), r["table_bytes"] / 1048576.0, r["errors_total"]))

def ratio(a, b):
    return None if a is None or b in (None, 0) else a / b

def rate(key, field="recipients_per_second"):
    return g(runs[key], field)

print("(srv/cli cores: CPU seconds of the server / of rcptguard-bench per second of run;")
print(" srv s/M: server CPU seconds per million recipients)")
print()
print("ratios")
def line(label, v, fmt="%.1fx"):
    print("  %-58s %s" % (label, "-" if v is None else fmt % v))
line("gRPC unary batch 10 / slapd (recipients/s)", ratio(rate("unary_b10"), rate("ldap")))
line("gRPC unary batch 100 / slapd (recipients/s)", ratio(rate("unary_b100"), rate("ldap")))
line("gRPC stream batch 1 / unary batch 1 (msgs/s)", ratio(rate("stream_b1"), rate("unary_b1")), "%.2fx")
line("in-process directory / gRPC batch 100 (recipients/s)",
     ratio(rate("inprocess-directory", "lookups_per_second_per_thread"), rate("unary_b100")))
line("random access / in-process directory (per CPU s)",
     ratio(rate("random-access", "lookups_per_cpu_second"), rate("inprocess-directory", "lookups_per_cpu_second")))
line("in-process directory / flat_hash_set (per CPU s)",
     ratio(rate("inprocess-directory", "lookups_per_cpu_second"), rate("inprocess-hashset", "lookups_per_cpu_second")), "%.2fx")
light, sat = rate("unary_b10_light"), rate("unary_b10")
line("light-load run at share of saturated batch-10 throughput", ratio(light, sat), "%.2f")
cpu_m = {k: g(runs[k], "server_cpu_seconds_per_million_recipients") for k in runs}
line("slapd CPU s/M / rcptguardd CPU s/M at batch 10", ratio(cpu_m.get("ldap"), cpu_m.get("unary_b10")))
# The floor's s/M is per million calls; a batch-10 call costs 10x its s/M.
floor = cpu_m.get("grpc_floor")
if floor and cpu_m.get("unary_b10"):
    line("server CPU per batch-10 Validate call / per empty call",
         ratio(10 * cpu_m["unary_b10"], floor), "%.2fx")
    line("slapd CPU s/M / (empty call's CPU / 10): the best batch 10 can do",
         ratio(cpu_m.get("ldap"), floor / 10))
print("  %-58s %.1f bytes (RSS %.1f MiB at %d addresses)" % (
    "rcptguardd RSS after load per address", rss_kb * 1024.0 / n, rss_kb / 1024.0, n))
print("  %-58s %s s" % ("slapadd of the same LDIF (with indexes)", slapadd_s))

print()
print("issue 8 targets (ratios on this machine)")
def target(label, ok, measured):
    state = "n/a" if ok is None else ("MET" if ok else "NOT MET")
    print("  %-62s %-8s %s" % (label, state, measured))
d_cpu = rate("inprocess-directory", "lookups_per_cpu_second")
target(">= 20 M lookups/s per core in-process (batched)", None if d_cpu is None else d_cpu >= 20e6,
       "%s per CPU s" % f(d_cpu))
r_ra = ratio(rate("random-access", "lookups_per_cpu_second"), d_cpu)
target("in-process within 2.5x of random access", None if r_ra is None else r_ra <= 2.5,
       "-" if r_ra is None else "%.1fx" % r_ra)
b100 = rate("unary_b100")
target(">= 3 M recipients/s over gRPC at batch 100", None if b100 is None else b100 >= 3e6, f(b100))
st = runs["stream_b1"]
per_core = None
if st and st.get("server_cpu_seconds"):
    per_core = st["requests"] / st["server_cpu_seconds"]
target(">= 100 k msgs/s per server core, stream batch 1", None if per_core is None else per_core >= 1e5,
       "%s msgs per server CPU s" % f(per_core))
r_ldap = ratio(rate("unary_b10"), rate("ldap"))
target(">= 100x slapd at batch 10", None if r_ldap is None else r_ldap >= 100,
       "-" if r_ldap is None else "%.1fx" % r_ldap)
p99 = g(runs["unary_b10_light"], "latency_us", "p99")
share = ratio(light, sat)
target("p99 < 1 ms at half of saturated throughput",
       None if p99 is None else (p99 < 1000),
       "-" if p99 is None else "p99 %.0f us at %.0f%% of saturation" % (p99, 100 * (share or 0)))
target("<= 12 bytes per address at 100 M (RSS)", None,
       "not measured at 100 M; %.1f bytes at %d" % (rss_kb * 1024.0 / n, n))
errors = sum((r or {}).get("errors_total", 0) for r in runs.values())
failed = [k for k, r in runs.items() if r is None]
print()
print("answers checked: %d mismatches%s" % (errors, "; failed runs: " + ", ".join(failed) if failed else ""))
sys.exit(1 if errors or failed else 0)
PY
