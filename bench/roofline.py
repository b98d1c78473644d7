#!/usr/bin/env python3
"""A roofline estimate of a training step on an H200, without a GPU.

Builds a trainer for GRAPH, runs one training step on the CUDA emulator with its per-launch
counters on (TLC_EMU_PROFILE, docs/emulator.md: the 32-byte sectors each warp-wide access
touches, and the tensor-core mma instructions), and puts beside each kernel the least it must
move and compute (tlc --stats=kernels: each buffer once, the FLOPs of its math). Each kernel's
predicted time is the longest of bytes / bandwidth, tensor-core FLOPs / bf16 peak and FP32
FLOPs / FP32 peak, each ceiling cut to blocks/132 when the launch has fewer blocks than the
H200 has SMs (bound "memory/sm"); the step's is their sum (launch gaps excluded: they are
listed apart).

Caches are not modelled: a sector two blocks read counts twice (L2 would serve the second on
the GPU), so a product's tiles read again by other blocks are charged at DRAM speed. That makes
the measured column an upper bound on bytes, and the minimum a lower bound.

usage: bench/roofline.py GRAPH [--set NAME=VALUE ...] --batch B[,B2] [--at N] [--photos]
                         [--tlc build/tlc] [--emulator build/tests/emulator/driver] [--check]
  --batch B      the batch the emulator runs; B,B2 runs two and
                 extrapolates every count linearly in the batch to --at N; one batch
                 and --at N: each kernel's counts scale as its minimum bytes and FLOPs
  --photos       train on a folder of synthetic photos (as bench/gpu.sh), for 3-channel models
  --sample-blocks N  log the accesses of at most N blocks of each launch, evenly spread, and
                 scale (TLC_EMU_PROFILE_BLOCKS; default 0: all); the large models need it
  --check        CI: the counters against independent counts (exit 1 on a mismatch)
  --keep DIR     work in DIR and keep it; with --reuse, take the emulator's counts found there
"""
import argparse
import csv
import io
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BANDWIDTH = 4.3e12       # bytes/s, measured on an H200 (HBM3e; 4.8 nominal)
TENSOR_FLOPS = 790e12    # bf16 dense tensor-core FLOP/s
FP32_FLOPS = 60e12       # FP32 FLOP/s on CUDA cores
SMS = 132                # streaming multiprocessors: a launch of fewer blocks leaves the rest idle
MMA_FLOPS = 2 * 16 * 8 * 16   # one mma.m16n8k16
LAUNCH_S = 2e-6          # one kernel launch without CUDA graphs


def run(argv, env=None, what=None):
    p = subprocess.run(argv, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f'{what or argv[0]} failed ({p.returncode}):\n{p.stdout[-2000:]}\n{p.stderr[-4000:]}')
    return p.stdout + p.stderr if what == 'tlc -o' else p.stdout


def table(text):
    return list(csv.DictReader(io.StringIO(text), delimiter='\t'))


def write_png(path, width, height, rgb):
    """An 8-bit RGB PNG file (no library needed: the benchmark runs where only Python is)."""
    rows = b''.join(b'\0' + rgb[y * width * 3:(y + 1) * width * 3] for y in range(height))
    chunk = lambda kind, data: struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))
    with open(path, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)) +
                chunk(b'IDAT', zlib.compress(rows)) + chunk(b'IEND', b''))


def make_photos(folder, n):
    """n photo-sized images of noise in 10 classes (train/, and val/ with one per class)."""
    rng = random.Random(0)
    for k in range(n):
        for split in ('train', 'val') if k < 10 else ('train',):
            d = f'{folder}/{split}/class{k % 10}'
            os.makedirs(d, exist_ok=True)
            write_png(f'{d}/{k:05d}.png', 320, 240, bytes(rng.getrandbits(8) for _ in range(320 * 240 * 3)))


class Model:
    def __init__(self, args, work):
        self.args, self.work = args, work
        self.sets = [a for s in args.set for a in ('--set', s)]
        if args.photos:
            make_photos(f'{work}/photos', 20)
            self.sets += ['--set', f'data=image_folder("{work}/photos")']

    def kernels(self, batch):
        """tlc --stats=kernels at this batch: the training step's launches."""
        rows = table(run([self.args.tlc, self.args.graph, *self.sets, '--set', f'batch={batch}', '--stats=kernels'],
                         what='tlc --stats=kernels'))
        return [r for r in rows if r['step'] == 'train']

    def measure(self, batch):
        """The emulator's counts for the first training step's launches at this batch."""
        trainer = f'{self.work}/train{batch}'
        if self.args.reuse and os.path.exists(f'{trainer}.profile.tsv'):
            return table(open(f'{trainer}.profile.tsv').read())
        built = run([self.args.tlc, self.args.graph, *self.sets, '--set', f'batch={batch}', '-o', trainer],
                    what='tlc -o')
        if 'will run on the CPU only' in built:   # no NVRTC here: no GPU kernels to count
            print(built.strip())
            sys.exit(77)
        return self.profile(trainer, batch)

    def profile(self, trainer, batch, source=None):
        out = f'{trainer}.planted.tsv' if source else f'{trainer}.profile.tsv'
        env = dict(os.environ, LD_LIBRARY_PATH=self.args.emulator, TLC_EMU_PROFILE=out,
                   TLC_EMU_PROFILE_BLOCKS=str(self.args.sample_blocks))
        if source:
            env['TLC_EMU_SOURCE'] = source
        run([trainer, '--device', 'cuda', '--epochs', '1', '--limit', str(batch), '--out', f'{trainer}.run'], env,
            what=f'the trainer on the emulator ({trainer})')
        return table(open(out).read())


def first_step(profile, kernels):
    """The profile's rows of the first training step: where the launches run the step's functions in order."""
    want = [k['function'] for k in kernels]
    names = [p['kernel'] for p in profile]
    for i in range(len(names) - len(want) + 1):
        if names[i:i + len(want)] == want:
            return profile[i:i + len(want)]
    sys.exit('the emulator ran no launch sequence that is the training step of tlc --stats=kernels')


COUNTS = ('sectors_read', 'sectors_written', 'bytes_read', 'bytes_written', 'mma')


def extrapolate(measured, batches, at, kernels_at, kernels_measured):
    """Each count linear in the batch through the two measured points, at batch `at`. From one
    batch, each kernel keeps the ratio of its counts to its minimum: bytes scale as its minimum
    bytes, mma instructions as its FLOPs."""
    if len(batches) == 1:
        out = []
        for r, k, m in zip(measured[0], kernels_at, kernels_measured[0]):
            by_bytes = float(k['min_bytes']) / max(1.0, float(m['min_bytes']))
            by_flops = float(k['flops']) / max(1.0, float(m['flops']))
            out.append({c: float(r[c]) * (by_flops if c == 'mma' else by_bytes) for c in COUNTS})
        return out
    (b1, b2), out = batches, []
    for r1, r2 in zip(*measured):
        out.append({c: float(r1[c]) + (float(r2[c]) - float(r1[c])) * (at - b1) / (b2 - b1) for c in COUNTS})
    return out


def op_of(what):
    return what.split(': ', 1)[1].split(' ')[0] if ': ' in what else what


def roofline(kernel, counts):
    tc = kernel['tensor_cores'] == '1'
    moved = 32 * (counts['sectors_read'] + counts['sectors_written'])
    tc_flops = MMA_FLOPS * counts['mma']
    fp32 = 0 if tc else float(kernel['flops'])
    # A launch of fewer blocks than SMs gets only their share of each ceiling (the minimum
    # column assumes a layout that fills the GPU).
    share = min(1.0, int(kernel['blocks']) / SMS)
    times = {'memory': moved / BANDWIDTH / share, 'tensor': tc_flops / TENSOR_FLOPS / share,
             'fp32': fp32 / FP32_FLOPS / share}
    least = float(kernel['min_bytes'])
    flops = float(kernel['flops'])
    least_times = {'memory': least / BANDWIDTH, 'tensor' if tc else 'fp32': flops / (TENSOR_FLOPS if tc else FP32_FLOPS)}
    bound = max(times, key=times.get)
    if share < 1:
        bound += '/sm'
    least_bound = max(least_times, key=least_times.get)
    return dict(moved=moved, tc_flops=tc_flops, fp32=fp32, time=max(times.values()), bound=bound, least=least, flops=flops,
                least_time=least_times[least_bound], least_bound=least_bound, op=op_of(kernel['what']))


def report(kernels, counts, at, out):
    rows = [roofline(k, c) for k, c in zip(kernels, counts)]
    p = lambda *a: print(*a, file=out)
    p(f'{"kernel":44} {"op":22} {"blocks":>7} {"MB":>9} {"min MB":>9} {"TC GF":>8} {"FP32 GF":>8} {"us":>9} {"bound":>10}'
      f' {"min us":>8} {"min bound":>9} {"x min":>6}')
    for k, r in zip(kernels, rows):
        ratio = r['time'] / r['least_time'] if r['least_time'] else 0
        p(f'{k["kernel"][:44]:44} {r["op"][:22]:22} {int(k["blocks"]):7} {r["moved"] / 1e6:9.2f} {r["least"] / 1e6:9.2f} '
          f'{r["tc_flops"] / 1e9:8.2f} {r["fp32"] / 1e9:8.2f} {r["time"] * 1e6:9.1f} {r["bound"]:>10} '
          f'{r["least_time"] * 1e6:8.1f} {r["least_bound"]:>9} {ratio:6.1f}')
    step = sum(r['time'] for r in rows)
    least = sum(r['least_time'] for r in rows)
    launches = len(rows) * LAUNCH_S
    p(f'\nstep at batch {at}: {len(rows)} kernels, predicted {step * 1e3:.2f} ms '
      f'({at / step:,.0f} images/s); the minimum {least * 1e3:.2f} ms ({at / least:,.0f} images/s); '
      f'launches add ~{launches * 1e3:.2f} ms at {LAUNCH_S * 1e6:.0f} us each without CUDA graphs')
    by_bound = {}
    for r in rows:
        by_bound[r['bound']] = by_bound.get(r['bound'], 0) + r['time']
    p('predicted time by bound: ' + ', '.join(f'{b} {t * 1e3:.2f} ms ({t / step:.0%})' for b, t in
                                              sorted(by_bound.items(), key=lambda x: -x[1])))
    for label, ops in (('forward convolutions', ('conv2d',)), ('all convolutions (forward, dx, dw)',
                                                               ('conv2d', 'conv2d_dx', 'conv2d_dw'))):
        sel = [r for r in rows if r['op'] in ops]
        if sel:
            t, f = sum(r['time'] for r in sel), sum(r['flops'] for r in sel)
            p(f'{label}: {f / 1e9:.1f} GFLOP in {t * 1e3:.2f} ms predicted = {f / t / 1e12:.1f} TFLOP/s, '
              f'{f / t / TENSOR_FLOPS:.1%} of the bf16 peak ({sum(r["time"] for r in sel) / step:.0%} of the step)')
    return rows


def check(model, kernels, counts, batch):
    """CI: the emulator's counts against counts made another way."""
    failures, checked = [], 0
    for k, c in zip(kernels, counts):
        op = op_of(k['what'])
        moved = 32 * (c['sectors_read'] + c['sectors_written'])
        if op in ('relu_grad', 'relu6_grad', 'add'):   # every buffer read or written once, 16 bytes a thread
            checked += 1
            if moved != int(k['min_bytes']) or c['bytes_read'] + c['bytes_written'] != int(k['min_bytes']):
                failures.append(f'{k["kernel"]}: {moved:.0f} bytes in sectors, {c["bytes_read"] + c["bytes_written"]:.0f}'
                                f' accessed, the buffers hold {k["min_bytes"]}')
        if k['tensor_cores'] == '1':   # the mma instructions cover the product (tiles pad it: more is fine)
            checked += 1
            if MMA_FLOPS * c['mma'] < float(k['flops']):
                failures.append(f'{k["kernel"]}: {c["mma"]:.0f} mma instructions for {k["flops"]} FLOPs')
        elif c['mma']:
            failures.append(f'{k["kernel"]}: mma instructions in a kernel not on tensor cores')
    print(f'check: {checked} counts compared with the buffers and FLOPs tlc states')
    # A planted strided access: the first relu_grad kernel's threads take their pieces of four
    # elements 1/32 of the kernel apart instead of side by side, so each warp-wide access
    # touches 32 sectors instead of 16 (16-byte pieces of float) or 8 (8-byte pieces of bf16:
    # activations under precision "bf16"), the same bytes: its sectors must double, or
    # quadruple.
    victim = next((k for k in kernels if op_of(k['what']) == 'relu_grad' and int(k['blocks']) * 256 % 32 == 0), None)
    if not victim:
        failures.append('no relu_grad kernel to plant a strided access in')
    else:
        source = run([model.args.tlc, model.args.graph, *model.sets, '--set', f'batch={batch}', '--emit=cuda'])
        head, sep, rest = source.partition(f' {victim["function"]}(')
        line = '  piece = (((int64_t)blockIdx.x * 256) + (int64_t)threadIdx.x);'
        pieces = int(victim['blocks']) * 256
        planted = (f'  piece = (((int64_t)blockIdx.x * 256) + (int64_t)threadIdx.x) % 32 * {pieces // 32} + '
                   f'(((int64_t)blockIdx.x * 256) + (int64_t)threadIdx.x) / 32;')
        body = rest.split('\n}\n', 1)[0]
        factor = 2 if 'float4' in body and 'uint2' not in body else 4 if 'uint2' in body and 'float4' not in body else 0
        if line not in rest or not factor:
            failures.append(f'{victim["function"]} has no line "{line.strip()}" to plant in, or mixes float and bf16')
        else:
            path = f'{model.work}/planted.cu'
            with open(path, 'w') as f:
                f.write(head + sep + rest.replace(line, planted, 1))
            prof = first_step(model.profile(f'{model.work}/train{batch}', batch, source=path), kernels)
            i = kernels.index(victim)
            before = counts[i]['sectors_read'] + counts[i]['sectors_written']
            after = float(prof[i]['sectors_read']) + float(prof[i]['sectors_written'])
            print(f'planted strided access in {victim["kernel"]}: {before:.0f} sectors -> {after:.0f}')
            if after != factor * before:
                failures.append(f'the planted strided access in {victim["kernel"]} moved {after:.0f} sectors, '
                                f'not {factor} times {before:.0f}')
    for f in failures:
        print('FAIL:', f)
    return not failures


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('graph')
    ap.add_argument('--set', action='append', default=[])
    ap.add_argument('--batch', required=True)
    ap.add_argument('--at', type=int)
    ap.add_argument('--photos', action='store_true')
    ap.add_argument('--tlc', default=f'{ROOT}/build/tlc')
    ap.add_argument('--emulator', default=f'{ROOT}/build/tests/emulator/driver')
    ap.add_argument('--check', action='store_true')
    ap.add_argument('--sample-blocks', type=int, default=0)
    ap.add_argument('--keep', help='work in this directory and keep it')
    ap.add_argument('--reuse', action='store_true', help='with --keep: take the counts of an earlier run there')
    args = ap.parse_args()
    work = args.keep or tempfile.mkdtemp(prefix='roofline-')
    os.makedirs(work, exist_ok=True)
    try:
        model = Model(args, work)
        batches = [int(b) for b in args.batch.split(',')]
        if len(batches) > 2 or (len(batches) == 2 and batches[0] == batches[1]):
            sys.exit('--batch takes one batch or two different ones')
        at = args.at or batches[-1]
        kernels = model.kernels(at)
        measured, kernels_measured = [], []
        for b in batches:
            ks = model.kernels(b)
            if [k['kernel'] for k in ks] != [k['kernel'] for k in kernels]:
                sys.exit(f'the training step at batch {b} has other kernels than at batch {at}: cannot extrapolate')
            measured.append(first_step(model.measure(b), ks))
            kernels_measured.append(ks)
        counts = extrapolate(measured, batches, at, kernels, kernels_measured)
        how = f'measured at batch {batches[0]}' if len(batches) == 1 and at == batches[0] else \
            f'measured at batch {batches[0]}, scaled to {at} by each kernel\'s minimum bytes and FLOPs' \
            if len(batches) == 1 else \
            f'measured at batches {batches[0]} and {batches[1]}, extrapolated linearly to {at}'
        if args.sample_blocks:
            how += f', accesses of at most {args.sample_blocks} blocks a launch logged and scaled'
        print(f'roofline of {args.graph} {" ".join(args.set)}: {how}')
        print(f'H200 ceilings: {BANDWIDTH / 1e12:.1f} TB/s, {TENSOR_FLOPS / 1e12:.0f} TFLOP/s bf16 tensor cores, '
              f'{FP32_FLOPS / 1e12:.0f} TFLOP/s FP32, {SMS} SMs; MB = 32-byte sectors the warps touch (no cache), '
              f'min = each buffer once\n')
        report(kernels, counts, at, sys.stdout)
        if args.check and not check(model, kernels, counts, batches[0]):
            sys.exit(1)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    main()
