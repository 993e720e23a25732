#!/bin/sh
# nabla-train's option checks, before any data is read: --epochs is accepted with --model mlp (a flag
# bit shared with --fused-conv once rejected it), an option of another model is rejected, output
# paths are checked before training; with Fashion-MNIST installed, --epochs 0, --progress and --plot.
train=$1
fail() { echo "FAIL: $1"; exit 1; }

out=$("$train" --model mlp --epochs 1 --data-dir /nonexistent-nabla-data 2>&1)
[ $? -eq 1 ] || fail "--model mlp --epochs 1: expected a data error (status 1), got: $out"
echo "$out" | grep -q "nonexistent-nabla-data" || fail "the data error does not name the folder: $out"

out=$("$train" --model mlp --fused-conv no 2>&1)
[ $? -eq 2 ] || fail "--model mlp --fused-conv no: expected a usage error (status 2), got: $out"
echo "$out" | grep -q -- "--fused-conv applies to --model cnn and resnet only, not to --model mlp" || fail "$out"
# output paths are checked before any data is read (an hour of training was lost to a typo before)
out=$("$train" --checkpoint /nonexistent-nabla-dir/ckpt.st --data-dir /nonexistent-nabla-data 2>&1)
[ $? -eq 2 ] || fail "--checkpoint in a missing folder: expected a usage error (status 2), got: $out"
echo "$out" | grep -q -- "--checkpoint /nonexistent-nabla-dir/ckpt.st: the folder /nonexistent-nabla-dir does not exist" || fail "$out"
out=$("$train" --history /tmp --data-dir /nonexistent-nabla-data 2>&1)
[ $? -eq 2 ] && echo "$out" | grep -q -- "--history /tmp: not a regular file" || fail "--history /tmp: $out"
out=$("$train" --plot run.txt --data-dir /nonexistent-nabla-data 2>&1)
[ $? -eq 2 ] && echo "$out" | grep -q -- "--plot run.txt: the extension must be .png, .svg or .pdf" || fail "--plot run.txt: $out"
out=$("$train" --progress sometimes 2>&1)
[ $? -eq 2 ] || fail "--progress sometimes: expected a usage error: $out"
# schedules' own settings, --eval's conflicts, --save-model's path: usage errors before any data is read
out=$("$train" --lr-min 0.001 2>&1)
[ $? -eq 2 ] && echo "$out" | grep -q -- "--lr-min applies to --lr-schedule cosine only" || fail "--lr-min: $out"
out=$("$train" --lr-schedule cosine --lr-decay 0.5 2>&1)
[ $? -eq 2 ] && echo "$out" | grep -q -- "--lr-decay does not apply to --lr-schedule cosine" || fail "cosine + --lr-decay: $out"
out=$("$train" --eval m.st --epochs 3 2>&1)
[ $? -eq 2 ] && echo "$out" | grep -q -- "--eval trains nothing: --epochs does not apply" || fail "--eval --epochs: $out"
out=$("$train" --save-model /nonexistent-nabla-dir/m.st 2>&1)
[ $? -eq 2 ] && echo "$out" | grep -q -- "--save-model /nonexistent-nabla-dir/m.st: the folder" || fail "--save-model: $out"

# the Fashion-MNIST install hint only when the files are missing, not for a corrupt file
out=$("$train" --data-dir /nonexistent-nabla-data 2>&1)
echo "$out" | grep -q "apt-get install" && fail "install hint for a folder given by --data-dir: $out"
dir=/usr/share/datasets/fashion-mnist
if [ -e "$dir/train-images-idx3-ubyte.gz" ]; then
    tmp=$(mktemp -d) && trap 'rm -rf "$tmp"' EXIT
    # --epochs 0: no training, the test accuracy of the model as built
    out=$("$train" --model mlp --hidden 32 --overfit 100 --epochs 0 2>&1) || fail "--epochs 0: $out"
    echo "$out" | grep -q "^no training (--epochs 0): the test accuracy of the model as built" || fail "--epochs 0: $out"
    echo "$out" | grep -q "^test accuracy: " || fail "--epochs 0 gave no test accuracy: $out"
    # lines, not a bar, and none with --progress none; an SVG plot for .svg
    out=$("$train" --model mlp --hidden 32 --overfit 100 --epochs 1 --progress lines --print-every 1 --plot "$tmp/p.svg" 2>&1) || fail "$out"
    echo "$out" | grep -q "^epoch 1/1  iteration 1/" || fail "--progress lines printed no line: $out"
    if command -v gnuplot >/dev/null; then head -c 200 "$tmp/p.svg" | grep -q "<svg" || fail "--plot p.svg is not SVG"; fi
    out=$("$train" --model mlp --hidden 32 --overfit 100 --epochs 1 --progress none --print-every 1 2>&1) || fail "$out"
    echo "$out" | grep -q "iteration 1/" && fail "--progress none printed progress: $out"
    # weights out and in: --eval of the saved model (and of the checkpoint's best) gives the test
    # accuracy the training run reported, with a confusion matrix; another model is refused by name
    out=$("$train" --model mlp --hidden 32 --overfit 200 --epochs 2 --optimizer adam --lr-schedule cosine --warmup 2 \
          --weight-decay 1e-3 --save-model "$tmp/m.st" --checkpoint "$tmp/c.st" 2>&1) || fail "--save-model: $out"
    echo "$out" | grep -q "(cosine to 0, 2 warm-up iterations), weight decay 0.001" || fail "the schedule is not reported: $out"
    trained=$(echo "$out" | sed -n 's/^test accuracy: //p')
    out=$("$train" --model mlp --hidden 32 --eval "$tmp/m.st" 2>&1) || fail "--eval: $out"
    [ "$(echo "$out" | sed -n 's/^test accuracy: //p')" = "$trained" ] || fail "--eval differs from the run's $trained: $out"
    echo "$out" | grep -q "^9 Ankle boot " || fail "--eval printed no confusion matrix: $out"
    out=$("$train" --model mlp --hidden 32 --eval "$tmp/c.st" 2>&1) || fail "--eval of a checkpoint: $out"
    echo "$out" | grep -q "from $tmp/c.st (the checkpoint's best)" || fail "--eval of a checkpoint: $out"
    out=$("$train" --model mlp --hidden 16 --eval "$tmp/m.st" 2>&1)
    [ $? -eq 1 ] && echo "$out" | grep -q "fc1.weight (f32 \[784,32\] in the file, f32 \[784,16\] in the model)" || fail "mismatch: $out"
    out=$("$train" --model mlp --hidden 32 --overfit 200 --epochs 1 --load-model "$tmp/m.st" 2>&1) || fail "--load-model: $out"
    echo "$out" | grep -q "^weights: 4 tensors from $tmp/m.st" || fail "--load-model: $out"
fi
echo "ok"
