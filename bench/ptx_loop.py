#!/usr/bin/env python3
"""The PTX instructions inside a tensor-core product's main loop (its loop over k), per kernel:
what a step of k costs the threads in instructions, which a roofline of bytes and mma
instructions cannot show.

usage: ptx_loop.py PTX_FILE [KERNEL ...]
Reads PTX (`tlc FILE --emit=ptx -o PTX_FILE`) and prints, for each named entry (default: every
entry holding mma.sync), the instructions of its outermost loop that holds an mma.sync (the
loop over k; the loops inside it are the staging loops, unrolled or not) counted statically,
by kind: integer, floating point, shared and global memory, mma and ldmatrix, barriers,
branches and the rest. A loop is a label and a later branch back to it.
"""
import re
import sys
from collections import Counter


def entries(ptx):
    """Each .entry's lines, by name."""
    bodies, name = {}, None
    for line in ptx.splitlines():
        m = re.match(r'\.visible \.entry (\w+)\(', line)
        if m:
            name = m.group(1)
            bodies[name] = []
        if name:
            bodies[name].append(line.strip())
    return bodies


def instruction(line):
    """The opcode of an instruction line (its predicate dropped), or None."""
    if not line.endswith(';') or line.startswith(('.', '//')):
        return None
    text = re.sub(r'^@!?%\w+\s+', '', line)
    return text.split()[0].rstrip(';') if text else None


def k_loop(lines):
    """(first, last) line of the outermost loop holding mma.sync, or None."""
    labels = {m.group(1): i for i, l in enumerate(lines) if (m := re.match(r'(\$?\w+):$', l))}
    best = None
    for j, line in enumerate(lines):
        m = re.search(r'\bbra(?:\.uni)?\s+(\$?\w+);', line)
        if not m or m.group(1) not in labels or labels[m.group(1)] >= j:
            continue
        i = labels[m.group(1)]
        if any('mma.sync' in l for l in lines[i:j]) and (best is None or j - i > best[1] - best[0]):
            best = (i, j)
    return best


def kind(op):
    """A coarse class of an opcode."""
    if op.startswith('mma'):
        return 'mma'
    if op.startswith('ldmatrix'):
        return 'ldmatrix'
    if op.startswith('cp.async'):
        return 'cp.async'
    if op.startswith(('ld.shared', 'st.shared')):
        return 'shared'
    if op.startswith(('ld.global', 'st.global', 'ld.param')):
        return 'global'
    if op.startswith(('bar', 'barrier')):
        return 'barrier'
    if op.startswith('bra'):
        return 'branch'
    parts = op.split('.')
    if any(p in ('f32', 'f64', 'f16', 'bf16', 'f16x2', 'bf16x2') for p in parts[1:]) and not op.startswith('cvt'):
        return 'float'
    if op.startswith(('add', 'sub', 'mul', 'mad', 'div', 'rem', 'shl', 'shr', 'and', 'or', 'xor', 'not', 'neg',
                      'min', 'max', 'setp', 'selp', 'cvt', 'abs', 'mov', 'prmt', 'bfe', 'bfi', 'cvta')):
        return 'integer'
    return 'other'


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    bodies = entries(open(sys.argv[1]).read())
    names = sys.argv[2:] or [n for n, b in bodies.items() if any('mma.sync' in l for l in b)]
    cols = ['integer', 'float', 'shared', 'global', 'cp.async', 'ldmatrix', 'mma', 'barrier', 'branch', 'other']
    print('kernel\tloop_instructions\t' + '\t'.join(cols))
    for name in names:
        if name not in bodies:
            sys.exit(f'{name}: no such entry in {sys.argv[1]}')
        loop = k_loop(bodies[name])
        if not loop:
            print(f'{name}\tno loop holds mma.sync')
            continue
        ops = [op for l in bodies[name][loop[0]:loop[1] + 1] if (op := instruction(l))]
        counts = Counter(kind(op) for op in ops)
        print(f'{name}\t{len(ops)}\t' + '\t'.join(str(counts[c]) for c in cols))


if __name__ == '__main__':
    main()
