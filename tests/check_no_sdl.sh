#!/bin/sh
# check_no_sdl.sh FILE...: fail if any executable or static library needs SDL2 or the viewer:
# a libSDL2 among an executable's shared libraries (ldd), or an SDL_ or viz_ symbol, defined
# or undefined, in its symbol table (nm). Used on nbody-eval and the model library.
status=0
for f in "$@"; do
  [ -f "$f" ] || { echo "check_no_sdl: $f not found" >&2; exit 2; }
  case "$f" in
    *.a) ;;
    *)
      libs=$(ldd "$f" 2>&1) || { echo "check_no_sdl: ldd $f failed: $libs" >&2; exit 2; }
      if echo "$libs" | grep -i 'libSDL2' >/dev/null; then
        echo "check_no_sdl: $f links SDL2:" >&2
        echo "$libs" | grep -i 'libSDL2' >&2
        status=1
      fi ;;
  esac
  syms=$(nm "$f" 2>/dev/null | awk '{ print $NF }' | grep -E '^(SDL_|viz_)' | sort -u)
  if [ -n "$syms" ]; then
    echo "check_no_sdl: $f refers to SDL or viewer symbols:" >&2
    echo "$syms" | head -20 >&2
    status=1
  fi
  [ $status -eq 0 ] && echo "check_no_sdl: $f: no SDL2, no viz"
done
exit $status
