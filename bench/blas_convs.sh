#!/usr/bin/env bash
# Issue 14, item 1: the generated convolution and linear kernels of a workload's training step
# against the same work through OpenBLAS and BLIS (bench/blas_convs.c), one thread each.
# Prints a markdown table, a row per kernel, then the totals.
#
#   bench/blas_convs.sh WORKLOAD [REPS]    (WORKLOAD: as bench/cpu_models.sh's)
# Needs a built tlc (tools/build.sh); a library that is not installed is left out (Debian:
# libopenblas0-pthread, libblis4).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/bench/workloads.sh"
workload "$1"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The step is built and run on generated values, never trained: no images are read.
workload_graph "$tmp/bench.graph" "$tmp/images"
echo "$1 (batch $batch, ${size}x$size), tlc $(git -C "$root" rev-parse --short HEAD), $(date -u +%F)"
"$root/build/bench/blas_convs" "$tmp/scratch" "$tmp/bench.graph" "${2:-1}"
