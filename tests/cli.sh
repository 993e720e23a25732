#!/bin/sh
# nabla-train's option checks, before any data is read: --epochs is accepted with --model mlp (a flag
# bit shared with --fused-conv once rejected it), and an option of another model is rejected.
train=$1
fail() { echo "FAIL: $1"; exit 1; }

out=$("$train" --model mlp --epochs 1 --data-dir /nonexistent-nabla-data 2>&1)
[ $? -eq 1 ] || fail "--model mlp --epochs 1: expected a data error (status 1), got: $out"
echo "$out" | grep -q "nonexistent-nabla-data" || fail "the data error does not name the folder: $out"

out=$("$train" --model mlp --fused-conv no 2>&1)
[ $? -eq 2 ] || fail "--model mlp --fused-conv no: expected a usage error (status 2), got: $out"
echo "$out" | grep -q -- "--fused-conv applies to --model cnn and resnet only, not to --model mlp" || fail "$out"
echo "ok"
