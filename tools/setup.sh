#!/usr/bin/env bash
# Sets up nabla on Debian 12: installs the missing build dependencies and the Fashion-MNIST data
# set (dataset-fashion-mnist, into /usr/share/datasets/fashion-mnist) and the fortunes text corpus
# (fortunes, into /usr/share/games/fortunes: nabla-lm's default), configures and builds.
# Idempotent: installs nothing when every package is present, configures only a missing or broken
# build directory (ninja regenerates by itself when a meson.build changes), and lets ninja skip
# up-to-date targets.
#   NABLA_BUILD_DIR  build directory (default: build, at the top of the source tree)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build_dir=${NABLA_BUILD_DIR:-build}

# gnuplot is optional (nabla-train --plot uses it when present), so it is not installed here.
packages=(build-essential meson ninja-build pkg-config libblis-dev check zlib1g-dev libjansson-dev valgrind
          dataset-fashion-mnist fortunes)
# NABLA_MPI=1: Open MPI too, for the distributed layer (nabla/dist.h) and its two-rank tests (.ci/run sets it)
if [[ ${NABLA_MPI:-0} == 1 ]]; then
    packages+=(openmpi-bin libopenmpi-dev)
fi

missing=()
if command -v dpkg-query >/dev/null; then
    for p in "${packages[@]}"; do
        status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
        [[ $status == "install ok installed" ]] || missing+=("$p")
    done
else
    echo "setup: dpkg-query not found (not Debian?); skipping package installation" >&2
fi

if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    if ((EUID == 0)); then
        as_root=()
    elif command -v sudo >/dev/null; then
        as_root=(sudo)
    else
        echo "setup: need root or sudo to install: ${missing[*]}" >&2
        exit 1
    fi
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [[ ! -f $build_dir/meson-private/coredata.dat ]]; then
    meson setup "$build_dir" --buildtype=release
elif [[ ! -f $build_dir/build.ninja ]] || ((${#missing[@]})); then
    meson setup --reconfigure "$build_dir"   # also to find what was just installed (MPI)
fi
meson compile -C "$build_dir"
