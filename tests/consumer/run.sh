#!/bin/sh
# run.sh BUILD_DIR MODEL: install BUILD_DIR into a temporary prefix, check what was installed
# (the three public headers, no internal one), then build tests/consumer/consumer.c against the
# prefix alone, once with pkg-config and once with find_package, and run both builds.
set -e
build=$1 model=$2
src=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d /tmp/consumer.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
cmake --install "$build" --prefix "$prefix" > "$tmp/install.log"
headers=$(cd "$prefix/include/nbody" && ls | tr '\n' ' ')
if [ "$headers" != "clofnet.h plot.h sim.h " ]; then
  echo "run.sh: installed headers are '$headers', expected 'clofnet.h plot.h sim.h '" >&2
  exit 1
fi
for f in lib/libnbody-sim.a lib/libnbody-plot.a lib/libnbody-model.a bin/nbody-gen \
         bin/nbody-export bin/nbody-import lib/cmake/nbody-clofnet/nbody-clofnetConfig.cmake; do
  [ -f "$prefix/$f" ] || { echo "run.sh: $f was not installed" >&2; exit 1; }
done
# pkg-config: the installed files only (not the source tree's headers)
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
cc -std=c11 -Wall -Wextra -Werror -pedantic -o "$tmp/consumer-pc" "$src/consumer.c" \
   $(pkg-config --cflags --libs nbody-model)
"$tmp/consumer-pc" "$model" "$tmp/loc-pc.npy"
# find_package
cmake -S "$src" -B "$tmp/cmake" -DCMAKE_PREFIX_PATH="$prefix" > "$tmp/configure.log"
cmake --build "$tmp/cmake" > "$tmp/build.log"
"$tmp/cmake/consumer" "$model" "$tmp/loc-cmake.npy"
cmp "$tmp/loc-pc.npy" "$tmp/loc-cmake.npy"
echo "run.sh: installed, built with pkg-config and find_package, both ran"
