#!/usr/bin/env bash
# The long checks that do not fit CI's time budget: the whole suite under
# AddressSanitizer + UBSan, then every fuzz target for 10 minutes.
# Bounded: about 20 minutes + 6 x 10 minutes on 2 cores.
#   scripts/nightly.sh [SECONDS_PER_FUZZ_TARGET]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/test.sh --asan
scripts/fuzz.sh "${1:-600}" build-fuzz
