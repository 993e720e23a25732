#!/usr/bin/env bash
# The main job: sets up nabla (tools/setup.sh), then runs it. For now that is the custom-layer
# example (GELU from primitives, gradient check, a few SGD steps); arguments are passed on.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
build_dir=${NABLA_BUILD_DIR:-build}

tools/setup.sh
exec "$build_dir/examples/custom_layer" "$@"
