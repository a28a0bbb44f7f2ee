#!/bin/sh
# bench-model.sh BUILD [REF_BUILD] [DATA]: ClofNet speed of one build, or of two side by side
# (alternating runs, so both see the same machine state). Per build: clofnet-bench's forward,
# training step and epoch on 1 and 2 threads, then the seconds of nbody-train's epochs 1..4
# (no validation in them) on 2 threads on DATA (an ES(5) set; made with nbody-gen if absent).
set -e
B=${1:?usage: bench-model.sh BUILD [REF_BUILD] [DATA]}
REF=${2:-}
DATA=${3:-}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
if [ -z "$DATA" ]; then
  DATA=$TMP/es5
  "$B/sim/nbody-gen" --out "$DATA" --threads 2 2> /dev/null
fi
builds="$B"
[ -n "$REF" ] && builds="$REF $B"
for round in 1 2 3; do
  for b in $builds; do
    for t in 1 2; do
      "$b/model/clofnet-bench" --threads $t --reps 30 |
        awk -v b="$b" -v t=$t -v r=$round '/^forward /{f=$3} /^forward\+backward/{s=$3}
          /^epoch/{e=$6} END{printf "%-28s round %d threads %d: forward %s ms, step %s ms, bench epoch %s s\n", b, r, t, f, s, e}'
    done
    rm -f "$TMP"/t.ckpt*
    "$b/model/nbody-train" --data "$DATA" --out "$TMP/t.ckpt" --epochs 400 --stop-after 5 \
      --threads 2 > /dev/null
    awk -F, -v b="$b" -v r=$round 'NR>2{s=s" "$6} END{printf "%-28s round %d nbody-train epochs 1-4 (2 threads):%s s\n", b, r, s}' "$TMP/t.ckpt.csv"
  done
done
