#!/usr/bin/env bash
# The test suite under ThreadSanitizer: a debug build with -Db_sanitize=thread and -Dclones=false
# (the AVX2/AVX-512 kernels are chosen through ifunc resolvers, which run before TSan is ready and
# crash at load), in build-tsan/ (or $NABLA_TSAN_DIR).
#
#   tools/tsan.sh [TEST...]      # default: every test but bench and dist
#
# What it checks: the library used from several threads at once (tests/test_threads.c's "pthreads"
# case trains models in parallel threads; every other test runs as usual). What it leaves out:
# OpenMP teams of more than one thread, because libgomp is not built with TSan, so TSan cannot see
# its barriers and reports false races on memory the team hands over (OMP_NUM_THREADS=1, and the
# test cases tagged "openmp" are excluded); bench (its --scaling runs use several threads) and dist
# (Open MPI's own lock-order reports).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
dir=${NABLA_TSAN_DIR:-build-tsan}
if [[ ! -f $dir/meson-private/coredata.dat ]]; then
    meson setup "$dir" -Db_sanitize=thread -Db_lundef=false -Dclones=false --buildtype=debug
fi
meson compile -C "$dir"
if [[ $# -eq 0 ]]; then
    set -- $(meson test -C "$dir" --no-rebuild --list 2>/dev/null | sed 's/.* \/ //' | grep -vx -e bench -e dist -e install -e subproject)
fi
export OMP_NUM_THREADS=1 BLIS_NUM_THREADS=1 CK_EXCLUDE_TAGS=openmp
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:allocator_may_return_null=1}
meson test -C "$dir" --no-rebuild --print-errorlogs --timeout-multiplier 4 "$@"
