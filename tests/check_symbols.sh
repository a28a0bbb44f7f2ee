#!/bin/sh
# check_symbols.sh LIB PREFIX: every global symbol a static library defines must
# start with PREFIX (one namespace per library, as STYLE.md asks).
lib=$1 prefix=$2
[ -f "$lib" ] || { echo "check_symbols: $lib not found" >&2; exit 1; }
bad=$(nm -g --defined-only "$lib" | awk 'NF == 3 { print $3 }' | grep -v "^$prefix" | sort -u)
if [ -n "$bad" ]; then
  echo "check_symbols: $lib exports symbols without the prefix '$prefix':" >&2
  echo "$bad" >&2
  exit 1
fi
echo "check_symbols: $lib: all exported symbols start with '$prefix'"
