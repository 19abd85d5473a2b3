"""tests/bench/bench_quant_inference_torch.py — the PyTorch side of bench_quant_inference: BERT encoder inference.

Called by bench_quant_inference (C++) as
    bench_quant_inference_torch.py THREADS WARMUP REPEATS PRESET BATCH SEQ
and prints "parameters N" (the encoder's: embeddings + layers), "fp32_seconds S" (the median of REPEATS forward
passes after WARMUP untimed ones) and "dynamic_int8_seconds S": the same with torch.ao.quantization.quantize_dynamic
on the encoder's Linears (int8 weights, activations quantized per call; fbgemm).

The model is bench_train_torch.py's Hugging Face-style eager BertForMaskedLM, in eval mode under torch.inference_mode;
only its encoder runs (embeddings, LayerNorm, the layers; no MLM head), as on the C++ side. Random weights (normal
0.02, HF's init), ids uniform in [1000, V), no padding.
"""
import sys

import torch

from bench_timing import median_seconds
from bench_train_torch import PRESETS, VOCAB, BertForMaskedLM

SHAPES = {**PRESETS, "minilm": (6, 384, 12, 1536)}  # all-MiniLM-L6-v2: layers, hidden, heads, FFN


def encode(model, ids, token_types, attention_mask):
    """BertForMaskedLM.forward up to the encoder's output (B, T, C); eval mode, so no dropout."""
    T = ids.shape[1]
    x = model.word(ids) + model.token_type(token_types) + model.position(torch.arange(T).unsqueeze(0))
    x = model.embedding_norm(x)
    extended_mask = (1.0 - attention_mask[:, None, None, :]) * torch.finfo(torch.float32).min
    for layer in model.layers:
        x = layer(x, extended_mask)
    return x


def main():
    threads, warmup, repeats = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    preset, batch, seq = sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = BertForMaskedLM(*SHAPES[preset]).eval()
    gen = torch.Generator().manual_seed(7)
    ids = torch.randint(1000, VOCAB, (batch, seq), generator=gen)
    token_types = torch.zeros_like(ids)
    attention_mask = torch.ones(batch, seq)

    def run():
        with torch.inference_mode():
            encode(model, ids, token_types, attention_mask)

    encoder_parameters = sum(p.numel() for n, p in model.named_parameters()
                             if not (n.startswith("transform") or n == "decoder_bias"))
    print("parameters", encoder_parameters)
    print("fp32_seconds", median_seconds(run, warmup, repeats))
    model.layers = torch.ao.quantization.quantize_dynamic(model.layers, {torch.nn.Linear}, dtype=torch.qint8)
    print("dynamic_int8_seconds", median_seconds(run, warmup, repeats))


if __name__ == "__main__":
    main()
