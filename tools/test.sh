#!/usr/bin/env bash
# Sets up nabla (tools/setup.sh) and runs the test suite; prints the total time.
# Extra arguments go to `meson test` (e.g. a test name, or --repeat 3).
set -euo pipefail

start=$EPOCHREALTIME
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build_dir=${NABLA_BUILD_DIR:-build}

tools/setup.sh
status=0
meson test -C "$build_dir" --print-errorlogs "$@" || status=$?

awk -v a="$start" -v b="$EPOCHREALTIME" \
    'BEGIN { printf "total time (set-up, build, tests): %.1f s\n", b - a }'
exit "$status"
