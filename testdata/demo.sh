#!/usr/bin/env bash
# `make demo`: a fresh pond from the files in testdata/, then list, show, log and verify.
set -euo pipefail
pond=${1:-target/debug/pond}
here=$(cd "$(dirname "$0")" && pwd)
demo_dir=$(mktemp -d "${TMPDIR:-/tmp}/pond-demo.XXXXXX")
export POND="$demo_dir/pond"

step() { printf '\n$ %s\n' "$*"; "$@"; }

step "$pond" init
step "$pond" mkdir -p /logs/casparwater /logs/hl/node_trades/20250624
step "$pond" copy "$here/casparwater/casparwater.json" /logs/casparwater
step "$pond" copy "$here/hl/node_trades/hourly/20250624/2" /logs/hl/node_trades/20250624
step "$pond" list -l '/logs/**'
step "$pond" show /logs/casparwater/casparwater.json
step "$pond" log
step "$pond" verify
printf '\nOn-disk: %s raw bytes stored in %s bytes of data files.\n' \
  "$(cat "$here/casparwater/casparwater.json" "$here/hl/node_trades/hourly/20250624/2" | wc -c)" \
  "$(cat "$POND"/data/*.dat | wc -c)"
printf 'The demo pond is %s (remove it when done).\n' "$POND"
