#!/usr/bin/env python3
"""Writes tests/ops/fixtures/softmax_layernorm_gelu.json: PyTorch outputs and gradients of softmax (plain and
masked), clipped softmax, layer_norm and GELU on fixed inputs, read by tests/ops/test_{softmax,layernorm,
activation}.cpp as a cross-check of the closed-form references there.

Run with a Python that has PyTorch (on the dev machine /usr/bin/python3):
    /usr/bin/python3 tests/ops/make_softmax_fixture.py

Every tensor is float32, computed by torch on the CPU and written as a flat row-major list of numbers with 9
significant digits (which round-trips a float32 exactly). Format: {"cases": {name: {key: value}}}, where a case
holds "shape" (of x), "x", "dout" (the gradient fed to backward), "out" (the forward result), "dx" (torch
autograd's gradient), and op-specific keys: "mask" and "mask_shape" (additive mask), "gamma"/"zeta" (clipped
softmax), "weight"/"bias"/"eps"/"dweight"/"dbias" (layer_norm).
"""
import json
import os

import torch


def values(t):
    return [float(f"{v:.9g}") for v in t.detach().reshape(-1).tolist()]


def run(fn, x, dout, *params):
    x = x.clone().requires_grad_(True)
    params = [p.clone().requires_grad_(True) for p in params]
    out = fn(x, *params)
    out.backward(dout)
    return out, x.grad, [p.grad for p in params]


def main():
    gen = torch.Generator().manual_seed(2024)

    def rand(*shape, scale=1.0):
        return (torch.rand(*shape, generator=gen) * 2 - 1) * scale

    cases = {}

    # GELU over a spread of values, including the far tails.
    x = torch.cat([torch.linspace(-9, 9, 37), rand(63, scale=4.0)]).reshape(4, 25)
    dout = rand(4, 25)
    out, dx, _ = run(torch.nn.functional.gelu, x, dout)
    cases["gelu"] = {"shape": list(x.shape), "x": values(x), "dout": values(dout), "out": values(out),
                     "dx": values(dx)}

    # LayerNorm with BERT's eps; one row offset far from zero.
    x = rand(3, 2, 11, scale=2.0)
    x[1, 0] += 25.0
    weight, bias, dout = rand(11) + 1.0, rand(11), rand(3, 2, 11)
    eps = 1e-12
    out, dx, (dweight, dbias) = run(lambda t, w, b: torch.nn.functional.layer_norm(t, (11,), w, b, eps), x, dout,
                                    weight, bias)
    cases["layer_norm"] = {"shape": list(x.shape), "x": values(x), "weight": values(weight), "bias": values(bias),
                           "eps": eps, "dout": values(dout), "out": values(out), "dx": values(dx),
                           "dweight": values(dweight), "dbias": values(dbias)}

    # Softmax over scores (B, H, T, T) = (2, 3, 4, 7), without and with a (B, 1, 1, T) padding mask.
    x, dout = rand(2, 3, 4, 7, scale=3.0), rand(2, 3, 4, 7)
    mask = torch.zeros(2, 1, 1, 7)
    mask[0, ..., 5:] = -1e4
    mask[1, ..., 3:] = -1e4
    out, dx, _ = run(lambda t: torch.softmax(t, -1), x, dout)
    cases["softmax"] = {"shape": list(x.shape), "x": values(x), "dout": values(dout), "out": values(out),
                        "dx": values(dx)}
    out, dx, _ = run(lambda t: torch.softmax(t + mask, -1), x, dout)
    cases["softmax_masked"] = {"shape": list(x.shape), "x": values(x), "mask_shape": list(mask.shape),
                               "mask": values(mask), "dout": values(dout), "out": values(out), "dx": values(dx)}

    # Clipped softmax as in Bondarenko et al.: clamp((zeta - gamma) softmax + gamma, 0, 1). torch.clamp's
    # gradient passes where the input is inside [0, 1] (bounds included), docs/design.md's rule.
    gamma, zeta = -0.1, 1.1
    gamma32, zeta32 = float(torch.tensor(gamma)), float(torch.tensor(zeta))  # the float32 values C++ passes
    out, dx, _ = run(lambda t: torch.clamp((zeta32 - gamma32) * torch.softmax(t + mask, -1) + gamma32, 0, 1), x,
                     dout)
    cases["clipped_softmax_masked"] = {"shape": list(x.shape), "x": values(x), "mask_shape": list(mask.shape),
                                       "mask": values(mask), "gamma": gamma32, "zeta": zeta32,
                                       "dout": values(dout), "out": values(out), "dx": values(dx)}

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "softmax_layernorm_gelu.json")
    with open(path, "w") as f:
        f.write("{\n  \"generator\": \"tests/ops/make_softmax_fixture.py, torch " + torch.__version__ + "\",\n")
        f.write("  \"cases\": {\n")
        f.write(",\n".join(f"    {json.dumps(name)}: {json.dumps(case)}" for name, case in cases.items()))
        f.write("\n  }\n}\n")
    print("wrote", path)


if __name__ == "__main__":
    main()
