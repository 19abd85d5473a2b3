"""tests/bench/bench_gemm_torch.py — the PyTorch side of bench_gemm: times torch on the same GEMM shapes.

Called by bench_gemm (C++) as
    bench_gemm_torch.py THREADS WARMUP REPEATS DTYPE SHAPE [SHAPE ...]
where SHAPE is "batch,M,N,K,trans_a,trans_b" (trans as 0/1, same meaning as bertforge::cpu::gemm: op(A) is (M,K),
stored (K,M) when trans_a; op(B) is (K,N), stored (N,K) when trans_b). Prints one line per shape:
    batch,M,N,K,trans_a,trans_b MEDIAN_GFLOPS BEST_GFLOPS
DTYPE is float32 or bfloat16 (operands and output of that type; bertforge's 16-bit GEMM writes FP32). Timing
matches the C++ side: output preallocated (out=), WARMUP untimed calls, then REPEATS timed calls.
"""
import statistics
import sys
import time

import torch


def operands(batch, m, n, k, trans_a, trans_b, dtype):
    a = torch.randn(batch, k, m, dtype=dtype).transpose(1, 2) if trans_a else torch.randn(batch, m, k, dtype=dtype)
    b = torch.randn(batch, n, k, dtype=dtype).transpose(1, 2) if trans_b else torch.randn(batch, k, n, dtype=dtype)
    c = torch.empty(batch, m, n, dtype=dtype)  # op(A) (batch, M, K) @ op(B) (batch, K, N)
    if batch == 1:
        return a[0], b[0], c[0], torch.mm
    return a, b, c, torch.bmm


def main():
    threads, warmup, repeats = (int(x) for x in sys.argv[1:4])
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[sys.argv[4]]
    torch.set_num_threads(threads)
    for shape in sys.argv[5:]:
        batch, m, n, k, trans_a, trans_b = (int(x) for x in shape.split(","))
        a, b, c, op = operands(batch, m, n, k, trans_a, trans_b, dtype)
        with torch.no_grad():
            for _ in range(warmup):
                op(a, b, out=c)
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                op(a, b, out=c)
                times.append(time.perf_counter() - start)
        flop = 2.0 * batch * m * n * k
        print(f"{shape} {flop / statistics.median(times) / 1e9:.2f} {flop / min(times) / 1e9:.2f}", flush=True)


if __name__ == "__main__":
    main()
