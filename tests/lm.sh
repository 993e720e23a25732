#!/bin/sh
# nabla-lm on a small generated text: a tiny GPT and a tiny LSTM learn it (the validation loss falls
# well below log 256), a run resumed from its checkpoint ends exactly as the uninterrupted one, the
# saved weights load, the history and the sample are written, and bad options are usage errors.
lm=$1
fail() { echo "FAIL: $1"; exit 1; }
tmp=$(mktemp -d) && trap 'rm -rf "$tmp"' EXIT
i=0
while [ $i -lt 300 ]; do echo "the quick brown fox jumps over the lazy dog $i times."; i=$((i + 1)); done > "$tmp/text.txt"
tiny="--text $tmp/text.txt --layers 1 --heads 2 --embd 32 --seq-len 16 --batch 8 --warmup 5 --lr 1e-2 --eval-batches 4 --threads 1"

out=$("$lm" $tiny --steps 150 --eval-every 75 --sample 40 --prompt "the " --history "$tmp/h.csv" --checkpoint "$tmp/c.st" \
      --save-model "$tmp/m.st" 2>&1) || fail "training: $out"
full=$(echo "$out" | sed -n 's/^val loss: \([0-9.]*\) nats.*/\1/p')
[ -n "$full" ] || fail "no final line: $out"
awk -v v="$full" 'BEGIN { exit !(v < 1.0) }' || fail "the validation loss $full did not fall below 1.0 (log 256 = 5.55)"
echo "$out" | grep -q "^sample (temperature 0.8, top-k 20):" || fail "no sample: $out"
[ "$(wc -l < "$tmp/h.csv")" -eq 151 ] || fail "the history does not have 150 rows"
[ -s "$tmp/m.st" ] || fail "--save-model wrote nothing"

# the same schedule stopped at step 75, then resumed from its checkpoint: the same final loss
"$lm" $tiny --steps 150 --stop-at 75 --eval-every 75 --sample 0 --checkpoint "$tmp/half.st" --quiet > /dev/null || fail "first half"
out=$("$lm" $tiny --steps 150 --eval-every 75 --sample 0 --resume "$tmp/half.st" 2>&1) || fail "resume: $out"
echo "$out" | grep -q "steps 75 to 150 (resumed)" || fail "resume did not start at step 75: $out"
resumed=$(echo "$out" | sed -n 's/^val loss: \([0-9.]*\) nats.*/\1/p')
[ "$resumed" = "$full" ] || fail "resumed run ends at $resumed, the uninterrupted one at $full"
out=$("$lm" $tiny --embd 64 --steps 150 --resume "$tmp/half.st" 2>&1)
[ $? -eq 1 ] && echo "$out" | grep -q "needs the model options of the checkpoint" || fail "resume with another model: $out"

# llm.c's files: the trained GPT written as an llm.c checkpoint, the text as an llm.c token file,
# and training continued from them (--init, --tokens)
"$lm" $tiny --steps 150 --sample 0 --save-llmc "$tmp/m.bin" --quiet > /dev/null || fail "--save-llmc"
python3 - "$tmp/text.txt" "$tmp/tokens.bin" <<'PY' || fail "writing the token file"
import struct, sys
data = open(sys.argv[1], "rb").read()
header = struct.pack("<3i", 20240520, 1, len(data)) + bytes(4 * 253)
open(sys.argv[2], "wb").write(header + struct.pack("<%dH" % len(data), *data))
PY
out=$("$lm" --init "$tmp/m.bin" --tokens "$tmp/tokens.bin" --seq-len 16 --batch 8 --steps 10 --lr 1e-3 --warmup 0 \
      --eval-every 10 --eval-batches 4 --sample 0 --threads 1 2>&1) || fail "--init --tokens: $out"
echo "$out" | grep -q "^model: gpt from $tmp/m.bin" || fail "--init: $out"
echo "$out" | grep -q "tokens, " || fail "--tokens: $out"
init=$(echo "$out" | sed -n 's/^val loss: \([0-9.]*\) nats.*/\1/p')
awk -v v="$init" 'BEGIN { exit !(v < 1.0) }' || fail "training from the llm.c checkpoint starts over: val loss $init"

# an LSTM learns too
out=$("$lm" --text "$tmp/text.txt" --model lstm --embd 16 --hidden 64 --seq-len 16 --batch 8 --steps 150 --lr 2e-2 --warmup 5 \
      --eval-every 150 --eval-batches 4 --sample 0 --threads 1 2>&1) || fail "lstm: $out"
lstm=$(echo "$out" | sed -n 's/^val loss: \([0-9.]*\) nats.*/\1/p')
awk -v v="$lstm" 'BEGIN { exit !(v < 1.0) }' || fail "the LSTM's validation loss $lstm did not fall below 1.0"

# usage errors
out=$("$lm" --heads 3 2>&1)
[ $? -eq 2 ] && echo "$out" | grep -q -- "--heads 3 must divide --embd 128" || fail "--heads 3: $out"
out=$("$lm" --checkpoint /nonexistent-nabla-dir/c.st 2>&1)
[ $? -eq 2 ] || fail "--checkpoint in a missing folder: $out"
out=$("$lm" --text /nonexistent-nabla-text 2>&1)
[ $? -eq 1 ] && echo "$out" | grep -q "nonexistent-nabla-text: No such file or directory" || fail "missing text: $out"
echo "ok: val loss $full (GPT), $lstm (LSTM)"
