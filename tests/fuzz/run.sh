#!/bin/sh
# run.sh HARNESS SEEDS SECONDS [DICT]: run one libFuzzer harness for SECONDS on a copy of its
# seed corpus (the committed seeds are never written to); exit 0, or non-zero on any crash,
# leak, undefined behaviour or timeout, after printing the reproducer's path and the report.
# Used by ctest (tests/fuzz.cmake); for long runs see tests/fuzz/README.md.
set -eu
H=$1
SEEDS=$2
SECS=$3
DICT=${4:-}
name=$(basename "$H")
W=$(mktemp -d "${TMPDIR:-/tmp}/$name.XXXXXX")
keep=$(dirname "$H")/artifacts
mkdir -p "$W/corpus" "$keep"
set -- -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix="$keep/$name-"
if [ -n "$DICT" ]; then set -- "$@" -dict="$DICT"; fi
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
rc=0
nice -n 10 "$H" "$@" "$W/corpus" "$SEEDS" > "$W/log" 2>&1 || rc=$?
last=$(grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE)' "$W/log" | tail -1 || true)
execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$W/log" | grep -o '[0-9]*$' || true)
rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$W/log" | grep -o '[0-9]*$' || true)
cov=$(echo "$last" | grep -o 'cov: [0-9]*' || true)
ft=$(echo "$last" | grep -o 'ft: [0-9]*' || true)
corp=$(ls "$W/corpus" | wc -l)
if [ "$rc" -ne 0 ]; then
  echo "$name: FAILED (exit $rc) after ${execs:-?} runs; reproducer in $keep/:"
  ls "$keep" | grep "^$name-" || true
  tail -n 60 "$W/log"
  rm -rf "$W"
  exit 1
fi
echo "$name: ${execs:-?} runs in ${SECS} s (${rate:-?}/s), $cov, $ft, corpus $corp new + seeds, no crash"
rm -rf "$W"
