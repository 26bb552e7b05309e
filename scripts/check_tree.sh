#!/usr/bin/env bash
# Fails on what must never land: unresolved merge-conflict markers in any
# tracked text file, and C++ that clang-format (the repo's .clang-format)
# would change. Run by scripts/test.sh before anything is built.
#   scripts/check_tree.sh          check
#   scripts/check_tree.sh --fix    reformat the C++ in place
set -euo pipefail
cd "$(dirname "$0")/.."

fix=false
[[ "${1:-}" == --fix ]] && fix=true

# Conflict markers: a line that is exactly one of git's markers.
if git grep -nE '^(<<<<<<<|>>>>>>>)( |$)|^=======$' -- . \
     ':(exclude)*.ldif' ':(exclude)tests/testdata/**' \
     ':(exclude)tests/fuzz/corpus/**'; then
  echo "check_tree: unresolved merge-conflict markers (above)" >&2
  exit 1
fi

command -v clang-format >/dev/null || {
  echo "check_tree: clang-format is not installed (scripts/deps.sh test)" >&2
  exit 1
}
mapfile -t sources < <(git ls-files '*.cc' '*.h')
if $fix; then
  clang-format -i "${sources[@]}"
  exit 0
fi
if ! clang-format --dry-run -Werror "${sources[@]}" 2>/tmp/check_tree.$$; then
  grep -E '^[^ ].*: (error|warning):' /tmp/check_tree.$$ | cut -d: -f1 | sort -u |
    sed 's/^/check_tree: not clang-formatted: /' >&2
  rm -f /tmp/check_tree.$$
  echo "check_tree: run scripts/check_tree.sh --fix" >&2
  exit 1
fi
rm -f /tmp/check_tree.$$
echo "check_tree: no conflict markers; ${#sources[@]} C++ files formatted"
