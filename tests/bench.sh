#!/bin/sh
# nabla-bench's option checks, and short runs: the table of W1 (whose JSON holds the peak, the BLIS
# sub-configuration, nabla's kernel level and W1's share of the peak); --scaling on the smallest
# workload (W5), whose JSON holds the three medians (1 thread, 2 threads, 2 copies), each over the 3
# timed steps, and positive ratios; --contended on W1, the same for its two medians, the threads
# nabla used, and its busy process gone afterwards.
bench=$1
fail() { echo "FAIL: $1"; exit 1; }
dir=$(mktemp -d) || fail "mktemp"
trap 'rm -rf "$dir"' EXIT
# positive KEY JSON: KEY is a number above 0 somewhere in JSON (as nabla-bench indents it)
positive() { echo "$2" | grep -q "\"$1\": [1-9]\|\"$1\": 0\.[0-9]*[1-9]"; }

for mode in --scaling --contended; do
    out=$("$bench" $mode --threads 1 2>&1)
    [ $? -eq 2 ] || fail "$mode --threads 1: expected a usage error (status 2), got: $out"
    echo "$out" | grep -q -- "$mode: needs --threads N with N at least 2, got 1" || fail "$out"

    out=$("$bench" $mode --vs-torch --threads 2 2>&1)
    [ $? -eq 2 ] || fail "$mode --vs-torch: expected a usage error (status 2), got: $out"
done
out=$("$bench" --scaling --contended --threads 2 2>&1)
[ $? -eq 2 ] || fail "--scaling --contended: expected a usage error (status 2), got: $out"

json=$("$bench" --only W1 --warmup 1 --reps 2 --json - 2>/dev/null) || fail "--only W1: exit status $?"
for key in peak_gflops peak_gflops_threads peak_vector_bits gflops percent_of_peak; do
    positive "$key" "$json" || fail "no positive $key in: $json"
done
echo "$json" | grep -q '"blas_config": "[a-z0-9_]\{1,\}"' || fail "no blas_config in: $json"
# W7, the GPT: one step, its FLOPs counted
json=$("$bench" --only W7 --warmup 0 --reps 1 --json - 2>/dev/null) || fail "--only W7: exit status $?"
positive gflops "$json" || fail "W7: no positive gflops in: $json"
echo "$json" | grep -q '"blas_chosen_by": "\(nabla\|user\|blis\)"' || fail "no blas_chosen_by in: $json"
echo "$json" | grep -q '"isa": "\(generic\|avx2\|avx512\)"' || fail "no isa in: $json"
echo "$json" | grep -q '"mode": "table"' || fail "no mode table in: $json"

json=$("$bench" --scaling --threads 2 --only W5 --warmup 1 --reps 3 --rounds 1 --json - 2>/dev/null) ||
    fail "--scaling --only W5: exit status $?"
for key in threads_1 threads_n copies_n; do
    echo "$json" | tr -d ' \n' | grep -q "\"$key\":{\"median_ms\":[0-9][^,]*,[^}]*\"n\":3}" ||
        fail "no $key median over 3 steps in: $json"
done
for key in speedup ceiling cpu_percent_threads_n; do
    positive "$key" "$json" || fail "no positive $key in: $json"
done

table=$("$bench" --contended --threads 2 --only W1 --warmup 1 --reps 2 --rounds 1 --json "$dir/c.json" 2>&1) ||
    fail "--contended --only W1: exit status $?: $table"
json=$(cat "$dir/c.json")
for key in threads_1 threads_n; do
    echo "$json" | tr -d ' \n' | grep -q "\"$key\":{\"median_ms\":[0-9][^,]*,[^}]*\"n\":2,\"gflops\":[0-9][^,]*,\"percent_of_peak\":[0-9]" ||
        fail "no $key median over 2 steps with its share of the peak in: $json"
done
for key in speedup cpu_percent_threads_n; do
    positive "$key" "$json" || fail "no positive $key in: $json"
done
echo "$json" | tr -d ' \n' | grep -q '"threads_used":{"median":[12]\.0,"min":[12]\.0,"max":[12]\.0}' ||
    fail "no threads_used of 1 or 2 in: $json"
echo "$json" | grep -q '"mode": "contended"' || fail "no mode contended in: $json"
pid=$(echo "$table" | sed -n 's/.*a busy process (pid \([0-9]*\),.*/\1/p')
[ -n "$pid" ] || fail "no busy process in: $table"
! kill -0 "$pid" 2>/dev/null || fail "the busy process $pid is still there after the run"
echo "ok"
