#!/bin/sh
# sweep.sh [--table] BIN DATA RUNS GRID [SEEDS]: a recipe sweep of nbody-train (issue 14),
# resumable. With --table nothing is trained: sweep.csv is rewritten from the finished runs of
# GRID and SEEDS (e.g. every config's seed 1 and the chosen one's seeds 2 to 4).
#   BIN    folder holding nbody-train (a copy, not the build tree)
#   DATA   the dataset (e.g. data/small, ES(5))
#   RUNS   folder for CONFIG-sSEED.ckpt/.csv/.state/.log and the table sweep.csv
#   GRID   a file of lines "CONFIG: nbody-train flags" ('#' starts a comment); CONFIG is a name
#          of letters, digits, '.', '_' and '-'
#   SEEDS  seeds, e.g. "1 2 3 4" [1]
# Each (config, seed) is trained to its end (resumed when stopped) with --threads 1, then
# sweep.csv is rewritten from every finished run: config, seed, best validation MSE, its
# epoch, the test MSE at that epoch, the training seconds and the flags. Choose by the
# validation column only; the test column is for reporting the chosen recipe.
set -eu
table_only=0
[ "${1:-}" = --table ] && { table_only=1; shift; }
BIN=${1:?usage: sweep.sh BIN DATA RUNS GRID [SEEDS]}
DATA=${2:?usage: sweep.sh BIN DATA RUNS GRID [SEEDS]}
RUNS=${3:?usage: sweep.sh BIN DATA RUNS GRID [SEEDS]}
GRID=${4:?usage: sweep.sh BIN DATA RUNS GRID [SEEDS]}
SEEDS=${5:-1}
[ -r "$GRID" ] || { echo "sweep.sh: cannot read the grid $GRID" >&2; exit 2; }
mkdir -p "$RUNS"

# the configs of the grid, checked before any run starts
configs=$(sed -e 's/#.*//' "$GRID" | awk -F: 'NF { gsub(/[ \t]/, "", $1); print $1 }')
[ -n "$configs" ] || { echo "sweep.sh: $GRID names no config" >&2; exit 2; }
for c in $configs; do
  case $c in *[!A-Za-z0-9._-]*) echo "sweep.sh: bad config name '$c' in $GRID" >&2; exit 2 ;; esac
done

flags_of() { sed -e 's/#.*//' "$GRID" | awk -F: -v c="$1" '{ n = $1; gsub(/[ \t]/, "", n) } n == c { sub(/^[^:]*:/, ""); print; exit }'; }

table() { # (its loop variables are its own: sh has no locals)
  tmp=$RUNS/sweep.csv.tmp.$$
  echo "config,seed,best_val,best_epoch,test_at_best,seconds,flags" > "$tmp"
  for tc in $configs; do
    for ts in $SEEDS; do
      log=$RUNS/$tc-s$ts.log
      [ -f "$log" ] || continue
      line=$(grep '^parameters .*best validation MSE' "$log" | tail -n 1) || continue
      [ -n "$line" ] || continue
      secs=$(awk -F, 'NR > 1 { t += $6 } END { printf "%.0f", t }' "$RUNS/$tc-s$ts.ckpt.csv")
      echo "$line" | awk -v c="$tc" -v s="$ts" -v t="$secs" -v f="$(flags_of "$tc")" '{
        for (i = 1; i <= NF; i++) {
          if ($i == "MSE" && $(i - 1) == "validation") v = $(i + 1)
          if ($i == "epoch" && $(i - 1) == "at" && e == "") { e = $(i + 1); sub(/;$/, "", e) }
          if ($i == "epoch" && $(i - 1) == "that") { t2 = $(i + 1); sub(/;$/, "", t2) }
        }
        gsub(/"/, "", f); printf "%s,%s,%s,%s,%s,%s,\"%s\"\n", c, s, v, e, t2, t, f }' >> "$tmp"
    done
  done
  mv "$tmp" "$RUNS/sweep.csv"
}

[ "$table_only" = 1 ] && { table; echo "sweep.sh: $RUNS/sweep.csv"; exit 0; }
for c in $configs; do
  flags=$(flags_of "$c")
  for s in $SEEDS; do
    ck=$RUNS/$c-s$s.ckpt
    # finished: the summary line is written, and no run was cut short (the marker stays
    # when one is killed or fails)
    if grep -q '^parameters .*best validation MSE' "$RUNS/$c-s$s.log" 2>/dev/null &&
       [ ! -f "$ck.running" ]; then
      continue
    fi
    : > "$ck.running"
    if [ -f "$ck.state" ]; then
      echo "$c seed $s: resuming"
      "$BIN/nbody-train" --resume --data "$DATA" --out "$ck" --threads 1 >> "$RUNS/$c-s$s.log" 2>&1
    else
      echo "$c seed $s: starting ($flags)"
      # shellcheck disable=SC2086
      "$BIN/nbody-train" --data "$DATA" --out "$ck" $flags --seed "$s" --threads 1 \
        > "$RUNS/$c-s$s.log" 2>&1
    fi
    rm -f "$ck.running"
    table
  done
done
table
echo "sweep.sh: $RUNS/sweep.csv"
