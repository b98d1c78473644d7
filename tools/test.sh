#!/usr/bin/env bash
# The whole test suite on a fresh machine: install, build, run ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
tools/build.sh
ctest --test-dir build --output-on-failure -j "$(nproc)" "$@"
