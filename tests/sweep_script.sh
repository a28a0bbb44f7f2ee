#!/bin/sh
# sweep_script.sh SRC_DIR BUILD_DIR: scripts/sweep.sh end to end on a tiny grid: every (config,
# seed) trains once and lands in sweep.csv with its flags; a run cut short is resumed to the
# bytes of an uninterrupted one; finished runs are not trained again; --table rewrites the table
# without training; a bad config name and a missing grid are refused. Exits 1 on any failure.
set -u
S=${1:?usage: sweep_script.sh SRC_DIR BUILD_DIR}
B=${2:?usage: sweep_script.sh SRC_DIR BUILD_DIR}
T=$(mktemp -d "${TMPDIR:-/tmp}/sweep_script.XXXXXX")
trap 'rm -rf "$T"' EXIT
fail() { echo "sweep_script: $*" >&2; exit 1; }
mkdir "$T/bin"
cp "$B/model/nbody-train" "$T/bin/" || fail "no nbody-train in $B"
"$B/sim/nbody-gen" --train 48 --valid 16 --test 16 --out "$T/data" > /dev/null 2>&1 || fail "nbody-gen"
TINY="--epochs 3 --batch 16 --hidden 8 --layers 1 --val-every 1"
cat > "$T/grid" <<G
# a comment line
a: $TINY
b: $TINY --clip 0.01   # trailing comment
G
sh "$S/scripts/sweep.sh" "$T/bin" "$T/data" "$T/runs" "$T/grid" "1 2" > "$T/out" 2>&1 || fail "the sweep failed: $(cat "$T/out")"
[ "$(wc -l < "$T/runs/sweep.csv")" -eq 5 ] || fail "sweep.csv should have a header and 4 rows: $(cat "$T/runs/sweep.csv")"
grep -q '^b,2,.*--clip 0.01' "$T/runs/sweep.csv" || fail "config b seed 2 missing or without its flags"
grep -q '^a,1,0\.[0-9]*,[0-9]*,0\.[0-9]*,' "$T/runs/sweep.csv" || fail "config a seed 1 has no numbers"
# a finished run is not trained again
sh "$S/scripts/sweep.sh" "$T/bin" "$T/data" "$T/runs" "$T/grid" "1 2" > "$T/out2" 2>&1 || fail "second sweep"
grep -q starting "$T/out2" && fail "finished runs trained again"
# a run cut short (stopped after one epoch, the marker left as a kill leaves it) resumes to the
# bytes of the uninterrupted run
rm "$T/runs"/a-s1.*
"$T/bin/nbody-train" --data "$T/data" --out "$T/runs/a-s1.ckpt" $TINY --seed 1 --threads 1 --stop-after 1 \
  > "$T/runs/a-s1.log" 2>&1 || fail "the cut run"
: > "$T/runs/a-s1.ckpt.running"
sh "$S/scripts/sweep.sh" "$T/bin" "$T/data" "$T/runs" "$T/grid" "1 2" > "$T/out3" 2>&1 || fail "resuming sweep"
grep -q 'a seed 1: resuming' "$T/out3" || fail "the cut run was not resumed: $(cat "$T/out3")"
"$T/bin/nbody-train" --data "$T/data" --out "$T/ref.ckpt" $TINY --seed 1 --threads 1 > /dev/null 2>&1 || fail "reference run"
cmp -s "$T/ref.ckpt" "$T/runs/a-s1.ckpt" || fail "the resumed run differs from an uninterrupted one"
[ -e "$T/runs/a-s1.ckpt.running" ] && fail "the marker of a finished run is left"
# --table: seed 1 only, nothing trained
sh "$S/scripts/sweep.sh" --table "$T/bin" "$T/data" "$T/runs" "$T/grid" 1 > "$T/out4" 2>&1 || fail "--table"
[ "$(wc -l < "$T/runs/sweep.csv")" -eq 3 ] || fail "--table with seed 1: $(cat "$T/runs/sweep.csv")"
grep -q starting "$T/out4" && fail "--table trained"
# refusals: a bad name, a missing grid
echo 'bad/name: --epochs 1' > "$T/badgrid"
sh "$S/scripts/sweep.sh" "$T/bin" "$T/data" "$T/runs" "$T/badgrid" > "$T/out5" 2>&1 && fail "a bad config name was accepted"
grep -q "bad config name" "$T/out5" || fail "no message for a bad config name"
sh "$S/scripts/sweep.sh" "$T/bin" "$T/data" "$T/runs" "$T/nogrid" > "$T/out6" 2>&1 && fail "a missing grid was accepted"
grep -q "cannot read the grid" "$T/out6" || fail "no message for a missing grid"
echo "sweep_script: all checks passed"
