#!/usr/bin/env bash
# Runs haraka-plugin-rcptguard's own tests (node --test, clients/haraka/test)
# with the npm dependencies scripts/haraka_env.sh installed in DIR.
# Usage: tests/e2e/haraka_plugin_test.sh DIR
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=$(scripts/haraka_env.sh "$1")
NODE_PATH="$dir/node_modules" exec node --test clients/haraka/test/
