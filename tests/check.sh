# check.sh: the assertions of the shell tests (sourced), the shell's tests/runtime/check.h.
# Each records a failure with its name and goes on, so one run reports every broken case.
failed=0 passed=0
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)   # the repository
py=/usr/bin/python3   # Debian's, with the torch and torchvision the oracles need

fresh_dir() {   # fresh_dir DIR: DIR emptied and made the working directory
  rm -rf "$1" && mkdir -p "$1" && cd "$1" || exit 2
}

self_contained() {   # self_contained BINARY: it needs no library but the C library's own parts
  local extra
  extra=$(ldd "$1" | grep -v -E 'linux-vdso|libc\.so|libm\.so|ld-linux' || true)
  [ -z "$extra" ] || { echo "$extra"; false; }
}

check() {   # check NAME COMMAND...: the command must succeed
  local name=$1; shift
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $name"; fi
}

fails_with() {   # fails_with NAME STATUS TEXT COMMAND...: that exit status and TEXT on stderr
  local name=$1 want=$2 text=$3; shift 3
  "$@" > out.txt 2> err.txt
  local rc=$?
  if [ $rc -eq "$want" ] && grep -qF -- "$text" err.txt; then passed=$((passed + 1));
  else failed=$((failed + 1)); echo "FAIL: $name (status $rc)"; cat err.txt; fi
}

check_report() {   # check_report NAME: the closing line, and the script's exit status
  echo "$1: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}

fashion_mnist=/usr/share/datasets/fashion-mnist
need_fashion_mnist() {   # exit 77 (skipped) without Fashion-MNIST, which the emulator tests train on
  if ! [ -e "$fashion_mnist/train-images-idx3-ubyte.gz" ] && ! [ -e "$fashion_mnist/train-images-idx3-ubyte" ]; then
    echo "SKIP: no Fashion-MNIST in $fashion_mnist (Debian: dataset-fashion-mnist)"
    exit 77
  fi
}
