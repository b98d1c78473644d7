#!/usr/bin/env bash
# check_bounded.sh TLC SCRATCH: .graph files made to take unbounded time or memory each end
# within 5 seconds and 700 MB of address space, compiled or stopped by a limit that names
# itself (docs/language.md, Limits). Before the limits: a chain of lets that each use the
# previous one twice took gigabytes (a let was evaluated again at every use), nested repeats
# with empty bodies never ended, 60,000 lets took 7 s (each compared with every earlier one).
set -u
tlc=$1 dir=$2
. "$(cd "$(dirname "$0")" && pwd)/check.sh"
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 2

python3 - <<'PY'
tail = 'model m(input = [1, 8, 8]) {\n  flatten\n  linear(2)\n}\n'
def write(name, lines):
    open(name + '.graph', 'w').write('\n'.join(lines) + '\n' + tail)
write('let_chain', ['let a0 = 1'] + ['let a%d = a%d + a%d - a%d' % (i, i - 1, i - 1, i - 1) for i in range(1, 40)])
write('list_chain', ['let a0 = [1]'] + ['let a%d = [a%d, a%d]' % (i, i - 1, i - 1) for i in range(1, 60)])
write('comprehension', ['let l0 = [0, 0, 0, 0, 0]'] + ['let l%d = l%d + l%d' % (i, i - 1, i - 1) for i in range(1, 11)] +
      ['let ys = [len(l10) + len(l10) for x in l10]'])
write('many_lets', ['let v%d = %d' % (i, i) for i in range(50000)])
write('long_sum', ['let a = ' + '+'.join(['1'] * 450000)])
write('long_list', ['let a = [' + ','.join(['1'] * 450000) + ']'])
open('nested_repeats.graph', 'w').write(
    'model m(input = [1, 8, 8]) {\n  repeat 100000 { repeat 100000 { repeat 100000 { } } }\n  flatten\n  linear(2)\n}\n')
open('equal_chain.graph', 'w').write('\n'.join(['let a0 = [1]'] + ['let a%d = [a%d, a%d]' % (i, i - 1, i - 1) for i in range(1, 60)]) +
    '\n' + tail.replace('linear(2)', 'linear(a59 == a59 ? 2 : 3)'))
open('too_large.graph', 'w').write('# ' + 'x' * (1 << 20) + '\n' + tail)
PY

# run NAME: tlc --stats on NAME.graph within the bounds; its status and stderr stay in rc and err.txt
run() {
  (ulimit -v 700000; timeout 5 "$tlc" "$1.graph" --stats > out.txt 2> err.txt)
  rc=$?
}
for ok in let_chain list_chain comprehension many_lets long_sum long_list; do
  run $ok
  check "$ok compiles within the bounds (status $rc)" test $rc -eq 0
done
for limit in "nested_repeats:this file takes too much work to evaluate" "equal_chain:this file takes too much work to evaluate" \
             "too_large:is too large for a .graph file"; do
  name=${limit%%:*} text=${limit#*:}
  run "$name"
  check "$name stops at its limit (status $rc)" sh -c "test $rc -eq 1 && grep -qF '$text' err.txt"
done
check_report bounded
