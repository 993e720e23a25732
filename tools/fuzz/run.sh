#!/bin/sh
# Builds the libFuzzer targets for the file readers with clang (ASan + UBSan) and runs each one.
#
#   tools/fuzz/run.sh [SECONDS] [TARGET...]
#   tools/fuzz/run.sh replay             # runs each tests/data/fuzz-regressions/<target>-* file once
#
# SECONDS (default 60) is the -max_total_time of each target; TARGETs default to
# "idx cifar safetensors resume" (resume: nb_solver_resume, the path of nabla-train --resume).
# Everything goes to build-fuzz/ at the top of the repository:
#   build-fuzz/fuzz_<t>          the fuzzers        build-fuzz/corpus/<t>/   the working corpora
#   build-fuzz/seeds/<t>/        the seed files     build-fuzz/crashes/<t>/  crash/leak/timeout inputs
#   build-fuzz/<t>.log           libFuzzer's output
# Environment: CC (default clang, else clang-14), BUILD_JOBS (parallel compiles, default 2),
# JOBS (libFuzzer -jobs/-workers: that many processes per target, logs in build-fuzz/; default 1),
# FUZZ_FLAGS (extra libFuzzer flags), BUILD_ONLY=1 (build and make the seeds, do not fuzz).
# Replay one input:  build-fuzz/fuzz_idx FILE   (runs it once and reports any error).
# The fuzzers are not part of the Meson build, which does not require clang.
set -eu

secs=${1:-60}
replay=0
[ "$secs" = replay ] && replay=1
[ $# -gt 0 ] && shift
targets=${*:-"idx cifar safetensors resume"}

root=$(cd "$(dirname "$0")/../.." && pwd)
out=$root/build-fuzz
mkdir -p "$out"

if [ -z "${CC:-}" ]; then
    if command -v clang >/dev/null 2>&1; then CC=clang; else CC=clang-14; fi
fi
multiarch=$($CC -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
[ -n "$multiarch" ] || multiarch=x86_64-linux-gnu
blis_inc=
blis_lib=
for flavour in blis-openmp blis-pthread blis-serial; do
    if [ -f "/usr/include/$multiarch/$flavour/blis.h" ]; then
        blis_inc="-I/usr/include/$multiarch/$flavour"
        blis_lib="-L/usr/lib/$multiarch/$flavour -Wl,-rpath,/usr/lib/$multiarch/$flavour"
        break
    fi
done

srcs=$(find "$root/lib" -name '*.c' | sort)
cflags="-std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer -I$root/include $blis_inc"
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
libs="$blis_lib -lblis -ljansson -lz -lm -fopenmp -lpthread"

# the library once, instrumented for coverage, as an archive shared by every target
echo "building the library into $out ..."
rm -rf "$out/obj" && mkdir -p "$out/obj"
for s in $srcs; do
    printf '%s %s\n' "$s" "$out/obj/$(echo "${s#$root/lib/}" | tr / _).o"
done | xargs -P "${BUILD_JOBS:-2}" -n 2 sh -c "$CC $cflags $san -fsanitize=fuzzer-no-link -c \"\$0\" -o \"\$1\""
rm -f "$out/libnabla-fuzz.a"
ar rcs "$out/libnabla-fuzz.a" "$out"/obj/*.o

# seeds: small valid files the project writes itself, plus a few near misses
$CC $cflags $san "$root/tools/fuzz/make_corpus.c" "$out/libnabla-fuzz.a" $libs -o "$out/make_corpus"
rm -rf "$out/seeds"
"$out/make_corpus" "$out/seeds"

for t in $targets; do
    $CC $cflags $san -fsanitize=fuzzer "$root/tools/fuzz/fuzz_$t.c" "$out/libnabla-fuzz.a" $libs -o "$out/fuzz_$t"
done
echo "built: $(for t in $targets; do printf 'build-fuzz/fuzz_%s ' "$t"; done)"
[ "${BUILD_ONLY:-0}" = 1 ] && exit 0

if [ $replay = 1 ]; then
    status=0
    for t in $targets; do
        for f in "$root"/tests/data/fuzz-regressions/"$t"-*; do
            [ -e "$f" ] || continue
            if OMP_NUM_THREADS=1 ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1} \
                "$out/fuzz_$t" -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 "$f" >"$out/replay.log" 2>&1; then
                echo "  ok    ${f#$root/}"
            else
                status=1
                echo "  FAIL  ${f#$root/} (see build-fuzz/replay.log)"
            fi
        done
    done
    exit $status
fi

# max_len: the CIFAR target needs room for two 3073-byte records, the others stay small
parallel=
[ "${JOBS:-1}" -gt 1 ] && parallel="-jobs=$JOBS -workers=$JOBS"
cd "$out"   # where -jobs puts its fuzz-N.log files
status=0
for t in $targets; do
    case $t in
        cifar) maxlen=8192 ;;
        resume) maxlen=16384 ;;   # a whole checkpoint: header, model, best, optimizer state, histories
        *) maxlen=4096 ;;
    esac
    mkdir -p "$out/corpus/$t" "$out/crashes/$t"
    echo "fuzzing $t for $secs s (log: build-fuzz/$t.log) ..."
    # OMP_NUM_THREADS=1: BLIS/OpenMP threads are of no use here
    if ! OMP_NUM_THREADS=1 ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1} \
        UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
        "$out/fuzz_$t" -max_total_time="$secs" -max_len=$maxlen -timeout=10 -rss_limit_mb=2048 \
        -malloc_limit_mb=1024 -print_final_stats=1 $parallel \
        -artifact_prefix="$out/crashes/$t/" ${FUZZ_FLAGS:-} \
        "$out/corpus/$t" "$out/seeds/$t" >"$out/$t.log" 2>&1; then
        status=1
        echo "  $t: FAILED, inputs kept in build-fuzz/crashes/$t/:"
        ls "$out/crashes/$t" | sed 's/^/    /'
    fi
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)|^#[0-9]+.*DONE' "$out/$t.log" |
        sed 's/^/  /' || true
done
exit $status
