#!/usr/bin/env bash
# Configures and builds rcptguard. Usage: scripts/build.sh [BUILD_DIR] [cmake args...]
# Default BUILD_DIR is build/ (Release with debug info).
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-build}"
shift || true
cmake -G Ninja -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
# Two cores and gRPC headers: more jobs than cores only thrashes memory.
# RG_TARGETS="a b" builds just those targets.
targets=()
for t in ${RG_TARGETS:-}; do targets+=(--target "$t"); done
cmake --build "$dir" -j "$(nproc)" "${targets[@]}"
