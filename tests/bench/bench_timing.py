"""tests/bench/bench_timing.py — how the PyTorch peer scripts time a call, as bench_util.h does on the C++ side:
WARMUP untimed calls, then the median of REPEATS timed ones (seconds)."""
import statistics
import time


def median_seconds(fn, warmup, repeats):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
