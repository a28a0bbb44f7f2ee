#!/bin/sh
# bad_inputs.sh BUILD_DIR ASSETS_DIR: the bad-input matrix of issue 12. Every case runs one
# program on one bad input in a fresh folder and must end clean: a non-zero exit, exactly one
# line on stderr naming the thing (the file, flag or field given as EXPECT), and no file left
# that was not there before (nor a temporary beside it). Prints one row per case; exits 1 if
# any case is not clean. Run by ctest (tests/reliability.cmake); the table is in BENCHMARKS.md.
set -u
B=${1:?usage: bad_inputs.sh BUILD_DIR ASSETS_DIR}
A=${2:?usage: bad_inputs.sh BUILD_DIR ASSETS_DIR}
GEN=$B/sim/nbody-gen
TRAIN=$B/model/nbody-train
EVAL=$B/model/nbody-eval
STEP=$A/models/step-charged5.ckpt
DYN=$A/models/step-dynamic5.ckpt
POS=$A/models/clofnet-es5.ckpt
T=$(mktemp -d "${TMPDIR:-/tmp}/bad_inputs.XXXXXX")
L=$(mktemp -d "${TMPDIR:-/tmp}/bad_inputs_log.XXXXXX") # the programs' output, outside $T
trap 'rm -rf "$T" "$L"' EXIT
N=0
BAD=0
SUF=_charged5_initvel1small.npy

# Datasets: one from nbody-gen (with its sidecar) and copies to spoil.
"$GEN" --train 40 --valid 8 --test 8 --seed 1 --out "$T/good" 2> /dev/null || exit 1
"$GEN" --train 40 --valid 8 --test 8 --seed 2 --out "$T/other" 2> /dev/null || exit 1
"$GEN" --sim dynamic --train 40 --valid 8 --test 8 --out "$T/dyn" 2> /dev/null || exit 1

# fresh NAME: a copy of the good dataset at $T/NAME (without its sidecar if NOSIDE=1)
fresh() {
  rm -rf "$T/$1"
  cp -r "$T/good" "$T/$1"
  if [ "${NOSIDE:-0}" = 1 ]; then rm -f "$T/$1/dataset.json"; fi
}
# poke FILE OFFSET HEXBYTES: overwrite bytes in place ("00 00 f8 7f" ...)
poke() {
  esc=""
  for h in $3; do esc="$esc$(printf '\\%03o' "0x$h")"; done
  printf "$esc" | dd of="$1" bs=1 seek="$2" conv=notrunc 2> /dev/null
}
# crcfix FILE: make a checkpoint's last 4 bytes the CRC-32 of the rest (gzip's trailer holds it)
crcfix() {
  size=$(wc -c < "$1")
  head -c $((size - 4)) "$1" | gzip -c | tail -c 8 | head -c 4 > "$1.crc"
  dd if="$1.crc" of="$1" bs=1 seek=$((size - 4)) conv=notrunc 2> /dev/null
  rm -f "$1.crc"
}
# ckpt NAME FROM OFFSET HEX: a copy of a checkpoint with bytes changed and the CRC made right
ckpt() {
  cp "$2" "$T/$1"
  poke "$T/$1" "$3" "$4"
  crcfix "$T/$1"
}

# check PROGRAM CASE EXPECT [env VAR=..] -- ARGS: run in a fresh work folder, judge, print a row
check() {
  prog=$1 name=$2 expect=$3
  shift 3
  W=$T/work
  rm -rf "$W"
  mkdir "$W"
  before=$(find "$T" -path "$W" -prune -o -print | sort | md5sum)
  (cd "$W" && "$@" > "$L/out.txt" 2> "$L/err.txt")
  rc=$?
  after=$(find "$T" -path "$W" -prune -o -print | sort | md5sum)
  lines=$(wc -l < "$L/err.txt")
  msg=$(head -c 150 "$L/err.txt" | tr '\n' ' ' | sed 's/|/\\|/g')
  left=$(ls -A "$W" | tr '\n' ' ')
  ok=1
  [ "$rc" -ne 0 ] || ok=0
  [ "$lines" -eq 1 ] || ok=0
  grep -qF -- "$expect" "$L/err.txt" || ok=0
  [ -z "$left" ] || ok=0
  [ "$before" = "$after" ] || ok=0
  N=$((N + 1))
  if [ "$ok" = 1 ]; then
    printf '| %s | %s | %d | clean | %s |\n' "$prog" "$name" "$rc" "$msg"
  else
    BAD=$((BAD + 1))
    printf '| %s | %s | %d | NOT CLEAN (lines %s, left "%s", expected "%s") | %s |\n' "$prog" \
      "$name" "$rc" "$lines" "$left" "$expect" "$msg"
  fi
}

echo "| program | case | exit | result | message |"
echo "|---|---|---|---|---|"
# ---------------------------------------------------------------- nbody-gen
check nbody-gen "--train -5" "--train" "$GEN" --train -5 --out "$T/g1"
check nbody-gen "--bodies 1" "--bodies" "$GEN" --bodies 1 --out "$T/g1"
check nbody-gen "--seed 2^32" "--seed" "$GEN" --seed 4294967296 --out "$T/g1"
check nbody-gen "--length not a multiple" "multiple" "$GEN" --length 1050 --out "$T/g1"
check nbody-gen "--sim springs" "springs" "$GEN" --sim springs --out "$T/g1"
check nbody-gen "--threads 0" "--threads" "$GEN" --threads 0 --out "$T/g1"
check nbody-gen "unknown option" "--frobnicate" "$GEN" --frobnicate
check nbody-gen "--tag with /" "--tag" "$GEN" --tag a/b --out "$T/g1"
check nbody-gen "10^8 trajectories of 10^4 bodies" "bytes" "$GEN" --train 100000000 --bodies 10000 --out "$T/g1"
touch "$T/afile"
check nbody-gen "--out through a file" "afile" "$GEN" --train 2 --valid 2 --test 2 --out "$T/afile/sub"
check nbody-gen "--out ." "current folder" "$GEN" --train 2 --valid 2 --test 2 --out .
mkdir -p "$T/foreign" && touch "$T/foreign/notes.txt"
check nbody-gen "--out holds other files" "notes.txt" "$GEN" --train 2 --valid 2 --test 2 --force --out "$T/foreign"
check nbody-gen "existing dataset, no --force" "--force" "$GEN" --train 2 --valid 2 --test 2 --out "$T/good"
# a second writer while the first is held after its third file (NBODY_GEN_FAULT=write-3:stop)
rm -rf "$T/locked"
NBODY_GEN_FAULT=write-3:stop "$GEN" --train 2 --valid 2 --test 2 --out "$T/locked" 2> /dev/null &
first=$!
for i in $(seq 100); do
  [ "$(ps -o stat= -p $first 2> /dev/null | cut -c1)" = T ] && break
  sleep 0.05
done
check nbody-gen "second writer of one folder" "pid $first" "$GEN" --train 2 --valid 2 --test 2 --force --out "$T/locked"
kill -CONT $first
wait $first
# ---------------------------------------------------------------- nbody-train
TR="$TRAIN --task step --epochs 1 --hidden 8 --layers 1 --batch 8 --threads 1 --out m.ckpt"
check nbody-train "--data missing" "cannot open" $TR --data "$T/none"
mkdir -p "$T/empty"
check nbody-train "--data empty folder" "no dataset" $TR --data "$T/empty"
rm -rf "$T/two" && cp -r "$T/good" "$T/two" && cp "$T/dyn/"*.npy "$T/two/"
check nbody-train "two datasets in one folder" "several datasets" $TR --data "$T/two"
NOSIDE=1 fresh nan && poke "$T/nan/loc_train$SUF" 128 "00 00 00 00 00 00 f8 7f"
check nbody-train "NaN in loc (no sidecar)" "index [0, 0, 0, 0]" $TR --data "$T/nan"
NOSIDE=1 fresh inf && poke "$T/inf/vel_valid$SUF" $((128 + 8 * 17)) "00 00 00 00 00 00 f0 7f"
check nbody-train "Inf in vel (no sidecar)" "index [0, 1, 0, 2]" $TR --data "$T/inf"
NOSIDE=1 fresh huge && poke "$T/huge/loc_test$SUF" $((128 + 8 * 735)) "9c 75 00 88 3c e4 37 7e"
check nbody-train "1e300 in loc (no sidecar)" "index [1, 0, 0, 0]" $TR --data "$T/huge"
NOSIDE=1 fresh qnan && poke "$T/qnan/charges_train$SUF" $((128 + 8 * 3)) "00 00 00 00 00 00 f8 ff"
check nbody-train "NaN in charges (no sidecar)" "charges_train" $TR --data "$T/qnan"
NOSIDE=1 fresh trunc && head -c 1000 "$T/good/vel_train$SUF" > "$T/trunc/vel_train$SUF"
check nbody-train "truncated .npy" "truncated" $TR --data "$T/trunc"
NOSIDE=1 fresh dtype && poke "$T/dtype/loc_valid$SUF" 22 "69"
check nbody-train "int64 dtype" "dtype" $TR --data "$T/dtype"
NOSIDE=1 fresh shape && cp "$T/good/loc_valid$SUF" "$T/shape/loc_train$SUF"
check nbody-train "loc/vel shapes disagree" "does not match loc" $TR --data "$T/shape"
fresh mixed && cp "$T/other/vel_test$SUF" "$T/mixed/"
check nbody-train "file of another run (sidecar)" "mixes files of different runs" $TR --data "$T/mixed"
fresh side && printf '{"format": "nbody-dataset 1", "files": [' > "$T/side/dataset.json"
check nbody-train "damaged dataset.json" "dataset.json" $TR --data "$T/side"
check nbody-train "--out in a missing folder" "cannot write" $TR --data "$T/good" --out "$T/none/x.ckpt"
check nbody-train "--resume with nothing" "nothing to resume" $TR --data "$T/good" --resume
check nbody-train "--epochs 0" "--epochs" $TR --data "$T/good" --epochs 0
check nbody-train "--batch 65536" "fewer than one batch" $TR --data "$T/good" --batch 65536
check nbody-train "--lr nan" "--lr" $TR --data "$T/good" --lr nan
# a .state with a bad stored option (batch 0), and one with a flipped byte (CRC)
rm -rf "$T/st" && mkdir "$T/st"
$TRAIN --data "$T/good" --out "$T/st/m.ckpt" --task step --epochs 3 --stop-after 1 --hidden 8 \
  --layers 1 --batch 8 --threads 1 --quiet > /dev/null 2>&1
np=$(od -An -t u8 -j 76 -N 8 "$T/st/m.ckpt.state" | tr -d ' ')
cp "$T/st/m.ckpt.state" "$T/st/keep"
# arrays start at 136 in a version 2 file (96-byte header, 40-byte training-data record)
poke "$T/st/m.ckpt.state" $((136 + 12 * np + 40)) "00 00 00 00 00 00 00 00" && crcfix "$T/st/m.ckpt.state"
check nbody-train ".state: stored batch 0" "m.ckpt.state: stored option batch" $TRAIN --data "$T/good" --out "$T/st/m.ckpt" --resume
cp "$T/st/keep" "$T/st/m.ckpt.state" && poke "$T/st/m.ckpt.state" 200 "ff"
check nbody-train ".state: a flipped byte" "checksum" $TRAIN --data "$T/good" --out "$T/st/m.ckpt" --resume
# ---------------------------------------------------------------- nbody-eval
EV="$EVAL --data $T/good"
check nbody-eval "--model missing" "cannot open checkpoint" $EV --model "$T/none.ckpt"
check nbody-eval "--model a directory" "is a directory" $EV --model "$T"
check nbody-eval "--model /dev/null" "not a regular file" $EV --model /dev/null
head -c 1000 /dev/urandom > "$T/rand.ckpt"
check nbody-eval "--model random bytes" "not a ClofNet checkpoint" $EV --model "$T/rand.ckpt"
head -c 3000 "$STEP" > "$T/cut.ckpt"
check nbody-eval "--model truncated" "truncated" $EV --model "$T/cut.ckpt"
ckpt nb.ckpt "$STEP" 36 "ff ff ff 7f"
check nbody-eval "header n_bodies 2^31-1" "n_bodies is 2147483647" $EV --model "$T/nb.ckpt"
ckpt hz.ckpt "$STEP" 40 "00 00 00 00"
check nbody-eval "header horizon 0" "horizon is 0" $EV --model "$T/hz.ckpt"
ckpt kind.ckpt "$STEP" 32 "07 00 00 00"
check nbody-eval "header sim_kind 7" "sim_kind is 7" $EV --model "$T/kind.ckpt"
ckpt pnan.ckpt "$STEP" $((96 + 4 * 10)) "00 00 c0 7f"
check nbody-eval "NaN parameter" "non-finite parameter (nan) at index 10" $EV --model "$T/pnan.ckpt"
ckpt pbig.ckpt "$STEP" $((96 + 4 * 3)) "ff ff 7f 7f"
check nbody-eval "parameter 3.4e38" "out-of-range parameter" $EV --model "$T/pbig.ckpt"
check nbody-eval "step model, other setting" "trained on the dynamic setting" $EV --model "$DYN"
check nbody-eval "same, --rollout" "trained on the dynamic setting" $EV --model "$DYN" --rollout 2
check nbody-eval "position model, --rollout" "position model" $EV --model "$POS" --rollout 2
check nbody-eval "NaN in the data (no sidecar)" "index [0, 0, 0, 0]" $EVAL --model "$STEP" --data "$T/nan" --split train
check nbody-eval "file of another run (sidecar)" "mixes files of different runs" $EVAL --model "$STEP" --data "$T/mixed"
check nbody-eval "--split nope" "--split" $EV --model "$STEP" --split nope
check nbody-eval "--plot in a missing folder" "cannot write the rollout table" $EV --model "$STEP" --rollout 2 --plot "$T/none/r"
check nbody-eval "--rollout 0" "--rollout" $EV --model "$STEP" --rollout 0
echo
echo "$N cases, $((N - BAD)) clean"
[ "$BAD" -eq 0 ]
