# Shared by the benchmark scripts (source it; bash only):
#
#   source "$(dirname "$0")/lib.sh"
#   bench_workdir rg-edge          # WORK=/tmp/rg-edge-XXXXXX, removed at exit
#   bench_track "$pid"             # stopped by PID (TERM, then waited) at exit
#   bench_on_exit 'postfix stop'   # more to run at exit, before the above
#   free_port; wait_file FILE
#   sample_valid_addresses ROOT [DOMAIN] > FILE
#   sample_config ROOT [EXTRA_LINES] > FILE
#
# Every server these scripts start listens on 127.0.0.1 and is stopped by
# its PID, never by name.

BENCH_PIDS=()
BENCH_EXIT_HOOKS=()
WORK=""

bench_cleanup() {
  local hook p
  for hook in "${BENCH_EXIT_HOOKS[@]}"; do eval "$hook" || true; done
  for p in "${BENCH_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${BENCH_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "$WORK" ]; then rm -rf "$WORK"; fi
}

# A fresh folder in $WORK (under $TMPDIR or /tmp), removed at exit with
# every tracked process stopped.
bench_workdir() {
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/$1-XXXXXX")"
  chmod 755 "$WORK"
  trap bench_cleanup EXIT
}

bench_track() { BENCH_PIDS+=("$1"); }
bench_on_exit() { BENCH_EXIT_HOOKS+=("$1"); }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Waits up to 10 s for FILE to exist and be non-empty.
wait_file() {
  for _ in $(seq 200); do [ -s "$1" ] && return 0; sleep 0.05; done
  return 1
}

# The ASCII valid addresses of the bundled sample directory (lower case),
# one per line; with DOMAIN, only those @DOMAIN.
sample_valid_addresses() {
  python3 - "$1" "${2:-}" <<'PY'
import json, sys
d = json.load(open(sys.argv[1] + "/deploy/examples/sample.expected.json"))
for a in d["valid_addresses"]:
    if a.isascii() and (not sys.argv[2] or a.lower().endswith("@" + sys.argv[2])):
        print(a.lower())
PY
}

# An rcptguardd config serving the bundled sample directory on 127.0.0.1
# (port 0: use --port_file), plaintext, never stale (the checkout's file
# age must not turn answers into 450s), plus EXTRA_LINES.
sample_config() {
  cat <<EOF
listen_address: "127.0.0.1:0"
insecure_plaintext: true
domains { name: "example.com" subaddress_delimiters: "+" aliases: "mail.example.com" }
domains { name: "example.org" }
directory { ldif_files: "$1/deploy/examples/sample.ldif" preset: "ad" stale_after: "0s" }
${2:-}
EOF
}
