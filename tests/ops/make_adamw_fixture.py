#!/usr/bin/env python3
"""Writes tests/ops/fixtures/adamw.txt: torch.optim.AdamW trajectories for tests/ops/test_adamw.cpp.

Run with a Python that has PyTorch (on the dev machine /usr/bin/python3):
    /usr/bin/python3 tests/ops/make_adamw_fixture.py

Hyperparameters are rounded to float32 before torch sees them, because bertforge's
AdamWConfig holds floats: torch then computes with exactly the values the C++ test
passes (e.g. 1 - beta2 is the same number on both sides). Every number is written
with 9 significant digits, which round-trips a float32 exactly.

Format (whitespace-separated tokens, '#' starts a comment line):
    case <name> <lr> <beta1> <beta2> <eps> <weight_decay> <n> <steps>
    param0 <n values>
    then for each step: grad <n values> / param <n values> / m <n values> / v <n values>
(param, m, v: the state after that step.)
"""
import os

import numpy as np
import torch


def f32(x):
    return float(np.float32(x))


def fmt(tensor):
    return " ".join(f"{v:.9g}" for v in tensor.detach().numpy().astype(np.float32).tolist())


def write_case(out, name, lr, betas, eps, weight_decay, n, steps, seed, grad_scales):
    lr, eps, weight_decay = f32(lr), f32(eps), f32(weight_decay)
    betas = (f32(betas[0]), f32(betas[1]))
    gen = torch.Generator().manual_seed(seed)
    # |param| in [0.5, 1.5] with random signs: far from 0, so relative errors stay meaningful.
    magnitude = 0.5 + torch.rand(n, generator=gen)
    sign = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
    param = torch.nn.Parameter((magnitude * sign).float())
    opt = torch.optim.AdamW([param], lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    out.write(f"case {name} {lr:.9g} {betas[0]:.9g} {betas[1]:.9g} {eps:.9g} {weight_decay:.9g} {n} {steps}\n")
    out.write(f"param0 {fmt(param)}\n")
    for step in range(steps):
        grad = torch.randn(n, generator=gen) * grad_scales
        grad[0] = 0.0  # an element whose gradient is always 0: only the decay moves it
        param.grad = grad.float()
        opt.step()
        state = opt.state[param]
        out.write(f"grad {fmt(param.grad)}\n")
        out.write(f"param {fmt(param)}\n")
        out.write(f"m {fmt(state['exp_avg'])}\n")
        out.write(f"v {fmt(state['exp_avg_sq'])}\n")


def main():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "adamw.txt")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    n = 16
    # Gradient magnitudes from 1e-4 (where eps = 1e-6 matters) to 10.
    scales = torch.logspace(-4, 1, n)
    with open(path, "w") as out:
        out.write(f"# torch.optim.AdamW (torch {torch.__version__}); made by tests/ops/make_adamw_fixture.py\n")
        write_case(out, "torch_defaults", 1e-3, (0.9, 0.999), 1e-8, 0.01, n, 6, seed=1, grad_scales=1.0)
        write_case(out, "bert_like_large_lr", 0.05, (0.8, 0.99), 1e-6, 0.1, n, 10, seed=2, grad_scales=scales)
        write_case(out, "no_weight_decay", 0.02, (0.9, 0.999), 1e-6, 0.0, n, 5, seed=3, grad_scales=scales)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
