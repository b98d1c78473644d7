# trainer_test.sh: what the emulator's trainer tests share (sourced after tests/check.sh). They
# train on Fashion-MNIST and need a trainer with GPU kernels: without either they are skipped
# (exit 77).
fashion=/usr/share/datasets/fashion-mnist

need_fashion_mnist() {
  if ! [ -e "$fashion/train-images-idx3-ubyte.gz" ] && ! [ -e "$fashion/train-images-idx3-ubyte" ]; then
    echo "SKIP: no Fashion-MNIST in $fashion (Debian: dataset-fashion-mnist)"
    exit 77
  fi
}

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
