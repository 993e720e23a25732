#!/usr/bin/env bash
# Data-parallel scaling on this machine: nabla-train's default run for one epoch with 1 rank and with
# 2 ranks (mpirun, 1 thread per rank), alternating for ROUNDS rounds (default 3), and one process with
# 2 threads for comparison; prints the images/s while training of each run, the medians, and the
# 1 -> 2 rank scaling. Needs Open MPI (NABLA_MPI=1 tools/setup.sh). Extra arguments go to nabla-train.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
train=${NABLA_BUILD_DIR:-build}/tools/nabla-train
rounds=${ROUNDS:-3}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1

# images/s while training, from "trained ... (..., N img/s when training)"
speed() { "$@" --epochs 1 2>&1 | sed -n 's/.*, \([0-9]*\) img\/s when training.*/\1/p'; }
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

mpirun -np 2 "$train" --epochs 0 "$@" 2>&1 | grep '^distributed:' || true
one=() two=() threads=()
for ((r = 1; r <= rounds; r++)); do
    one+=("$(speed mpirun -np 1 "$train" --threads 1 "$@")")
    two+=("$(speed mpirun -np 2 "$train" --threads 1 "$@")")
    threads+=("$(speed "$train" --threads 2 "$@")")
    echo "round $r: 1 rank ${one[-1]} img/s, 2 ranks ${two[-1]} img/s, 1 process x 2 threads ${threads[-1]} img/s"
done
m1=$(printf '%s\n' "${one[@]}" | median)
m2=$(printf '%s\n' "${two[@]}" | median)
mt=$(printf '%s\n' "${threads[@]}" | median)
awk -v a="$m1" -v b="$m2" -v t="$mt" 'BEGIN {
    printf "medians: 1 rank %.0f img/s, 2 ranks %.0f img/s (scaling %.2fx), 1 process x 2 threads %.0f img/s\n", a, b, b / a, t }'
