#!/usr/bin/env bash
# Installs Haraka and haraka-plugin-rcptguard (packed from clients/haraka
# with `npm pack`, as it would be published) from the npm registry into
# DIR, for the Haraka end-to-end test, the plugin's own tests and
# tests/bench/haraka_bench.sh. Usage:
#   scripts/haraka_env.sh [DIR]    prints DIR when done
# DIR defaults to $RG_HARAKA_DIR, else ~/.cache/rcptguard/haraka. Idempotent
# and quick: a stamp holds the pinned versions and a hash of the plugin's
# sources; npm runs only when they changed. Versions are pinned here.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

HARAKA_VERSION=3.3.4
GRPC_JS_VERSION=1.14.7
PROTO_LOADER_VERSION=0.8.1
PROTOBUFJS_VERSION=7.6.6

dir="${1:-${RG_HARAKA_DIR:-$HOME/.cache/rcptguard/haraka}}"
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "haraka_env: node and npm are needed (scripts/deps.sh test installs them)" >&2
  exit 1
fi

hash=$( (cd clients/haraka && cat package.json index.js config/rcptguard.ini \
          lib/*.js README.md "$root/proto/rcptguard/v1/validation.proto") |
  sha256sum | cut -c1-16)
stamp="haraka=$HARAKA_VERSION grpc-js=$GRPC_JS_VERSION proto-loader=$PROTO_LOADER_VERSION"
stamp+=" protobufjs=$PROTOBUFJS_VERSION plugin=$hash"

exec 9>"$dir/.lock"
flock 9
if [[ -f "$dir/.stamp" && "$(cat "$dir/.stamp")" == "$stamp" ]]; then
  echo "$dir"
  exit 0
fi

cat >"$dir/package.json" <<JSON
{
  "name": "rcptguard-haraka-test-env",
  "private": true,
  "dependencies": {
    "Haraka": "$HARAKA_VERSION",
    "@grpc/grpc-js": "$GRPC_JS_VERSION",
    "@grpc/proto-loader": "$PROTO_LOADER_VERSION",
    "protobufjs": "$PROTOBUFJS_VERSION"
  }
}
JSON
# Install scripts are not needed (an optional syslog module would compile).
(cd "$dir" && npm install --no-audit --no-fund --ignore-scripts --loglevel=error >&2)

# The plugin as published: npm pack (prepack copies the protos in), then
# unpacked where Haraka looks for haraka-plugin-* packages.
rm -f "$dir"/haraka-plugin-rcptguard-*.tgz
(cd clients/haraka && npm pack --pack-destination "$dir" --loglevel=error >&2)
rm -rf "$dir/node_modules/haraka-plugin-rcptguard"
mkdir -p "$dir/node_modules/haraka-plugin-rcptguard"
tar -xzf "$dir"/haraka-plugin-rcptguard-*.tgz --strip-components=1 \
  -C "$dir/node_modules/haraka-plugin-rcptguard"
echo "$stamp" >"$dir/.stamp"
echo "$dir"
