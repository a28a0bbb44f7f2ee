#!/bin/sh
# make_seeds.sh BUILD_DIR: regenerate the seed corpora of tests/fuzz/corpus/ from the
# project's own programs (small on purpose: the fuzzer mutates them; none is over 8 KiB).
set -eu
B=${1:?usage: make_seeds.sh BUILD_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
C=$HERE/corpus
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir -p "$C/npy" "$C/manifest" "$C/ckpt" "$C/record"
# .npy: the reader's fixtures (every dtype, version and refusal) and real dataset files
cp "$HERE"/../data/npy/*.npy "$C/npy/"
"$B/sim/nbody-gen" --train 2 --valid 1 --test 1 --length 300 --sample-freq 100 --out "$T/d" 2>/dev/null
for q in loc edges charges; do cp "$T/d/${q}_train_charged5_initvel1small.npy" "$C/npy/gen_$q.npy"; done
# sidecar: nbody-gen's, and the smallest one the reader accepts
cp "$T/d/dataset.json" "$C/manifest/gen.json"
printf '{"format": "nbody-dataset 1", "run_id": "r", "files": [{"name": "a.npy", "bytes": 1, "sha256": "%s"}]}\n' \
  "$(printf x | sha256sum | cut -c1-64)" > "$C/manifest/min.json"
# checkpoints of the smallest networks: position, step with a field, EGNN, and a .state
"$B/sim/nbody-gen" --train 16 --valid 4 --test 4 --out "$T/p" 2>/dev/null
"$B/sim/nbody-gen" --sim dynamic --train 16 --valid 4 --test 4 --length 500 --out "$T/s" 2>/dev/null
TR="$B/model/nbody-train --hidden 2 --layers 1 --batch 8 --epochs 2 --stop-after 1 --threads 1 --quiet"
$TR --data "$T/p" --out "$T/pos.ckpt" > /dev/null
$TR --data "$T/s" --out "$T/step.ckpt" --task step --pairs-per-epoch 16 --eval-pairs 8 > /dev/null
$TR --data "$T/p" --out "$T/egnn.ckpt" --arch egnn > /dev/null 2>&1 || true
cp "$T/pos.ckpt" "$C/ckpt/position.ckpt"
cp "$T/step.ckpt" "$C/ckpt/step_field.ckpt"
[ -f "$T/egnn.ckpt" ] && cp "$T/egnn.ckpt" "$C/ckpt/egnn.ckpt"
cp "$T/pos.ckpt.state" "$C/ckpt/position.state"
# the resume record: the blob of a .state, between the arrays (96 + 12 n_params) and the CRC
for s in pos step; do
  f="$T/$s.ckpt.state"
  np=$(od -An -t u8 -j 76 -N 8 "$f" | tr -d ' ')
  size=$(wc -c < "$f")
  off=$((96 + 12 * np))
  tail -c +$((off + 1)) "$f" | head -c $((size - off - 4)) > "$C/record/$s.blob"
done
ls -l "$C"/*
