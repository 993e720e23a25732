#!/usr/bin/env bash
# The 2-thread scaling this machine allows: nabla-bench's workloads (default W3,W4) at 1 thread, run
# alone and as two copies at the same time, alternating for ROUNDS rounds (default 3). Two copies share
# nothing, so their throughput over one copy's, 2 × (alone ms / together ms), bounds what any threading
# of one process can reach here: below 2 when the two vCPUs share a core's FMA units or the host's time.
# Prints each run's medians and the ceiling per workload. Extra arguments go to nabla-bench.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
bench=${NABLA_BUILD_DIR:-build}/tools/nabla-bench
rounds=${ROUNDS:-3}
only=${ONLY:-W3,W4}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# "workload median_ms" lines of one nabla-bench run
medians() { "$bench" --only "$only" --threads 1 --reps 15 "$@" 2>&1 | awk '/^W[0-9]/ { print $1, $3 }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

for ((r = 1; r <= rounds; r++)); do
    medians "$@" > "$out/alone.$r"
    medians "$@" > "$out/a.$r" &
    medians "$@" > "$out/b.$r"
    wait
    echo "round $r: alone $(tr '\n' ' ' < "$out/alone.$r")| together $(tr '\n' ' ' < "$out/a.$r")/ $(tr '\n' ' ' < "$out/b.$r")"
done
for w in $(awk '{ print $1 }' "$out/alone.1"); do
    alone=$(cat "$out"/alone.* | awk -v w="$w" '$1 == w { print $2 }' | median)
    together=$(cat "$out"/a.* "$out"/b.* | awk -v w="$w" '$1 == w { print $2 }' | median)
    awk -v w="$w" -v a="$alone" -v t="$together" 'BEGIN {
        printf "%-8s alone %.2f ms, two at once %.2f ms each: 2-thread ceiling %.2fx\n", w, a, t, 2 * a / t }'
done
