#!/bin/sh
# bench-sim.sh [BUILD_DIR]: trajectories per second of nbody-gen for ES(5) and
# ES(20) at T 5000 on 1 and 2 threads, then wall time and peak memory of the
# full standard ES(5) set (3000/2000/2000). Prints one line per measurement.
set -e
B=${1:-build}/sim/nbody-gen
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
for t in 1 2; do
  for n in 5 20; do
    count=$((n == 5 ? 2000 : 200))
    r=$("$B" --bodies $n --train $count --valid 0 --test 0 --threads $t --out "$OUT/b$n" --force --json)
    echo "ES($n) T=5000 threads=$t: $(echo "$r" | sed 's/.*"trajectories_per_second": \([0-9.]*\).*/\1/') trajectories/s"
  done
done
/usr/bin/time -f "full ES(5) set (3000/2000/2000), 2 threads: %e s wall, %M KB peak RSS" \
  "$B" --out "$OUT/full" --threads 2 --force
