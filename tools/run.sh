#!/usr/bin/env bash
# The main job: sets up nabla (tools/setup.sh: packages, Fashion-MNIST, build), then trains the
# default recipe with nabla-train (a three-layer convnet on Fashion-MNIST; see `nabla-train --help`)
# and ends with its line "test accuracy: 0.XXXX". Arguments are passed on to nabla-train.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
build_dir=${NABLA_BUILD_DIR:-build}

tools/setup.sh
exec "$build_dir/tools/nabla-train" "$@"
