#!/usr/bin/env python3
"""The compiler's resource report for every GPU kernel of a model: registers, spills, stack
and shared memory from `ptxas -v` on tlc's PTX, and whether each kernel whose comment says it
runs on bf16 tensor cores holds the instructions (mma.sync and ldmatrix) in its PTX.

usage: resources.py TLC GRAPH [--set NAME=VALUE ...] [--arch sm_90] [--ptxas PATH]
                    [--plant spill|mma] [--quiet]
Prints one line per kernel; exits 1 when a kernel spills or a tensor-core kernel lacks the
instructions, 77 when NVRTC or ptxas is missing (the check is skipped). --plant breaks one
tensor-core kernel on purpose (ptxas limited to 24 registers for it, or its mma instructions
deleted from the PTX) so that a test can see the check fail.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile


def run(argv, what):
    p = subprocess.run(argv, capture_output=True, text=True)
    if p.returncode != 0:
        if 'NVRTC, which compiles the GPU kernels, was not found' in p.stderr:
            print(p.stderr.strip())
            sys.exit(77)
        sys.exit(f'{what} failed ({p.returncode}):\n{p.stderr[:4000]}')
    return p.stdout, p.stderr


def tensor_core_kernels(cuda):
    """Function names whose comment says they run on bf16 tensor-core tiles."""
    names, comment = set(), []
    for line in cuda.splitlines():
        if line.startswith('//'):
            comment.append(line)
            continue
        m = re.match(r'extern "C" __global__ void (?:__launch_bounds__\(\d+\) )?(\w+)\(', line)
        if m and any('tensor-core' in c for c in comment):
            names.add(m.group(1))
        if not line.startswith('//'):
            comment = []
    return names


def ptx_entries(ptx):
    """Each .entry's text, by name."""
    bodies, name = {}, None
    for line in ptx.splitlines(keepends=True):
        m = re.match(r'\.visible \.entry (\w+)\(', line)
        if m:
            name = m.group(1)
            bodies[name] = ''
        if name:
            bodies[name] += line
    return bodies


def delete_mma(ptx, entry):
    """The PTX with entry's mma instructions removed (a planted bug)."""
    bodies = ptx_entries(ptx)
    broken = ''.join(l for l in bodies[entry].splitlines(keepends=True) if 'mma.sync' not in l)
    return ptx.replace(bodies[entry], broken)


def ptxas_report(ptxas, ptx_path, arch):
    """{entry: {registers, spill_stores, spill_loads, stack, smem}} from ptxas -v."""
    _, log = run([ptxas, '-v', f'-arch={arch}', ptx_path, '-o', os.devnull], 'ptxas')
    report, name = {}, None
    for line in log.splitlines():
        m = re.search(r"Compiling entry function '(\w+)'", line) or re.search(r'Function properties for (\w+)', line)
        if m:
            name = m.group(1)
            report.setdefault(name, {'registers': 0, 'spill_stores': 0, 'spill_loads': 0, 'stack': 0, 'smem': 0})
        m = re.search(r'(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads', line)
        if m and name:
            r = report[name]
            r['stack'], r['spill_stores'], r['spill_loads'] = map(int, m.groups())
        m = re.search(r'Used (\d+) registers', line)
        if m and name:
            report[name]['registers'] = int(m.group(1))
            s = re.search(r'(\d+) bytes smem', line)
            report[name]['smem'] = int(s.group(1)) if s else 0
    return report


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('tlc')
    ap.add_argument('graph')
    ap.add_argument('--set', action='append', default=[])
    ap.add_argument('--arch', default='sm_90')
    ap.add_argument('--ptxas', default=shutil.which('ptxas') or '/usr/local/cuda/bin/ptxas')
    ap.add_argument('--plant', choices=['spill', 'mma'])
    ap.add_argument('--quiet', action='store_true')
    args = ap.parse_args()
    if not os.access(args.ptxas, os.X_OK):
        print(f'skipped: no ptxas at {args.ptxas}')
        sys.exit(77)
    sets = [a for s in args.set for a in ('--set', s)]
    ptx, _ = run([args.tlc, args.graph, *sets, '--emit=ptx', f'--arch={args.arch}'], 'tlc --emit=ptx')
    cuda, _ = run([args.tlc, args.graph, *sets, '--emit=cuda', f'--arch={args.arch}'], 'tlc --emit=cuda')
    tensor_core = tensor_core_kernels(cuda)
    bodies = ptx_entries(ptx)
    if args.plant:
        victim = sorted(tensor_core & set(bodies))[0]
        if args.plant == 'mma':
            ptx = delete_mma(ptx, victim)
            bodies = ptx_entries(ptx)
        else:
            # Too few registers for one kernel (PTX's .maxnreg, after its parameters): ptxas spills it.
            ptx = ptx.replace(bodies[victim], bodies[victim].replace(')\n', ')\n.maxnreg 32\n', 1))
        print(f'planted ({args.plant}) in {victim}')
    with tempfile.TemporaryDirectory() as work:
        path = os.path.join(work, 'kernels.ptx')
        with open(path, 'w') as f:
            f.write(ptx)
        report = ptxas_report(args.ptxas, path, args.arch)
    missing = sorted(set(bodies) - set(report))
    if missing:
        sys.exit(f'FAIL: ptxas reported nothing for {len(missing)} kernels, such as {missing[0]}')
    failures = []
    if not args.quiet:
        print(f'{"kernel":58} {"regs":>4} {"spill st":>8} {"spill ld":>8} {"stack":>6} {"smem":>6}  tensor cores')
    for name in bodies:
        r = report[name]
        tc = name in tensor_core
        mma = 'mma.sync' in bodies[name]
        ldm = 'ldmatrix' in bodies[name]
        note = ''
        if tc:
            note = 'yes: mma.sync, ldmatrix' if mma and ldm else 'MISSING ' + ', '.join(
                i for i, has in (('mma.sync', mma), ('ldmatrix', ldm)) if not has)
        if not args.quiet:
            print(f'{name[:58]:58} {r["registers"]:4} {r["spill_stores"]:8} {r["spill_loads"]:8} '
                  f'{r["stack"]:6} {r["smem"]:6}  {note}')
        if r['spill_stores'] or r['spill_loads']:
            failures.append(f'{name} spills ({r["spill_stores"]} bytes stored, {r["spill_loads"]} loaded)')
        if tc and not (mma and ldm):
            failures.append(f'{name} runs on tensor cores by its comment but its PTX has no ' +
                            ('mma.sync' if not mma else 'ldmatrix'))
    regs = sorted(r['registers'] for r in report.values())
    print(f'{os.path.basename(args.graph)}: {len(bodies)} kernels for {args.arch}, {len(tensor_core)} on tensor cores; '
          f'registers median {regs[len(regs) // 2]}, most {regs[-1]}; '
          f'{len(failures)} problem{"s" if len(failures) != 1 else ""}')
    for f in failures:
        print('FAIL:', f)
    sys.exit(1 if failures else 0)


if __name__ == '__main__':
    main()
