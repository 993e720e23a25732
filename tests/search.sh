#!/bin/sh
# nabla-search --quick on Fashion-MNIST: a table sorted by validation accuracy, the best configuration
# as a nabla-train command, the same results with --jobs 1 and --jobs 2, every trial in the JSON, and
# Ctrl-C printing the table so far (status 130). Skipped (77) when the data set is not installed.
search=$1
. "$(dirname "$0")/fashion_mnist.sh"

out=$("$search" --quick --csv "$tmp/one.csv" --json "$tmp/one.json" 2>&1) || fail "--quick: $out"
echo "$out" | grep -q "^4 trials, best validation accuracy first:" || fail "no table: $out"
echo "$out" | grep -q "^  nabla-train --data fashion-mnist --model mlp --hidden " || fail "no best command: $out"
# the rows are sorted: validation accuracies in the table's second column never increase
echo "$out" | awk '/^trial  val/ { on = 1; next } on && NF == 0 { on = 0 } on { if (seen && $2 > last) bad = 1; last = $2; seen = 1 }
                   END { exit bad }' || fail "the table is not sorted by validation accuracy: $out"
[ "$(grep -c '"trial":' "$tmp/one.json")" -eq 4 ] || fail "the JSON does not hold 4 trials: $(cat "$tmp/one.json")"
[ "$(wc -l < "$tmp/one.csv")" -eq 5 ] || fail "the CSV does not hold 4 rows: $(cat "$tmp/one.csv")"

"$search" --quick --jobs 2 --csv "$tmp/two.csv" > "$tmp/two.out" 2>&1 || fail "--jobs 2: $(cat "$tmp/two.out")"
cmp -s "$tmp/one.csv" "$tmp/two.csv" || fail "--jobs 2 gave other results: $(diff "$tmp/one.csv" "$tmp/two.csv")"

# Ctrl-C once the first trials are done: the table so far, status 130
"$search" --trials 200 --epochs 1 --train 500 --val 500 > "$tmp/int.out" 2>&1 &
pid=$!
for i in $(seq 100); do grep -q '^\[2/200\]' "$tmp/int.out" && break; sleep 0.1; done
kill -INT $pid
wait $pid
status=$?
[ $status -eq 130 ] || fail "Ctrl-C: status $status, expected 130: $(cat "$tmp/int.out")"
grep -q "trials*, best validation accuracy first:" "$tmp/int.out" || fail "Ctrl-C: no table: $(cat "$tmp/int.out")"

"$search" --trials 0 > "$tmp/bad.out" 2>&1
[ $? -eq 2 ] || fail "--trials 0: expected a usage error: $(cat "$tmp/bad.out")"
echo "ok"
