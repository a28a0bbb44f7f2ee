#!/bin/sh
# step-runs.sh BIN DATA RUNS NAME...: the learned-integrator runs of BENCHMARKS.md ("Rollout-aware
# training", issue 10), one after the other, each resumed where it stopped, then evaluated by
# free rollouts from frame 0 on the 2000-trajectory test split (NAME.rollout.json).
#   BIN   folder holding nbody-train and nbody-eval (copies, not the build tree)
#   DATA  folder holding small (ES(5): nbody-gen defaults), static5 and dynamic5
#         (nbody-gen --sim static|dynamic --out DATA/KIND5)
#   RUNS  folder for NAME.ckpt, .csv, .state, .log, .rollout.json
#   NAME  [egnn-]SETTING-ARM-sSEED with SETTING charged|static|dynamic and ARM one of
#         base      the shipped recipe (one-step pairs, selection by the one-step loss)
#         roll      + selection by free rollouts of 200 validation trajectories
#         noise     + input noise 0.003 on positions and velocities
#         unroll    + 4 chained steps (BPTT), one more every 10 epochs
#         mom       + the momentum projection (centroid mode on charged and static, Lorentz
#                   mode on dynamic: model/nn_project.h)
#         unmom     unroll + mom (no noise, no rollout selection)
#         energy    + the energy term (--energy-weight 0.3: each step's energy against its
#                   target's, a Huber penalty)
#         momen     mom + energy
#         momen1    mom + the energy term at weight 1 (--energy-weight 1)
#         unmomen   unroll + mom + energy
#         unmomf    unroll + mom, the first chained step weighing 3 (--unroll-first 3: half the
#                   loss at K = 4)
#         unmomfen  unmomf + energy
#         all       every ingredient but the energy term
#         ftunmom   a fine-tune of the finished mom run of the same setting, seed and
#                   architecture (--init RUNS/[egnn-]SETTING-mom-sSEED.ckpt, run it first):
#                   FT_EPOCHS epochs from lr 1e-3, unroll 4 (one more step every 5 epochs),
#                   the projection, selection by free rollouts of 200 validation trajectories
# Every run is one thread; a finished run (history at its last epoch) is only re-evaluated
# when its rollout file is missing.
set -eu
BIN=${1:?usage: step-runs.sh BIN DATA RUNS NAME...}
DATA=${2:?usage: step-runs.sh BIN DATA RUNS NAME...}
RUNS=${3:?usage: step-runs.sh BIN DATA RUNS NAME...}
shift 3
[ $# -gt 0 ] || { echo "step-runs.sh: no run named" >&2; exit 2; }
mkdir -p "$RUNS"
EPOCHS=60
RECIPE="--task step --epochs $EPOCHS --cosine --lr 5e-3 --ema 0.99"
ROLL="--val-rollout 200"
NOISE="--input-noise 0.003"
UNROLL="--unroll 4 --unroll-every 10"
ENERGY="--energy-weight 0.3"
FIRST="--unroll-first 3"
FT_EPOCHS=20

for name in "$@"; do
  rest=$name arch=""
  case $rest in egnn-*) arch="--arch egnn"; rest=${rest#egnn-} ;; esac
  setting=${rest%%-*}; rest=${rest#*-}
  arm=${rest%%-s*}; seed=${rest##*-s}
  case $setting in
    charged) data=$DATA/small ;;
    static|dynamic) data=$DATA/${setting}5 ;;
    *) echo "step-runs.sh: unknown setting in $name" >&2; exit 2 ;;
  esac
  mom="--project-momentum"
  epochs=$EPOCHS recipe=$RECIPE
  case $arm in
    base) extra="" ;;
    roll) extra="$ROLL" ;;
    noise) extra="$NOISE" ;;
    unroll) extra="$UNROLL" ;;
    mom) extra="$mom" ;;
    all) extra="$ROLL $NOISE $UNROLL $mom" ;;
    unmom) extra="$UNROLL $mom" ;;
    energy) extra="$ENERGY" ;;
    momen) extra="$mom $ENERGY" ;;
    momen1) extra="$mom --energy-weight 1" ;;
    unmomen) extra="$UNROLL $mom $ENERGY" ;;
    unmomf) extra="$UNROLL $mom $FIRST" ;;
    unmomfen) extra="$UNROLL $mom $FIRST $ENERGY" ;;
    ftunmom)
      from=$RUNS/${name%%$setting-*}$setting-mom-s$seed.ckpt
      [ -f "$from" ] || { echo "step-runs.sh: $name fine-tunes $from, which is not there" >&2; exit 2; }
      epochs=$FT_EPOCHS recipe="--task step --epochs $FT_EPOCHS --cosine --lr 1e-3 --ema 0.99"
      extra="--init $from --unroll 4 --unroll-every 5 $mom $ROLL" ;;
    *) echo "step-runs.sh: unknown arm in $name" >&2; exit 2 ;;
  esac
  ck=$RUNS/$name.ckpt
  last=-1
  [ -f "$ck.csv" ] && last=$(awk -F, 'NR > 1 { e = $1 } END { print (e == "" ? -1 : e) }' "$ck.csv")
  if [ "$last" -lt $((epochs - 1)) ]; then
    if [ -f "$ck.state" ]; then
      echo "$name: resuming after epoch $last"
      "$BIN/nbody-train" --resume --data "$data" --out "$ck" --threads 1 >> "$RUNS/$name.log" 2>&1
    else
      echo "$name: starting"
      # shellcheck disable=SC2086
      "$BIN/nbody-train" --data "$data" --out "$ck" $recipe $arch $extra --seed "$seed" \
        --threads 1 > "$RUNS/$name.log" 2>&1
    fi
    rm -f "$RUNS/$name.rollout.json"
  fi
  if [ ! -f "$RUNS/$name.rollout.json" ]; then
    "$BIN/nbody-eval" --model "$ck" --data "$data" --rollout 40 --json --threads 1 --plot "$RUNS/$name.rollout" \
      > "$RUNS/$name.rollout.json.tmp" && mv "$RUNS/$name.rollout.json.tmp" "$RUNS/$name.rollout.json"
  fi
  echo "$name: $(tail -n 1 "$RUNS/$name.log")"
done
