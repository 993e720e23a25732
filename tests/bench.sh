#!/bin/sh
# nabla-bench --scaling on the smallest workload (W5): its option checks, and a run whose JSON holds
# the three medians (1 thread, 2 threads, 2 copies), each over the 3 timed steps, and positive ratios.
bench=$1
fail() { echo "FAIL: $1"; exit 1; }

out=$("$bench" --scaling --threads 1 2>&1)
[ $? -eq 2 ] || fail "--scaling --threads 1: expected a usage error (status 2), got: $out"
echo "$out" | grep -q -- "--scaling: needs --threads N with N at least 2, got 1" || fail "$out"

out=$("$bench" --scaling --vs-torch --threads 2 2>&1)
[ $? -eq 2 ] || fail "--scaling --vs-torch: expected a usage error (status 2), got: $out"

json=$("$bench" --scaling --threads 2 --only W5 --warmup 1 --reps 3 --rounds 1 --json - 2>/dev/null) ||
    fail "--scaling --only W5: exit status $?"
for key in threads_1 threads_n copies_n; do
    echo "$json" | tr -d ' \n' | grep -q "\"$key\":{\"median_ms\":[0-9][^,]*,[^}]*\"n\":3}" ||
        fail "no $key median over 3 steps in: $json"
done
for key in speedup ceiling cpu_percent_threads_n; do
    echo "$json" | grep -q "\"$key\": [1-9]\|\"$key\": 0\.[0-9]*[1-9]" || fail "no positive $key in: $json"
done
echo "ok"
