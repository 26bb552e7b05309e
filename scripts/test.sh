#!/usr/bin/env bash
# Installs what is missing, checks the tree (no conflict markers, C++
# clang-formatted), builds, and runs the whole test suite
# (unit, end-to-end with real peers, fuzz corpus replays), then builds the
# binaries and fuzz targets with clang (-Werror=thread-safety; parsers under
# ASan and UBSan) and fuzzes each target for 10 s. Usage:
#   scripts/test.sh            RelWithDebInfo build in build-test/ (CI)
#   scripts/test.sh --asan     the suite under AddressSanitizer + UBSan in
#                              build-asan/ (about 20 minutes on 2 cores: the
#                              nightly job, scripts/nightly.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

mode=normal
for arg in "$@"; do
  case "$arg" in
    --asan) mode=asan ;;
    *) echo "usage: scripts/test.sh [--asan]" >&2; exit 2 ;;
  esac
done

scripts/deps.sh test
# Conflict markers and unformatted C++ fail at once, before any build.
scripts/check_tree.sh

if [[ $mode == asan ]]; then
  dir=build-asan
  scripts/build.sh "$dir" -DRG_SANITIZE=ON -DRG_BENCHMARKS=OFF
  # A 64 MiB quarantine (ASan's default is 256 MiB): the memory-bound
  # tests (hostile_e2e_test) measure the server's RSS, and freed memory
  # held in quarantine would count as the server's own.
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:quarantine_size_mb=64
  # Known leaks of third-party libraries, each explained there.
  export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
else
  dir=build-test
  scripts/build.sh "$dir"
fi

# Haraka and the plugin's npm dependencies from the npm registry, for the
# Haraka tests (which would run this themselves; quick when installed).
scripts/haraka_env.sh "${RG_HARAKA_DIR:-$dir/haraka-env}" >/dev/null
(cd "$dir" && ctest --output-on-failure -j "$(nproc)" --timeout 600)
if [[ $mode == normal ]]; then
  scripts/fuzz.sh "${RG_FUZZ_SECONDS:-10}" build-fuzz
fi
