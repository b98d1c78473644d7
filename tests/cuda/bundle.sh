#!/usr/bin/env bash
# bundle.sh TLC SCRATCH: a trainer carries its GPU kernels. The bundle is in its ELF section
# .tlc_bundle, decodes with the official flatc against runtime/bundle.fbs, agrees with what
# `tlc --emit=cuda` shows, `tlc inspect` lists and dumps it, a damaged bundle is refused,
# and without a GPU the trainer trains on the CPU or, asked for CUDA, says why it cannot.
# Exit 77 (skipped) when this machine has no NVRTC to build GPU kernels with.
set -u
tlc=$1 dir=$2
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/tests/check.sh"
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 2
export TLC_CACHE_DIR=$dir/cache

graph=$root/examples/fashion_cnn.graph
"$tlc" "$graph" --set batch=16 --set epochs=1 -o train 2> build.txt || { cat build.txt; exit 1; }
if grep -q "will run on the CPU only" build.txt; then cat build.txt; exit 77; fi
check "build is quiet" test ! -s build.txt
"$tlc" "$graph" --set batch=16 --emit=cuda > kernels.cu

# The official FlatBuffers reader decodes the section.
check "section present" objcopy -O binary --only-section=.tlc_bundle train bundle.bin
check "flatc decodes it" flatc --json --strict-json --raw-binary -o . "$root/runtime/bundle.fbs" -- bundle.bin
check "it agrees with --emit=cuda" python3 - kernels.cu bundle.json <<'PY'
import json, re, sys
cuda = open(sys.argv[1]).read()
b = json.load(open(sys.argv[2]))
names = re.findall(r'__global__ void __launch_bounds__\(\d+\) (\w+)\(', cuda)
assert [f['name'] for f in b['functions']] == names, 'functions differ from --emit=cuda'
assert b['arch'] == 'sm_90' and b['block'] == 256 and b['version'] == 2
for f in b['functions']:
    assert f['source'] in cuda, f['name'] + ': source differs from --emit=cuda'
assert all(0 <= l.get('function', 0) < len(names) and l['grid'] > 0 and 32 <= l['block'] <= 1024 for l in b['launches'])  # flatc omits zeros
assert len(b['launches']) >= len(names) and '.entry' in b['ptx'] and len(b['cubin']) > 1000
PY

# tlc inspect: the list, one kernel's source and PTX, and its errors.
check "inspect lists" "$tlc" inspect train > list.txt
check "list names every launch" test "$(grep -c ' features\.\| classifier\.\| loss\| sgd\| adam' list.txt)" -gt 10
first=$(grep -o -m1 'k[0-9]*_conv2d_[a-z0-9_]*' list.txt)
check "inspect prints a kernel" sh -c "'$tlc' inspect train $first | grep -q '__global__ void __launch_bounds__([0-9]*) $first('"
check "inspect prints its PTX" sh -c "'$tlc' inspect train $first --ptx | grep -q '^.visible .entry $first('"
fails_with "unknown kernel" 1 "has no kernel 'k0_nothing'" "$tlc" inspect train k0_nothing
fails_with "not an ELF" 1 "not a 64-bit ELF executable" "$tlc" inspect "$graph"
fails_with "no bundle" 1 "has no GPU kernels" "$tlc" inspect "$(command -v ls)"
# Damage the bundle inside a copy of the trainer: refused, never a crash.
python3 - train damaged <<'PY'
import struct, sys
data = bytearray(open(sys.argv[1], 'rb').read())
shoff, = struct.unpack_from('<Q', data, 0x28)
shnum, shstrndx = struct.unpack_from('<HH', data, 0x3c)
strtab = struct.unpack_from('<Q', data, shoff + shstrndx * 64 + 24)[0]
for i in range(shnum):
    name, = struct.unpack_from('<I', data, shoff + i * 64)
    if data[strtab + name:strtab + name + 12] == b'.tlc_bundle\0':
        off, = struct.unpack_from('<Q', data, shoff + i * 64 + 24)
        data[off:off + 8] = b'\xff' * 8          # the root offset points outside the buffer
open(sys.argv[2], 'wb').write(data)
PY
chmod +x damaged
fails_with "damaged bundle (inspect)" 1 "damaged" "$tlc" inspect damaged

# Without a GPU: the default trains on the CPU and says why; --device cuda is an error.
if ! ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1'; then
  check "auto falls back to the CPU" sh -c "./train --limit 64 --out run | grep -q '^device: cpu (no NVIDIA driver'"
  fails_with "--device cuda without a driver" 1 "--device cuda: no NVIDIA driver on this machine" \
    ./train --device cuda --limit 64 --out run2
  fails_with "--device cuda, damaged bundle" 1 "--device cuda:" ./damaged --device cuda --limit 64 --out run3
fi
fails_with "bad --device" 2 "--device expects cpu, cuda or auto" ./train --device tpu

check_report bundle
