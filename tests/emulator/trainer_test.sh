# trainer_test.sh: what the emulator's trainer tests share (sourced after tests/check.sh, whose
# need_fashion_mnist they call first): a trainer built with its GPU kernels, or the test is
# skipped (exit 77) where tlc has no NVRTC to make them.
build_trainer() {   # build_trainer NAME TLC ARGS...: ./train from `TLC ARGS -o train`, with its GPU kernels
  local name=$1; shift
  if ! "$@" -o train > build.txt 2>&1; then
    cat build.txt
    echo "FAIL: tlc could not build the $name trainer"
    exit 1
  fi
  if grep -q "will run on the CPU only" build.txt; then
    cat build.txt
    exit 77
  fi
}
