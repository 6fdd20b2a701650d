#!/usr/bin/env bash
# Builds cliplab's optional fused CPU kernels (src/backend/csrc/cliplab_kernels.c) into
# build/native/libcliplab_kernels.so (.dylib on macOS), loaded at run time by
# src/backend/fused_lib.ts. Needs a C compiler (cc/gcc/clang); uses OpenMP and -march=native when
# the compiler takes them. Without the library cliplab runs the same ops as tfjs kernels.
# Usage: bash scripts/build-native.sh [--quiet]; CC=clang to choose the compiler.
set -euo pipefail
cd "$(dirname "$0")/.."
quiet=${1:-}
src=src/backend/csrc/cliplab_kernels.c
out_dir=build/native
ext=so
[ "$(uname -s)" = "Darwin" ] && ext=dylib
out="$out_dir/libcliplab_kernels.$ext"
cc=${CC:-cc}
if ! command -v "$cc" >/dev/null 2>&1; then
  echo "build-native: no C compiler ($cc) found; cliplab will use its tfjs kernels instead" >&2
  exit 1
fi
mkdir -p "$out_dir"
tmp="$out.tmp.$$"
base=(-O3 -std=gnu11 -fPIC -shared -Wall -Wextra -Wno-unknown-pragmas -fno-math-errno -fno-trapping-math)
libs=(-lm)
[ "$(uname -s)" = "Linux" ] && libs+=(-ldl)
# Most specific first: the library is built on the machine that runs it.
for extra in "-march=native -fopenmp" "-fopenmp" "-march=native" ""; do
  # shellcheck disable=SC2086
  if "$cc" "${base[@]}" $extra -o "$tmp" "$src" "${libs[@]}" 2>/dev/null; then
    mv -f "$tmp" "$out"
    [ "$quiet" = "--quiet" ] || echo "build-native: built $out with $cc ${extra:-(no extra flags)}"
    exit 0
  fi
done
rm -f "$tmp"
echo "build-native: $cc could not compile $src:" >&2
"$cc" "${base[@]}" -o "$tmp" "$src" "${libs[@]}" >&2 || true
rm -f "$tmp"
exit 1
