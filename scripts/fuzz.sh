#!/usr/bin/env bash
# Builds every binary and fuzz target with clang (-Werror=thread-safety:
# clang's lock annotation checks must be clean) and runs each libFuzzer
# target for a bounded time from its seed corpus under tests/fuzz/corpus.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [BUILD_DIR]    (default 60, build-fuzz)
#
# scripts/test.sh runs it with 10 s per target; a longer run (e.g. 600)
# is the nightly job. New inputs that libFuzzer finds stay in
# BUILD_DIR/tests/fuzz/<target>-corpus; a crash leaves crash-* files in
# BUILD_DIR/tests/fuzz and fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
dir="${2:-build-fuzz}"
command -v clang++ >/dev/null || scripts/deps.sh test
CC=clang CXX=clang++ cmake -G Ninja -S . -B "$dir" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRG_FUZZ=ON -DRG_BENCHMARKS=OFF \
  -DRG_FUZZ_SECONDS="$secs" -DCMAKE_CXX_FLAGS="-Werror=thread-safety" \
  >/dev/null
fuzzers=(address_fuzz ldif_fuzz config_fuzz snapshot_fuzz policy_fuzz
         socketmap_fuzz edge_path_fuzz batch_split_fuzz)
targets=(rcptguardd rcptguard rcptguard-postfix "${fuzzers[@]}")
args=()
for t in "${targets[@]}"; do args+=(--target "$t"); done
cmake --build "$dir" -j "$(nproc)" "${args[@]}"
cd "$dir/tests/fuzz"
ctest --output-on-failure -R '^fuzz\.' --timeout $((secs + 120))
