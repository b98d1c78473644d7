#!/usr/bin/env bash
# check_help.sh TLC: `tlc --help` says what a new user needs first: that -o builds a trainer,
# and every stage --emit knows (the list the unknown-stage error gives, so the two cannot drift).
set -u
tlc=$1
cd "$(mktemp -d)" || exit 2
. "$(dirname "$0")/check.sh"
"$tlc" --help > help.txt
check "--help: exit status 0" test $? -eq 0
check "--help: -o builds a trainer" grep -qE -- '-o TRAINER .*build TRAINER, a standalone executable' help.txt
echo 'model m(input = [1, 4, 4]) { flatten; linear(2) }' > m.graph
"$tlc" m.graph --emit=nosuch 2> err.txt
stages=$(sed -n "s/.*(known: \(.*\))$/\1/p" err.txt | tr -d ,)
check "the unknown stage's error lists the stages" test -n "$stages"
for s in $stages; do
  check "--help lists --emit=$s" grep -qE "^ +(--emit=STAGE +)?$s +[a-z]" help.txt
done
fails_with "a misspelt stage is answered" 1 "unknown stage '--emit=fused_ir' (did you mean 'fused-ir'? known:" \
  "$tlc" m.graph --emit=fused_ir
fails_with "a misspelt option is answered" 1 "unknown option '--stat' (did you mean '--stats'?)" "$tlc" m.graph --stat
fails_with "a trainer's flag given to tlc" 1 "unknown option '--epochs' ('epochs' is a setting of the experiment: --set epochs=VALUE)" \
  "$tlc" m.graph --epochs 3
check_report help
