"""tests/bench/bench_int8_gemm_torch.py — the PyTorch side of bench_int8_gemm: dynamic int8 Linear vs FP32 Linear.

Called by bench_int8_gemm (C++) as
    bench_int8_gemm_torch.py THREADS WARMUP REPEATS  SHAPE [SHAPE ...]
where SHAPE is "M,N,K" (x (M,K), weight (N,K)). Prints one line per shape:
    M,N,K INT8_MEDIAN_GOPS FP32_MEDIAN_GOPS
INT8 is torch.ao.nn.quantized.dynamic.Linear (per-tensor int8 weights; activations quantized on the fly, as the C++
"full" figure), on the first quantized engine available among fbgemm / x86 / onednn / qnnpack (Debian's torch 1.13
has no fbgemm); FP32 is torch.nn.functional.linear without bias. A first line "engine NAME 0" names the engine.
Lines for a shape are left out if the quantized engine fails on it.
"""
import sys

import torch

from bench_timing import median_seconds


def main():
    threads, warmup, repeats = (int(x) for x in sys.argv[1:4])
    torch.set_num_threads(threads)
    engines = torch.backends.quantized.supported_engines
    engine = next((e for e in ("fbgemm", "x86", "onednn", "qnnpack") if e in engines), None)
    if engine is None:
        return
    torch.backends.quantized.engine = engine
    print(f"engine_{engine} 0", flush=True)
    for shape in sys.argv[4:]:
        m, n, k = (int(x) for x in shape.split(","))
        x = torch.randn(m, k)
        weight = torch.randn(n, k) * 0.05
        flop = 2.0 * m * n * k
        with torch.no_grad():
            fp32 = median_seconds(lambda: torch.nn.functional.linear(x, weight), warmup, repeats)
            try:
                qlinear = torch.ao.nn.quantized.dynamic.Linear(k, n, bias_=False, dtype=torch.qint8)
                qweight = torch.quantize_per_tensor(weight, float(weight.abs().max()) / 127, 0, torch.qint8)
                qlinear.set_weight_bias(qweight, None)
                int8 = median_seconds(lambda: qlinear(x), warmup, repeats)
            except RuntimeError:
                continue
        print(f"{shape} {flop / int8 / 1e9:.2f} {flop / fp32 / 1e9:.2f}", flush=True)


if __name__ == "__main__":
    main()
