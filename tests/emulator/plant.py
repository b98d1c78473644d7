#!/usr/bin/env python3
"""plant.py MODE IN.cu OUT.cu [OP]: a bug planted in the first tensor-core kernel of a program tlc
wrote (the first function that calls tlc_mma_16816_bf16; with OP, the first of op OP, as its
comment names it: conv2d_dx, conv2d_dw, linear_dw...), for the emulator to catch:
  barrier   the first __syncthreads() removed (threads read shared memory others have not written)
  fragment  A's fragments loaded with ldmatrix .trans (the wrong layout)
  edge      the piece staged one column short of the product's depth K (an off-by-one tile edge)
  tap       in the first depthwise kernel instead (kernels_depthwise.c, its input row's span in
            registers), the first tap's weight w0 taken as w1
  channel   in the first kernel of op OP (bn_apply, bn_dx: the 16-byte form, kernels_norm.c), the
            channel's statistics and parameters read for the thread's next 4 elements (wrong
            where those start the next plane)
  window    in the first maxpool_grad (kernels_pool.c: bands of rows, a thread per window then per
            input), each window's last maximum taken instead of its first: where a window
            ties (zeros after a ReLU), its gradient goes to another input than the CPU's
  bf16read  in the first kernel of op OP, a buffer the GPU holds in bf16 read as float: the
            first 8-byte access's two bf16 values taken as one float's bits
  round     in the first pass 1 of op OP (bn_dparams, bn_stats: kernels_norm.c's two-pass
            reductions), each thread's second round of loads skipped: the chunk summed short
  chunks    in the first kernel of op OP that adds up a first pass's partial sums (bias_grad,
            bn_dparams: pass 2 of kernels_norm.c's two-pass reductions), the last chunk left
            out (the chunk count one short)
  group     in the first multi-tensor optimizer update (kernels_optim.c), each thread's elements
            one further on: every parameter's first element is never updated
Exits 1 when the program has no such kernel or the edit finds nothing to change, so a test
that plants nothing cannot pass."""
import re
import sys

mode, src, dst = sys.argv[1:4]
op = sys.argv[4] if len(sys.argv) > 4 else None
text = open(src).read()
functions = text.split('\n\n')   # a function and its comment lines have no blank line inside
for i, f in enumerate(functions):
    kernel = {'tap': 'span[', 'channel': '', 'window': '', 'bf16read': 'const uint2 q', 'round': '_partials(', 'chunks': "adding up pass 1's",
              'group': '_group('}.get(mode, 'tlc_mma_16816_bf16(')
    if mode == 'window':
        op = 'maxpool_grad'
    if kernel not in f or '__global__' not in f:
        continue
    if op and not re.search(r'^// [^:\n]*: %s[ (]' % re.escape(op), f, re.M):
        continue
    if mode == 'barrier':
        planted = re.sub(r'\n[ \t]*__syncthreads\(\);', '', f, count=1)
    elif mode == 'fragment':
        planted = f.replace('tlc_ldmatrix_x4(', 'tlc_ldmatrix_x4_trans(')
    elif mode == 'tap':
        planted = f.replace('(w0 * span', '(w1 * span', 1)
    elif mode == 'edge':
        # its comment: conv2d ... ([N,C,H,W], [CO,CI,k,k]): the product's depth is CI*k*k
        shape = re.search(r'conv2d .*?\(\[\d+,\d+,\d+,\d+\], \[\d+,(\d+),(\d+),(\d+)\]\)', f)
        depth = int(shape.group(1)) * int(shape.group(2)) * int(shape.group(3)) if shape else 0
        # the first staged piece's guard on k (kk < depth), wherever it is used
        guard = re.search(r'\((kk\d*) < %d\)' % depth, f) if shape else None
        planted = f.replace(guard.group(0), '(%s < %d)' % (guard.group(1), depth - 1)) if guard else f
    elif mode == 'channel':
        planted = re.sub(r'\(\(piece \* 4\) / (\d+)\)', r'(((piece * 4) + 4) / \1)', f)
    elif mode == 'window':
        planted = f.replace('if ((best < v))', 'if ((best <= v))', 1)
    elif mode == 'bf16read':
        planted = f.replace('tlc_bf2f((unsigned short)q.x)', '__uint_as_float(q.x)', 1)
    elif mode == 'round':
        planted = re.sub(r'\n( *)if \(.*\(256 \+ \(int64_t\)threadIdx\.x\).*\{\n', r'\n\1if (false) {\n', f, count=1)
    elif mode == 'chunks':
        planted = re.sub(r'(\(\(\(j\d* \* 256\) \+ \(int64_t\)threadIdx\.x\) < )(\d+)\)',
                         lambda m: '%s%d)' % (m.group(1), int(m.group(2)) - 1), f, count=1)
    elif mode == 'group':
        planted = re.sub(r'\((r\d*) \* 256\) \+ \(int64_t\)threadIdx\.x\)', r'(\1 * 256) + (int64_t)threadIdx.x + 1)', f)
    else:
        sys.exit('plant.py: unknown mode ' + mode)
    if planted == f:
        sys.exit('plant.py: nothing to plant (%s) in the first kernel it takes' % mode)
    open(dst, 'w').write(text.replace(f, planted, 1))
    print('plant.py: %s planted in %s' % (mode, re.search(r'void __launch_bounds__\(\d+\) (\w+)', f).group(1)))
    sys.exit(0)
sys.exit('plant.py: no kernel for %s%s in %s' % (mode, ' of ' + op if op else '', src))
