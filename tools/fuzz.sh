#!/usr/bin/env bash
# tools/fuzz.sh HARNESS MINUTES [OUT]: runs AFL++ (the distribution's afl++ package) on one
# harness for MINUTES minutes, starting from its committed corpus tests/fuzz/HARNESS/, and
# prints what it found (docs/fuzzing.md). HARNESS is one of:
#   graph        tlc on a .graph file (--stats: the front end, the training step, the memory plan)
#   inspect      `tlc inspect` on a trainer (an ELF file carrying a kernel bundle)
#   checkpoint safetensors bundle image idx cifar10 flowers102
#                the runtime's readers, tests/fuzz/fuzz_HARNESS.c
# Everything is built with afl-clang-fast and AddressSanitizer + UBSan in build-afl/; the run
# goes to OUT (default fuzz-out/HARNESS), at the lowest priority, on no fixed core (other work
# shares the machine). Then, to grow the corpus with what the run found:
#   tools/fuzz.sh --minimize HARNESS [OUT]   afl-cmin of OUT's queue and the corpus into
#                                             OUT/cmin, reproducers (bug-*, found-*) kept; review,
#                                             then copy its afl-* files into tests/fuzz/HARNESS/
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

usage() {
  echo "usage: tools/fuzz.sh HARNESS MINUTES [OUT] | tools/fuzz.sh --minimize HARNESS [OUT]" >&2
  echo "harnesses: graph inspect checkpoint safetensors bundle image idx cifar10 flowers102" >&2
  exit 2
}
minimize=false
if [ "${1:-}" = --minimize ]; then
  minimize=true
  shift
  [ $# -ge 1 ] || usage
  harness=$1 out=${2:-fuzz-out/$1}
else
  [ $# -ge 2 ] || usage
  harness=$1 minutes=$2 out=${3:-fuzz-out/$1}
  [[ $minutes =~ ^[0-9]+$ ]] && [ "$minutes" -gt 0 ] || usage
fi
case $harness in
  graph | inspect) target=tlc_sanitized ;;
  checkpoint | safetensors | bundle | image | idx | cifar10 | flowers102) target=fuzz_$harness ;;
  *) usage ;;
esac
if ! command -v afl-fuzz >/dev/null || ! command -v afl-clang-fast >/dev/null; then
  echo "tools/fuzz.sh: AFL++ is not installed; install the distribution's afl++ (apt-get install afl++)" >&2
  exit 2
fi

# The harness under AFL++'s instrumentation, and the command line AFL++ runs (@@: the input).
# One build at a time: two runs started together would otherwise compile libtlcrt together.
mkdir -p build-afl
exec 9>build-afl/.lock
flock 9
if [ ! -f build-afl/CMakeCache.txt ]; then
  CC=afl-clang-fast CXX=afl-clang-fast++ cmake -S . -B build-afl -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
nice -n 19 cmake --build build-afl --target "$target" -j "$(nproc)" >/dev/null
exec 9>&-
case $harness in
  graph) cmd=("$root/build-afl/tests/tlc_sanitized" @@ --stats) ;;
  inspect) cmd=("$root/build-afl/tests/tlc_sanitized" inspect @@) ;;
  *) cmd=("$root/build-afl/tests/fuzz/fuzz_$harness" @@) ;;
esac
# A run longer than this is a hang: the replay allows 10 s of CPU, the .graph limits promise
# a couple of seconds without the sanitizers.
timeout_ms=10000

export AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1
# An allocation over 1 GiB, or a process past 2 GiB, is a crash, as in the replay
# (tests/fuzz/fuzz_main.c): AFL++'s own -m cannot bound a program under AddressSanitizer.
export ASAN_OPTIONS=abort_on_error=1:symbolize=0:detect_leaks=0:max_allocation_size_mb=1024:hard_rss_limit_mb=2048
export UBSAN_OPTIONS=abort_on_error=1:halt_on_error=1:symbolize=0

if $minimize; then
  [ -d "$out/default/queue" ] || { echo "tools/fuzz.sh: no AFL++ run in $out" >&2; exit 2; }
  rm -rf "$out/cmin" "$out/cmin-in"
  mkdir -p "$out/cmin-in"
  cp "$out"/default/queue/id:* "$out/cmin-in/" 2>/dev/null || true
  cp tests/fuzz/"$harness"/* "$out/cmin-in/"
  AFL_SKIP_BIN_CHECK=1 nice -n 19 afl-cmin -i "$out/cmin-in" -o "$out/cmin" -m none -t "$timeout_ms" -- "${cmd[@]}"
  # The reproducers of known bugs (bug-*, found-*) stay whatever their coverage; AFL++'s
  # names become afl-HASH (its content's), which no later run's can clash with.
  cp tests/fuzz/"$harness"/bug-* tests/fuzz/"$harness"/found-* "$out/cmin/" 2>/dev/null || true
  for f in "$out"/cmin/id:*; do
    [ -e "$f" ] || continue
    hash=$(sha1sum "$f" | cut -c1-12)
    mv "$f" "$out/cmin/afl-$hash"
  done
  echo "tools/fuzz.sh: $(ls "$out/cmin" | wc -l) files, $(du -cb "$out"/cmin/* | tail -1 | cut -f1) bytes in $out/cmin"
  exit 0
fi

dict=()
[ "$harness" = graph ] && dict=(-x tests/fuzz/graph.dict)
rm -rf "$out"
mkdir -p "$out/tmp"
echo "tools/fuzz.sh: AFL++ on $harness for $minutes min: ${cmd[*]}"
TMPDIR=$root/$out/tmp nice -n 19 afl-fuzz -i tests/fuzz/"$harness" -o "$out" -m none -t "$timeout_ms" \
  -V $((minutes * 60)) "${dict[@]}" -- "${cmd[@]}" >"$out/afl.log" 2>&1 || {
  tail -30 "$out/afl.log" >&2
  exit 1
}

stats=$out/default/fuzzer_stats
field() { sed -n "s/^$1 *: *//p" "$stats"; }
echo "tools/fuzz.sh: $harness: $(field run_time) s, $(field execs_done) executions ($(field execs_per_sec)/s)," \
  "$(field corpus_count) inputs in the queue ($(field corpus_found) new), $(field edges_found) edges" \
  "($(field bitmap_cvg) of the map), $(field saved_crashes) crashes, $(field saved_hangs) hangs"
for kind in crashes hangs; do
  for f in "$out"/default/$kind/id:*; do
    [ -e "$f" ] && echo "  $kind: $f"
  done
done
exit 0
