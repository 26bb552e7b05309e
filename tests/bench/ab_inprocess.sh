#!/usr/bin/env bash
# A/B of two rcptguard-bench binaries in process: runs them alternately
# (A B A B ...) so that both see the same machine, and prints each run's
# lookups per CPU second and the median ratio B/A.
#
#   tests/bench/ab_inprocess.sh OLD_BENCH NEW_BENCH [ROUNDS] [-- BENCH FLAGS]
#
# Defaults: 5 rounds of --mode=inprocess-directory --generate=10000000
# --batch=64 --duration=5s. Each run builds its own directory first (about
# 10 s for 10 M addresses), so a round takes about 30 s.
set -euo pipefail

if [[ $# -lt 2 ]]; then
  echo "usage: $0 OLD_BENCH NEW_BENCH [ROUNDS] [-- BENCH FLAGS]" >&2
  exit 2
fi
a=$1
b=$2
shift 2
rounds=5
if [[ $# -gt 0 && $1 != "--" ]]; then
  rounds=$1
  shift
fi
[[ $# -gt 0 && $1 == "--" ]] && shift
flags=("$@")
if [[ ${#flags[@]} -eq 0 ]]; then
  flags=(--mode=inprocess-directory --generate=10000000 --batch=64
    --duration=5s)
fi

run() {
  "$1" "${flags[@]}" 2>&1 | awk '/lookups per CPU second/ {print $NF}'
}

as=()
bs=()
for ((r = 1; r <= rounds; r++)); do
  x=$(run "$a")
  y=$(run "$b")
  as+=("$x")
  bs+=("$y")
  printf 'round %d  A %12s  B %12s  B/A %.2f\n' "$r" "$x" "$y" \
    "$(echo "$y / $x" | bc -l)"
done

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
ma=$(median "${as[@]}")
mb=$(median "${bs[@]}")
printf 'median  A %12s  B %12s  B/A %.2f\n' "$ma" "$mb" "$(echo "$mb / $ma" | bc -l)"
