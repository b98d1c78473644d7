#!/usr/bin/env bash
# resources.sh TLC GRAPH...: the compiler's resource report (resources.py: ptxas -v on tlc's
# PTX for sm_90) for each graph must show no spill and the tensor-core instructions in every
# kernel documented as running on tensor cores; then, on the first graph, each planted bug
# (one tensor-core kernel limited to 32 registers, or its mma instructions deleted) must make
# the check fail with its message. Exit 77 (skipped) without NVRTC or ptxas.
set -u
tlc=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
status=0
for graph in "$@"; do
  python3 "$here/resources.py" "$tlc" "$graph" --quiet
  rc=$?
  [ $rc -eq 77 ] && exit 77
  [ $rc -eq 0 ] || status=1
done
plant() {   # plant KIND MESSAGE: the check fails, saying MESSAGE
  local out
  out=$(python3 "$here/resources.py" "$tlc" "$1" --plant "$2" --quiet 2>&1)
  if [ $? -eq 1 ] && grep -q "$3" <<< "$out"; then
    echo "ok: the planted $2 is caught"
  else
    echo "FAIL: the planted $2 was not caught as '$3':"
    echo "$out"
    status=1
  fi
}
plant "$1" spill "^FAIL: .* spills ("
plant "$1" mma "^FAIL: .* runs on tensor cores by its comment but its PTX has no mma.sync"
exit $status
