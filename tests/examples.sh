#!/bin/sh
# The course's experiments (examples/exp_*) in their --quick modes: each runs, prints its table and
# writes its CSV (and its PNG when gnuplot is installed); exp_overfit exits 1 unless the net fits its
# 50 samples. Skipped (77) when Fashion-MNIST is not installed.
examples=$1
. "$(dirname "$0")/fashion_mnist.sh"
for spec in exp_overfit:overfit exp_weight_scale:weight_scale exp_batch_size:batch_size exp_layer_norm:layer_norm \
            exp_optimizers:optimizers_acc exp_dropout:dropout; do
    prog=${spec%%:*} csv=${spec#*:}
    out=$("$examples/$prog" --quick --out "$tmp" 2>&1) || fail "$prog --quick: $out"
    [ -s "$tmp/$csv.csv" ] || fail "$prog wrote no $csv.csv: $out"
    [ "$(wc -l < "$tmp/$csv.csv")" -gt 1 ] || fail "$prog: $csv.csv has no rows"
    echo "$prog: ok"
done
"$examples/exp_overfit" --quick --out "$tmp" | grep -q "final training accuracy 1.0000" || fail "exp_overfit does not reach 100%"
echo "ok"
