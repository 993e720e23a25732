#!/usr/bin/env bash
# The README's benchmark run (issue 15): nabla-bench side by side with PyTorch at 1 and 2 threads
# (with the matrix-product comparison), the 1 -> 2 thread scaling, and the contended run.
#   tools/bench-runs.sh OUT   writes OUT.txt (the tables) and OUT-*.json; build/ must be built
set -euo pipefail
out=${1:?usage: tools/bench-runs.sh OUT}
bench=${NABLA_BUILD_DIR:-build}/tools/nabla-bench
{
    echo "# $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD) on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
    for t in 1 2; do
        echo "## $bench --vs-torch --matmul --rounds 3 --reps 10 --threads $t"
        "$bench" --vs-torch --matmul --rounds 3 --reps 10 --threads "$t" --json "$out-$t.json" 2>&1
    done
    echo "## $bench --scaling --threads 2 --only W3,W4 --rounds 3 --reps 10"
    "$bench" --scaling --threads 2 --only W3,W4 --rounds 3 --reps 10 --json "$out-scaling.json" 2>&1
    echo "## $bench --contended --threads 2 --only W1,W2,W3,W4 --rounds 3 --reps 10"
    "$bench" --contended --threads 2 --only W1,W2,W3,W4 --rounds 3 --reps 10 --json "$out-contended.json" 2>&1
} | tee "$out.txt"
