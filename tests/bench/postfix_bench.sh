#!/usr/bin/env bash
# Postfix adapter benchmark (bounded: about two minutes).
#
#   tests/bench/postfix_bench.sh [BUILD_DIR]      (as root; needs postfix,
#                                                   postfix-lmdb, python3)
#
# Part 1, the adapter alone: 2000 idle policy connections held open while
# 200 active ones send requests back to back (Python asyncio client), then
# 200 active socketmap connections; requests/s, latency percentiles, the
# adapter's threads and RSS.
#
# Part 2, RCPT commands per second through one private Postfix instance, in
# the same run: relay_recipient_maps = lmdb: (the baseline a site would use
# without rcptguard), relay_recipient_maps = ldap: (Postfix asking a private
# slapd directly, one search per RCPT, mail indexed; when slapd and
# postfix-ldap are installed), relay_recipient_maps = socketmap: (adapter),
# and check_policy_service (adapter). tests/bench/smtp_driver.py sends the
# RCPTs: a fixed mix of 1/3 valid and 2/3 unknown demo addresses
# ("mixed"); harvest detection is off in the
# server (every session comes from 127.0.0.1), Postfix's own error tarpit is
# off (smtpd_error_sleep_time = 0, high soft/hard error limits) and
# in_flow_delay = 0.
#
# Issue 15's figures: every Postfix row prints the adapter's and rcptguardd's
# (on the ldap: row, slapd's) own CPU per RCPT (utime + stime from /proc/PID/stat over the row) and its
# ratio against the lmdb: row of the same round. Two adapters run side by
# side: the default (lookups over one ValidateBatchStream, group commit)
# and one with --transport=unary (one Validate per lookup, as before).
#
#   RG_BENCH_PIN=1      rcptguardd and slapd on CPU 1 (taskset), Postfix,
#                       the adapters and the SMTP driver on CPU 0 (lmdb: too)
#   RG_BENCH_LDAP=0     skip the ldap: row
#   RG_BENCH_ROUNDS=N   repeat the Postfix rows N times, alternating (each
#                       round starts one row later); the summary gives each
#                       row's RCPTs over all rounds against lmdb:'s
#   RG_BENCH_SKIP_ALONE=1  skip part 1;  RG_BENCH_UNARY=0  skip unary rows
#   RG_BENCH_SECONDS, RG_BENCH_SESSIONS  per row (10 s, 16 sessions)
#
# Everything listens on 127.0.0.1; every process is stopped by PID.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD="${1:-${RG_BINARY_DIR:-$ROOT/build}}"
SECONDS_PER_RUN="${RG_BENCH_SECONDS:-10}"
SESSIONS="${RG_BENCH_SESSIONS:-16}"
ROUNDS="${RG_BENCH_ROUNDS:-1}"
if [ "${RG_BENCH_PIN:-0}" = 1 ]; then
  PIN_SERVER=(taskset -c 1)
  PIN_EDGE=(taskset -c 0)
else
  PIN_SERVER=()
  PIN_EDGE=()
fi
RGD="$BUILD/server/rcptguardd"
ADAPTER="$BUILD/clients/postfix/rcptguard-postfix"
for b in "$RGD" "$ADAPTER" /usr/sbin/postfix /usr/sbin/postmap python3; do
  command -v "$b" >/dev/null || { echo "missing: $b" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "run as root (private Postfix instance)" >&2; exit 2; }

source "$ROOT/tests/bench/lib.sh"
bench_workdir rg-postfix-bench
MASTER_CONFIG=""
stop_postfix() {
  if [ -n "$MASTER_CONFIG" ]; then
    postfix -c "$MASTER_CONFIG" stop >/dev/null 2>&1 || true
  fi
}
bench_on_exit stop_postfix

# --- rcptguardd and the adapter --------------------------------------------
sample_config "$ROOT" 'harvest { disabled: true }
shutdown { grace_ms: 0 drain_timeout_ms: 1000 }' >"$WORK/rg.textproto"
"${PIN_SERVER[@]}" "$RGD" --config="$WORK/rg.textproto" \
  --port_file="$WORK/rg.port" >"$WORK/rg.log" 2>&1 &
RG_PID=$!
bench_track "$RG_PID"
wait_file "$WORK/rg.port" || { cat "$WORK/rg.log"; exit 1; }
RG_PORT="$(cat "$WORK/rg.port")"
"${PIN_EDGE[@]}" "$ADAPTER" --server="127.0.0.1:$RG_PORT" \
  --policy_listen=inet:127.0.0.1:0 --socketmap_listen=inet:127.0.0.1:0 \
  --metrics_listen=127.0.0.1:0 --port_file="$WORK/adapter.ports" \
  --log_level=warning >"$WORK/adapter.log" 2>&1 &
ADAPTER_PID=$!
bench_track "$ADAPTER_PID"
"${PIN_EDGE[@]}" "$ADAPTER" --server="127.0.0.1:$RG_PORT" --transport=unary \
  --policy_listen=inet:127.0.0.1:0 --socketmap_listen=inet:127.0.0.1:0 \
  --metrics_listen=127.0.0.1:0 --port_file="$WORK/unary.ports" \
  --log_level=warning >"$WORK/unary.log" 2>&1 &
UNARY_PID=$!
bench_track "$UNARY_PID"
wait_file "$WORK/adapter.ports" || { cat "$WORK/adapter.log"; exit 1; }
wait_file "$WORK/unary.ports" || { cat "$WORK/unary.log"; exit 1; }
POLICY_PORT="$(sed -n 's/^policy=//p' "$WORK/adapter.ports")"
SOCKETMAP_PORT="$(sed -n 's/^socketmap=//p' "$WORK/adapter.ports")"
UNARY_POLICY_PORT="$(sed -n 's/^policy=//p' "$WORK/unary.ports")"
UNARY_SOCKETMAP_PORT="$(sed -n 's/^socketmap=//p' "$WORK/unary.ports")"
sleep 0.5

# Recipients: demo addresses, 1 valid : 2 unknown.
sample_valid_addresses "$ROOT" >"$WORK/valid.txt"

# --- slapd for the ldap: row (optional) --------------------------------------
SLAPD_PID=""
if [ "${RG_BENCH_LDAP:-1}" = 1 ] && [ -x /usr/sbin/slapd ] &&
   [ -e /usr/lib/postfix/postfix-ldap.so ]; then
  mkdir -p "$WORK/slapd/db"
  LDAP_MODULES=""
  if [ -r /usr/lib/ldap/back_mdb.so ]; then
    LDAP_MODULES=$'modulepath /usr/lib/ldap\nmoduleload back_mdb'
  fi
  cat >"$WORK/slapd/slapd.conf" <<EOF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile $WORK/slapd/slapd.pid
argsfile $WORK/slapd/slapd.args
$LDAP_MODULES
sizelimit unlimited
database mdb
maxsize 1073741824
suffix "dc=example,dc=com"
rootdn "cn=admin,dc=example,dc=com"
rootpw bench-only
directory $WORK/slapd/db
index objectClass eq
index mail eq
access to * by * read
EOF
  # One inetOrgPerson per valid demo address: Postfix's ldap table looks
  # up the mail attribute.
  python3 - "$WORK/valid.txt" >"$WORK/slapd/users.ldif" <<'EOF'
import sys
print("dn: dc=example,dc=com\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: example\n")
for i, a in enumerate(l.strip() for l in open(sys.argv[1]) if l.strip()):
    print(f"dn: uid=u{i},dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: u{i}\ncn: u{i}\nsn: u{i}\nmail: {a}\n")
EOF
  timeout 60 /usr/sbin/slapadd -q -f "$WORK/slapd/slapd.conf" \
    -l "$WORK/slapd/users.ldif" >"$WORK/slapd/slapadd.log" 2>&1 || {
    cat "$WORK/slapd/slapadd.log"; exit 1; }
  SLAPD_PORT="$(free_port)"
  "${PIN_SERVER[@]}" /usr/sbin/slapd -f "$WORK/slapd/slapd.conf" \
    -h "ldap://127.0.0.1:$SLAPD_PORT/" -d 0 >"$WORK/slapd.log" 2>&1 &
  SLAPD_PID=$!
  bench_track "$SLAPD_PID"
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$SLAPD_PORT") 2>/dev/null && break
    sleep 0.1
  done
  cat >"$WORK/ldap-recipients.cf" <<EOF
server_host = ldap://127.0.0.1:$SLAPD_PORT
version = 3
bind = no
search_base = dc=example,dc=com
query_filter = (mail=%s)
result_attribute = mail
EOF
else
  echo "(no ldap: row: it needs slapd and postfix-ldap; RG_BENCH_LDAP=0 skips it)"
fi

if [ "${RG_BENCH_SKIP_ALONE:-0}" != 1 ]; then
echo "== adapter alone: 2000 idle + 200 active policy connections, then 200 socketmap =="
"${PIN_EDGE[@]}" python3 - "$POLICY_PORT" "$SOCKETMAP_PORT" "$SECONDS_PER_RUN" "$ADAPTER_PID" <<'EOF'
import asyncio, sys, time
policy_port, sm_port, secs, pid = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
REQ = ("request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=198.51.100.{ip}\n"
       "helo_name=bench.example.net\nsender=s@example.net\nrecipient={rcpt}\n"
       "instance=b.{n}\nqueue_id=\n\n")
RCPTS = ["alice@example.com", "nobody@example.com", "guess@example.com"]

def proc(field):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field):
            return line.split()[1]

async def policy_worker(i, stop, lat):
    r, w = await asyncio.open_connection("127.0.0.1", policy_port)
    n = 0
    while time.monotonic() < stop:
        t = time.monotonic()
        w.write(REQ.format(ip=i % 250, rcpt=RCPTS[n % 3], n=n).encode())
        await r.readuntil(b"\n\n")
        lat.append(time.monotonic() - t)
        n += 1
    w.close()

async def sm_worker(i, stop, lat):
    r, w = await asyncio.open_connection("127.0.0.1", sm_port)
    n = 0
    while time.monotonic() < stop:
        p = ("rcpt " + RCPTS[n % 3]).encode()
        t = time.monotonic()
        w.write(str(len(p)).encode() + b":" + p + b",")
        head = await r.readuntil(b":")
        await r.readexactly(int(head[:-1]) + 1)
        lat.append(time.monotonic() - t)
        n += 1
    w.close()

def report(name, lat, secs):
    lat.sort()
    pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000
    print(f"{name}: {len(lat)/secs:8.0f} req/s  p50 {pct(.5):.2f} ms  p99 {pct(.99):.2f} ms  "
          f"max {lat[-1]*1000:.1f} ms")

async def main():
    idle = []
    for _ in range(2000):
        idle.append(await asyncio.open_connection("127.0.0.1", policy_port))
    print(f"2000 idle connections open; adapter threads {proc('Threads:')}, RSS {proc('VmRSS:')} kB")
    lat = []
    stop = time.monotonic() + secs
    await asyncio.gather(*(policy_worker(i, stop, lat) for i in range(200)))
    report("policy, 200 active (+2000 idle)", lat, secs)
    print(f"adapter threads {proc('Threads:')}, RSS {proc('VmRSS:')} kB")
    lat = []
    stop = time.monotonic() + secs
    await asyncio.gather(*(sm_worker(i, stop, lat) for i in range(200)))
    report("socketmap, 200 active (+2000 idle)", lat, secs)
    for _, w in idle:
        w.close()
asyncio.run(main())
EOF
fi

# --- the adapter's own cost per request, by transport ------------------------
# 64 connections asking back to back (Python asyncio), against the default
# adapter (batch_stream) and the unary one alternately; the adapter's CPU
# and context switches per request from /proc (its gRPC client included).
# Context switches (voluntary + involuntary, all threads) are far less
# sensitive to other load on the machine than CPU time.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ctx_switches() {
  cat /proc/"$1"/task/*/status 2>/dev/null |
    awk '/ctxt_switches/ {n += $2} END {print n + 0}'
}
TICK_US=$((1000000 / $(getconf CLK_TCK)))
adapter_cost() {  # LABEL PROTOCOL PORT PID
  local a0 a1 c0 c1 total
  a0="$(cpu_ticks "$4")"; c0="$(ctx_switches "$4")"
  "${PIN_EDGE[@]}" python3 - "$2" "$3" "$SECONDS_PER_RUN" "$WORK/alone.total" <<'EOF'
import asyncio, sys, time
proto, port, secs, out = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
REQ = ("request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=198.51.100.{ip}\n"
       "helo_name=bench.example.net\nsender=s@example.net\nrecipient={rcpt}\n"
       "instance=b.{n}\nqueue_id=\n\n")
RCPTS = ["alice@example.com", "nobody@example.com", "guess@example.com"]
count = 0
async def worker(i, stop):
    global count
    r, w = await asyncio.open_connection("127.0.0.1", port)
    n = 0
    while time.monotonic() < stop:
        if proto == "policy":
            w.write(REQ.format(ip=i % 250, rcpt=RCPTS[n % 3], n=n).encode())
            await r.readuntil(b"\n\n")
        else:
            p = ("rcpt " + RCPTS[n % 3]).encode()
            w.write(str(len(p)).encode() + b":" + p + b",")
            head = await r.readuntil(b":")
            await r.readexactly(int(head[:-1]) + 1)
        n += 1
        count += 1
    w.close()
async def main():
    stop = time.monotonic() + secs
    await asyncio.gather(*(worker(i, stop) for i in range(64)))
asyncio.run(main())
open(out, "w").write(str(count))
EOF
  a1="$(cpu_ticks "$4")"; c1="$(ctx_switches "$4")"
  total="$(cat "$WORK/alone.total")"
  awk -v a=$((a1 - a0)) -v c=$((c1 - c0)) -v n="$total" -v t="$TICK_US" \
      -v s="$SECONDS_PER_RUN" -v l="$1" 'BEGIN {
    printf "%-44s %8.0f req/s   adapter %.1f us/request  %.2f cs/request\n",
           l, n / s, a * t / n, c / n }'
}
if [ "${RG_BENCH_SKIP_ALONE:-0}" != 1 ]; then
  echo "== adapter alone, 64 connections back to back, by transport ($ROUNDS round(s)) =="
  for round in $(seq "$ROUNDS"); do
    adapter_cost "policy, batch_stream" policy "$POLICY_PORT" "$ADAPTER_PID"
    adapter_cost "policy, unary" policy "$UNARY_POLICY_PORT" "$UNARY_PID"
    adapter_cost "socketmap, batch_stream" socketmap "$SOCKETMAP_PORT" "$ADAPTER_PID"
    adapter_cost "socketmap, unary" socketmap "$UNARY_SOCKETMAP_PORT" "$UNARY_PID"
  done
fi

# --- a private Postfix -----------------------------------------------------
SMTP_PORT="$(free_port)"; SINK_PORT="$(free_port)"
mkdir -p "$WORK/pf/config" "$WORK/pf/queue" "$WORK/pf/data"
chmod 755 "$WORK/pf" "$WORK/pf/config" "$WORK/pf/queue"
chown postfix "$WORK/pf/data"
awk '{print $0 "\tOK"}' "$WORK/valid.txt" >"$WORK/pf/valid"
cat >"$WORK/pf/config/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $WORK/pf/queue
data_directory = $WORK/pf/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = rcptguard-bench.localdomain
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains = example.com, example.org, mail.example.com
default_transport = smtp:[127.0.0.1]:$SINK_PORT
relay_transport = smtp:[127.0.0.1]:$SINK_PORT
smtp_dns_support_level = disabled
smtpd_peername_lookup = no
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions = reject_unauth_destination
in_flow_delay = 0
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 100000
smtpd_hard_error_limit = 100000
smtpd_recipient_limit = 100000
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
default_process_limit = 200
maillog_file = $WORK/pf/maillog
maillog_file_prefixes = $WORK
biff = no
EOF
cat >"$WORK/pf/config/master.cf" <<EOF
127.0.0.1:$SMTP_PORT inet n - n - - smtpd
pickup     unix  n - n 60   1 pickup
cleanup    unix  n - n -    0 cleanup
qmgr       unix  n - n 300  1 qmgr
rewrite    unix  - - n -    - trivial-rewrite
bounce     unix  - - n -    0 bounce
defer      unix  - - n -    0 bounce
trace      unix  - - n -    0 bounce
verify     unix  - - n -    1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -    - proxymap
proxywrite unix  - - n -    1 proxymap
smtp       unix  - - n -    - smtp
relay      unix  - - n -    - smtp
showq      unix  n - n -    - showq
error      unix  - - n -    - error
retry      unix  - - n -    - error
discard    unix  - - n -    - discard
anvil      unix  - - n -    1 anvil
scache     unix  - - n -    1 scache
postlog    unix-dgram n - n - 1 postlogd
EOF
postmap -c "$WORK/pf/config" lmdb:"$WORK/pf/valid"
MASTER_CONFIG="$WORK/pf/config"
"${PIN_EDGE[@]}" postfix -c "$MASTER_CONFIG" start >/dev/null 2>&1 || {
  echo "postfix start failed"; cat "$WORK/pf/maillog" 2>/dev/null; exit 1; }


rcpt_rate() {  # $1 = label, $2 = the adapter's PID or empty,
              # $3 = the server's PID (rcptguardd), $4 = its name
  postfix -c "$MASTER_CONFIG" reload >/dev/null 2>&1
  sleep 1.5
  local a0=0 r0 a1=0 r1 c0=0 c1=0 server="${3:-$RG_PID}" name="${4:-rcptguardd}"
  [ -n "$2" ] && a0="$(cpu_ticks "$2")" && c0="$(ctx_switches "$2")"
  r0="$(cpu_ticks "$server")"
  local total not_250 replies
  read -r total not_250 replies < <("${PIN_EDGE[@]}" python3 "$ROOT/tests/bench/smtp_driver.py" \
    "$SMTP_PORT" "$SECONDS_PER_RUN" "$SESSIONS" "$WORK/valid.txt" mixed)
  [[ $total =~ ^[0-9]+$ ]] || { echo "$1: the SMTP driver failed"; exit 1; }
  printf '%-44s %8d RCPT/s   replies %s' "$1" $((total / SECONDS_PER_RUN)) "$replies"
  [ -n "$2" ] && a1="$(cpu_ticks "$2")" && c1="$(ctx_switches "$2")"
  r1="$(cpu_ticks "$server")"
  ROUND_TOTAL[$ROW]=$total
  SUM_TOTAL[$ROW]=$(( ${SUM_TOTAL[$ROW]:-0} + total ))
  awk -v a=$((a1 - a0)) -v r=$((r1 - r0)) -v n="$total" -v t="$TICK_US" \
      -v c=$((c1 - c0)) -v name="$name" 'BEGIN {
    if (n > 0) printf "   adapter %.1f us/RCPT %.2f cs/RCPT   %s %.1f us/RCPT", a * t / n, c / n, name, r * t / n;
    printf "\n" }'
}

# One row each: Postfix reconfigured, then measured by rcpt_rate.
row() {
  ROW=$1
  case $1 in
    lmdb)
      postconf -c "$MASTER_CONFIG" -e "relay_recipient_maps = lmdb:$WORK/pf/valid" \
        "smtpd_recipient_restrictions = reject_unauth_destination"
      rcpt_rate "relay_recipient_maps = lmdb:" "" ;;
    ldap)
      postconf -c "$MASTER_CONFIG" -e \
        "relay_recipient_maps = ldap:$WORK/ldap-recipients.cf" \
        "smtpd_recipient_restrictions = reject_unauth_destination"
      rcpt_rate "relay_recipient_maps = ldap: (slapd)" "" "$SLAPD_PID" slapd ;;
    socketmap)
      postconf -c "$MASTER_CONFIG" -e \
        "relay_recipient_maps = socketmap:inet:127.0.0.1:$SOCKETMAP_PORT:rcpt" \
        "smtpd_recipient_restrictions = reject_unauth_destination"
      rcpt_rate "relay_recipient_maps = socketmap: (adapter)" "$ADAPTER_PID" ;;
    policy)
      postconf -c "$MASTER_CONFIG" -e "relay_recipient_maps =" \
        "smtpd_recipient_restrictions = reject_unauth_destination, check_policy_service inet:127.0.0.1:$POLICY_PORT"
      rcpt_rate "check_policy_service (adapter)" "$ADAPTER_PID" ;;
    socketmap_unary)
      postconf -c "$MASTER_CONFIG" -e \
        "relay_recipient_maps = socketmap:inet:127.0.0.1:$UNARY_SOCKETMAP_PORT:rcpt" \
        "smtpd_recipient_restrictions = reject_unauth_destination"
      rcpt_rate "socketmap: (adapter, --transport=unary)" "$UNARY_PID" ;;
    policy_unary)
      postconf -c "$MASTER_CONFIG" -e "relay_recipient_maps =" \
        "smtpd_recipient_restrictions = reject_unauth_destination, check_policy_service inet:127.0.0.1:$UNARY_POLICY_PORT"
      rcpt_rate "check_policy_service (adapter, unary)" "$UNARY_PID" ;;
    none)
      postconf -c "$MASTER_CONFIG" -e "relay_recipient_maps =" \
        "smtpd_recipient_restrictions = reject_unauth_destination"
      rcpt_rate "no recipient check (upper bound)" "" ;;
  esac
}

ROWS=(lmdb)
[ -n "$SLAPD_PID" ] && ROWS+=(ldap)
ROWS+=(socketmap policy)
[ "${RG_BENCH_UNARY:-1}" = 1 ] && ROWS+=(socketmap_unary policy_unary)
ROWS+=(none)
declare -A ROUND_TOTAL SUM_TOTAL RATIOS
echo "== RCPT commands per second through Postfix ($SESSIONS sessions, ${SECONDS_PER_RUN}s each, $ROUNDS round(s), pinned: ${RG_BENCH_PIN:-0}) =="
for round in $(seq "$ROUNDS"); do
  echo "-- round $round"
  # Each round starts one row later: a row's place in the round changes
  # its rate (noise of up to 0.1x between rows in one round), so no row
  # keeps one place.
  n=${#ROWS[@]}
  for ((i = 0; i < n; i++)); do
    row "${ROWS[$(( (i + round - 1) % n ))]}"
  done
  line="   round $round against lmdb:"
  for r in "${ROWS[@]}"; do
    [ "$r" = lmdb ] && continue
    ratio=$(awk -v a="${ROUND_TOTAL[$r]}" -v b="${ROUND_TOTAL[lmdb]}" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
    RATIOS[$r]+=" $ratio"
    line+=" $r ${ratio}x"
  done
  echo "$line"
done
echo "== against lmdb: over all rounds (median of rounds, range)"
for r in "${ROWS[@]}"; do
  [ "$r" = lmdb ] && continue
  python3 -c "
import statistics
x = [float(v) for v in '${RATIOS[$r]}'.split()]
print(f'   $r: {${SUM_TOTAL[$r]}/max(${SUM_TOTAL[lmdb]},1):.2f}x (median {statistics.median(x):.2f}, {min(x):.2f}-{max(x):.2f})')"
done
echo "adapter: $(grep -E '^(Threads|VmRSS)' /proc/$ADAPTER_PID/status | tr -s ' \t' ' ' | tr '\n' ' ')"
