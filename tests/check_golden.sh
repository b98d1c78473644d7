#!/usr/bin/env bash
# check_golden.sh TLC DIR NAME
# Compiles DIR/NAME.graph (extra flags from a "# args:" line; a "# file: PATH" line compiles
# PATH, relative to DIR, instead, so a golden can pin a file that lives elsewhere, such as an
# example, without copying it) and compares the result with
# the committed expectation: NAME.out (exit 0, the output) or NAME.err (exit 1, the
# diagnostic on stderr, and no output file written over what was there).
# UPDATE=1 rewrites the expectation instead, for review with git diff.
set -u
tlc=$1 dir=$2 name=$3
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$dir" || exit 2
args=$(sed -n 's/^# args: //p' "$name.graph" | head -n 1)
src=$(sed -n 's/^# file: //p' "$name.graph" | head -n 1)
src=${src:-$name.graph}
case "$args" in *--emit*|*--stats*) ;; *) args="--emit=ir $args" ;; esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "keep" > "$tmp/out"
# shellcheck disable=SC2086
"$tlc" "$src" $args -o "$tmp/out" > "$tmp/stdout" 2> "$tmp/stderr"
rc=$?
# Messages name files by absolute path where the user did (the graphs/ directory): make them
# independent of where the repository is checked out.
sed -i "s#$root#<root>#g" "$tmp/stderr" "$tmp/out"

if [ -f "$name.err" ] || { [ "${UPDATE:-}" = 1 ] && [ $rc -ne 0 ]; }; then
  expected=$name.err actual=$tmp/stderr
  [ $rc -eq 1 ] || { echo "FAIL: expected exit status 1, got $rc"; cat "$tmp/stderr"; exit 1; }
  [ "$(cat "$tmp/out")" = keep ] || { echo "FAIL: the output file was touched by a failed compile"; exit 1; }
else
  expected=$name.out actual=$tmp/out
  [ $rc -eq 0 ] || { echo "FAIL: expected exit status 0, got $rc"; cat "$tmp/stderr"; exit 1; }
fi
[ -s "$tmp/stdout" ] && { echo "FAIL: unexpected standard output"; cat "$tmp/stdout"; exit 1; }
if [ "${UPDATE:-}" = 1 ]; then
  cp "$actual" "$expected"
  exit 0
fi
diff -u "$expected" "$actual" || { echo "FAIL: output differs from $dir/$expected"; exit 1; }
echo "ok: $name"
