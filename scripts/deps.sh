#!/bin/sh
# deps.sh: the one list of Debian 12 packages this project needs to build, test and run.
# Used by the README quick start and by .ci/run. Run as root (or with sudo available).
# zlib1g-dev: the deflated entries of .npz archives (model/npz.c).
set -e
# clang, libclang-rt-14-dev (libFuzzer and the sanitizers) and libomp-14-dev: the fuzzing
# harnesses of tests/fuzz/, which are skipped with a message when they are missing.
# openmpi-bin and libopenmpi-dev: nbody-gen and nbody-train under mpirun, and their tests
# (tests/mpi.cmake); without them both build single-process and those tests are not registered.
PKGS="build-essential cmake pkg-config libcmocka-dev libopenblas-dev \
libsdl2-dev libgl-dev libegl-dev libpng-dev zlib1g-dev xvfb xauth mesa-utils libgl1-mesa-dri \
clang libclang-rt-14-dev libomp-14-dev \
openmpi-bin libopenmpi-dev"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends $missing
fi
