#!/bin/sh
# table-runs.sh BIN DATA RUNS QUEUE...: the training runs of the Newtonian table (BENCHMARKS.md,
# "EGNN beside ClofNet"), one queue after the other, each run resumed where it stopped.
#   BIN   folder holding nbody-train (copy the binaries out of the build tree first, so a rebuild
#         during a run of hours does not hit a busy file)
#   DATA  folder holding small, small_20body, static_20body, dynamic_20body (nbody-gen defaults,
#         seed 43: nbody-gen --out DATA/small; --bodies 20 --tag small_20body [--sim static|dynamic])
#   RUNS  folder for NAME.ckpt, NAME.ckpt.csv, NAME.ckpt.state and NAME.log
#   QUEUE names from the list below; a finished run (its history reaches its last epoch) is skipped.
#         A name with -clip before its seed (clofnet-es20-clip-s1) is the same run with the gradient's
#         global norm clipped at 0.1 (--clip 0.1, the ES(5) sweep's value), beside the published one.
# Every run is one thread; run two queues side by side on a two-core machine. Stopping a queue
# (Ctrl-C, SIGTERM) stops the current run at an epoch boundary; running the same line again resumes.
set -eu
BIN=${1:?usage: table-runs.sh BIN DATA RUNS NAME...}
DATA=${2:?usage: table-runs.sh BIN DATA RUNS NAME...}
RUNS=${3:?usage: table-runs.sh BIN DATA RUNS NAME...}
shift 3
[ $# -gt 0 ] || { echo "table-runs.sh: no run named" >&2; exit 2; }
mkdir -p "$RUNS"

# NAME -> "EPOCHS ARGS": the published protocol (nbody-train defaults) with the reference's epochs
args_of() {
  case $1 in
    egnn-es5-s[0-9]*)      echo "400 --arch egnn --data $DATA/small --seed ${1##*-s}" ;;
    clofnet-es20-s[0-9]*)  echo "600 --data $DATA/small_20body --seed ${1##*-s}" ;;
    egnn-es20-s[0-9]*)     echo "600 --arch egnn --data $DATA/small_20body --seed ${1##*-s}" ;;
    clofnet-ges20-s[0-9]*) echo "200 --data $DATA/static_20body --seed ${1##*-s}" ;;
    egnn-ges20-s[0-9]*)    echo "200 --arch egnn --data $DATA/static_20body --seed ${1##*-s}" ;;
    clofnet-fges20-s[0-9]*) echo "200 --field-input --data $DATA/static_20body --seed ${1##*-s}" ;;
    clofnet-les20-s[0-9]*) echo "600 --data $DATA/dynamic_20body --seed ${1##*-s}" ;;
    egnn-les20-s[0-9]*)    echo "600 --arch egnn --data $DATA/dynamic_20body --seed ${1##*-s}" ;;
    clofnet-fles20-s[0-9]*) echo "600 --field-input --data $DATA/dynamic_20body --seed ${1##*-s}" ;;
    *) echo "table-runs.sh: unknown run $1" >&2; return 1 ;;
  esac
}

for name in "$@"; do
  case $name in
    *-clip-s[0-9]*) spec="$(args_of "$(echo "$name" | sed 's/-clip-s\([0-9]*\)$/-s\1/')") --clip 0.1" ;;
    *) spec=$(args_of "$name") ;;
  esac
  epochs=${spec%% *}
  rest=${spec#* }
  ck=$RUNS/$name.ckpt
  last=-1
  [ -f "$ck.csv" ] && last=$(awk -F, 'NR > 1 { e = $1 } END { print (e == "" ? -1 : e) }' "$ck.csv")
  if [ "$last" -ge $((epochs - 1)) ]; then
    echo "$name: finished ($epochs epochs)"
    continue
  fi
  if [ -f "$ck.state" ]; then
    echo "$name: resuming after epoch $last"
    # shellcheck disable=SC2086
    "$BIN/nbody-train" --resume --out "$ck" $rest --threads 1 >> "$RUNS/$name.log" 2>&1
  else
    echo "$name: starting"
    # shellcheck disable=SC2086
    "$BIN/nbody-train" --out "$ck" --epochs "$epochs" $rest --threads 1 > "$RUNS/$name.log" 2>&1
  fi
  echo "$name: $(tail -n 1 "$RUNS/$name.log")"
done
