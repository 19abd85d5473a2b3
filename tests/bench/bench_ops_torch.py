"""tests/bench/bench_ops_torch.py — the PyTorch side of bench_ops: times torch's CPU kernels on the same shapes.

Called by bench_ops (C++) as
    bench_ops_torch.py THREADS WARMUP REPEATS LN_ROWS LN_COLS BATCH HEADS SEQ GELU_ROWS GELU_COLS
and prints one line per figure, "name median_seconds"; the C++ side turns seconds into GB/s with its own byte
counts, so both sides divide the same bytes. Timing matches the C++ side: float32, WARMUP untimed calls, then
the median of REPEATS. Where an op has an out= variant, both the allocating and the out= call are timed and the
faster one is reported (the best torch can do). Ops that always allocate their outputs (native_layer_norm's out=
variants copy from a fresh result) would pay page faults on every call for 50 MB buffers, which bertforge's
preallocated buffers do not: glibc is told to keep freed memory (mallopt), so torch reuses a warm heap instead.
The masked softmax is what Hugging Face BERT does, scores + mask then softmax; the clipped softmax is the PyTorch
formulation of Bondarenko et al., softmax then an affine map and a clamp.
"""
import ctypes
import sys

import torch

from bench_timing import median_seconds

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc <malloc.h>

GAMMA, ZETA = -0.025, 1.0
DROPOUT_P = 0.1


def figures(ln_rows, ln_cols, batch, heads, seq, gelu_rows, gelu_cols):
    """Yields (name, [candidate callables]) in the order of bench_ops.cpp."""
    aten = torch.ops.aten
    gen = torch.Generator().manual_seed(0)

    x = torch.rand(ln_rows, ln_cols, generator=gen) * 6 - 3
    w = torch.rand(ln_cols, generator=gen) + 0.5
    b = torch.rand(ln_cols, generator=gen) - 0.5
    dout = torch.rand(ln_rows, ln_cols, generator=gen) * 2 - 1
    out, mean, rstd = aten.native_layer_norm(x, [ln_cols], w, b, 1e-12)
    dx, dw, db = torch.empty_like(x), torch.empty_like(w), torch.empty_like(b)
    yield "layernorm_fwd", [
        lambda: aten.native_layer_norm(x, [ln_cols], w, b, 1e-12),
        lambda: aten.native_layer_norm.out(x, [ln_cols], w, b, 1e-12, out0=out, out1=mean, out2=rstd),
    ]
    yield "layernorm_bwd", [
        lambda: aten.native_layer_norm_backward(dout, x, [ln_cols], mean, rstd, w, b, [True, True, True]),
        lambda: aten.native_layer_norm_backward.out(dout, x, [ln_cols], mean, rstd, w, b, [True, True, True],
                                                    out0=dx, out1=dw, out2=db),
    ]
    del x, dout, out, dx

    rows = batch * heads * seq
    s = torch.rand(batch, heads, seq, seq, generator=gen) * 8 - 4
    g = torch.rand(batch, heads, seq, seq, generator=gen) * 2 - 1
    mask = torch.zeros(batch, 1, 1, seq)
    mask[..., 100:] = -1e4  # the last 28 keys are padding, as in bench_ops.cpp
    p, tmp, ds = torch.empty_like(s), torch.empty_like(s), torch.empty_like(s)
    assert p.numel() == rows * seq
    yield "softmax_fwd", [
        lambda: torch.softmax(s, -1),
        lambda: aten._softmax.out(s, -1, False, out=p),
    ]
    yield "softmax_fwd_mask", [
        lambda: torch.softmax(s + mask, -1),
        lambda: aten._softmax.out(torch.add(s, mask, out=tmp), -1, False, out=p),
    ]
    probs = torch.softmax(s, -1)
    yield "softmax_bwd", [
        lambda: aten._softmax_backward_data(g, probs, -1, torch.float32),
        lambda: aten._softmax_backward_data.out(g, probs, -1, torch.float32, grad_input=ds),
    ]
    yield "clipped_softmax_fwd_mask", [
        lambda: torch.clamp((ZETA - GAMMA) * torch.softmax(s + mask, -1) + GAMMA, 0, 1),
        lambda: aten._softmax.out(torch.add(s, mask, out=tmp), -1, False, out=p).mul_(ZETA - GAMMA).add_(GAMMA)
        .clamp_(0, 1),
    ]
    yield "dropout_fwd", [
        lambda: torch.nn.functional.dropout(s, DROPOUT_P, training=True),
    ]
    del s, g, p, tmp, ds, probs

    x = torch.rand(gelu_rows, gelu_cols, generator=gen) * 8 - 4
    dout = torch.rand(gelu_rows, gelu_cols, generator=gen) * 2 - 1
    y, dx = torch.empty_like(x), torch.empty_like(x)
    yield "gelu_fwd", [
        lambda: torch.nn.functional.gelu(x),
        lambda: aten.gelu.out(x, out=y),
    ]
    yield "gelu_bwd", [
        lambda: aten.gelu_backward(dout, x),
        lambda: aten.gelu_backward.grad_input(dout, x, grad_input=dx),
    ]


def main():
    threads, warmup, repeats = (int(v) for v in sys.argv[1:4])
    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(M_MMAP_THRESHOLD, 1 << 30)  # large buffers from the heap, not a fresh mmap per call
    libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)  # and freed heap memory kept for the next call
    shapes = [int(v) for v in sys.argv[4:11]]
    torch.set_num_threads(threads)
    with torch.no_grad():
        for name, candidates in figures(*shapes):
            seconds = min(median_seconds(fn, warmup, repeats) for fn in candidates)
            print(f"{name} {seconds:.9f}", flush=True)


if __name__ == "__main__":
    main()
