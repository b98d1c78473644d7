#!/usr/bin/env bash
# check_modes_agree.sh TLC DIR
# Every rejected file of DIR (NAME.graph with NAME.err) is rejected alike by --emit=ir,
# --emit=c, --stats and -o: exit status 1, the same diagnostic, no output file. The recipe and
# its checks run before any mode differs, so a check never waits for the trainer to be built.
set -u
tlc=$1 dir=$2
cd "$dir" || exit 2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
for err in *.err; do
  name=${err%.err}
  args=$(sed -n 's/^# args: //p' "$name.graph" | head -n 1)
  for mode in --emit=ir --emit=c --stats -o; do
    out=$tmp/$name.out
    rm -f "$out"
    # shellcheck disable=SC2086
    if [ "$mode" = -o ]; then "$tlc" "$name.graph" $args -o "$out" 2> "$tmp/stderr" > /dev/null
    else "$tlc" "$name.graph" $args "$mode" 2> "$tmp/stderr" > /dev/null; fi
    rc=$?
    [ $rc -eq 1 ] || { echo "FAIL: $name: $mode exits with $rc, not 1"; fail=1; }
    [ -e "$out" ] && { echo "FAIL: $name: $mode wrote an output file"; fail=1; }
    if [ "$mode" = --emit=ir ]; then cp "$tmp/stderr" "$tmp/expected"
    else diff -u "$tmp/expected" "$tmp/stderr" > /dev/null || { echo "FAIL: $name: $mode says otherwise than --emit=ir:"; diff -u "$tmp/expected" "$tmp/stderr"; fail=1; }; fi
  done
done
[ $fail -eq 0 ] && echo "ok: every rejected file is rejected alike by --emit=ir, --emit=c, --stats and -o"
exit $fail
