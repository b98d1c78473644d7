#!/usr/bin/env bash
# check_zoo.sh TLC ZOO_DIR GRAPH KEYS REF [--set ...]
# Checks a zoo model against torchvision (tests/zoo/make_reference.py wrote the oracle):
# the state_dict keys and shapes in order, the parameter count exactly, and the forward
# multiply-accumulates within 1%.
set -u
tlc=$1 zoo=$2 graph=$3 keys=$4 ref=$5
shift 5
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$tlc" "$graph" --emit=params "$@" > "$tmp/keys" || exit 1
diff -u "$zoo/$keys.keys" "$tmp/keys" > "$tmp/diff" || { echo "FAIL: names differ from torchvision"; head -40 "$tmp/diff"; exit 1; }
"$tlc" "$graph" --stats "$@" > "$tmp/stats" || exit 1
want_params=$(sed -n "s/^$ref params=\([0-9]*\) .*/\1/p" "$zoo/reference.txt")
want_macs=$(sed -n "s/^$ref .*macs=\([0-9]*\).*/\1/p" "$zoo/reference.txt")
got_params=$(sed -n 's/^parameters *\([0-9,]*\) .*/\1/p' "$tmp/stats" | tr -d ,)
got_macs=$(sed -n 's/^forward MACs *\([0-9,]*\) .*/\1/p' "$tmp/stats" | tr -d ,)
[ -n "$want_params" ] && [ -n "$got_params" ] || { echo "FAIL: no reference or no output for $ref"; exit 1; }
[ "$got_params" = "$want_params" ] || { echo "FAIL: $ref has $got_params parameters, torchvision $want_params"; exit 1; }
awk -v g="$got_macs" -v w="$want_macs" 'BEGIN { d = (g - w) / w; if (d < 0) d = -d; exit !(d <= 0.01) }' ||
  { echo "FAIL: $ref forward MACs $got_macs, torchvision $want_macs (more than 1% apart)"; exit 1; }
echo "ok: $ref: $got_params parameters, $got_macs MACs, $(wc -l < "$tmp/keys") state_dict keys as torchvision"
