#!/usr/bin/env python3
"""Writes tests/models/fixtures/bert_<variant>.safetensors: a tiny BertForMaskedLM computed by PyTorch, for
tests/models/test_bert.cpp (one file per attention variant: softmax, clipped_softmax, gated).

Run with a Python that has PyTorch and the safetensors package (on the dev machine /usr/bin/python3):
    /usr/bin/python3 tests/models/make_bert_fixture.py

The model is written here in plain torch, mirroring Hugging Face's BertForMaskedLM (transformers 4.x,
modeling_bert.py) operation for operation: embeddings summed as (word + token type) + position, post-LN
layers, exact erf GELU, LayerNorm eps 1e-12, the additive mask (1 - mask) * finfo(float32).min, the MLM head
dense -> GELU -> LayerNorm -> decoder tied to the word embeddings + bias, and cross-entropy with ignore index
-100. The variants of "Quantizable Transformers" (Bondarenko et al. 2023) are added as bertforge defines them:
clipped softmax clip((zeta - gamma) softmax + gamma, 0, 1) with gamma = -alpha / T, and gated attention, where
head h's context is multiplied by sigmoid(x_h . gate.weight[h] + gate.bias[h]), x_h head h's slice of the
layer input. Dropout is 0, so everything is deterministic.

Weights are random but larger than BERT's 0.02 initialisation (std 0.2, query/key/gate 0.3, LayerNorm weights
1 + noise, random biases), so attention is far from uniform (the clipped softmax clips entries at both ends),
every parameter matters, and gradients are well above rounding noise.

Each file holds, all float32 unless noted:
    <parameter name>          the weights, Hugging Face names (the decoder is tied: no tensor of its own)
    input.input_ids           int64 (B, T); sample 1 ends in padding ([PAD] = 0, attention_mask 0)
    input.token_type_ids      int64 (B, T)
    input.attention_mask      int64 (B, T)
    input.labels              int64 (B, T), -100 where no prediction is scored
    output.logits             (B, T, V)
    output.loss               (), the mean cross-entropy over labelled positions
    grad.<parameter name>     d loss / d parameter
    adamw.losses              (10,): the loss of each of 10 training steps, computed before that step's update,
                              with torch.optim.AdamW(lr 1e-3, betas (0.9, 0.999), eps 1e-8), weight decay 0.01
                              on weight matrices and embeddings, 0 on biases and LayerNorm parameters (BERT's
                              groups, as train/optimizer.h)
and in "__metadata__", "bert_fixture": a JSON object with "config" (the BertConfig as config.json) and
"parameter_names" (the order of named_parameters()).
"""
import json
import math
import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

VOCAB, HIDDEN, LAYERS, HEADS, INTERMEDIATE, MAX_POSITIONS, TYPES = 64, 32, 2, 4, 64, 16, 2
B, T = 2, 8
EPS = 1e-12
ALPHA, ZETA = 0.8, 1.1  # clipped softmax: gamma = -0.8 / 8 = -0.1; an entry survives above 0.1 / 1.2 = 0.083
ADAMW_STEPS = 10


class Gate(torch.nn.Module):
    """Per-head gate of gated attention: weight (H, d), bias (H)."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.empty(HEADS, HIDDEN // HEADS))
        self.bias = torch.nn.Parameter(torch.empty(HEADS))


class SelfAttention(torch.nn.Module):
    def __init__(self, variant):
        super().__init__()
        self.variant = variant
        self.query = torch.nn.Linear(HIDDEN, HIDDEN)
        self.key = torch.nn.Linear(HIDDEN, HIDDEN)
        self.value = torch.nn.Linear(HIDDEN, HIDDEN)
        if variant == "gated":
            self.gate = Gate()
        self.stretched = None  # clipped softmax: the last pre-clip values, for check_clip_margins

    def forward(self, x, extended_mask):
        d = HIDDEN // HEADS

        def heads(t):  # (B, T, C) -> (B, H, T, d)
            return t.view(B, T, HEADS, d).permute(0, 2, 1, 3)

        q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d) + extended_mask
        probs = F.softmax(scores, dim=-1)
        if self.variant == "clipped_softmax":
            gamma = -torch.tensor(ALPHA, dtype=torch.float32) / T
            zeta = torch.tensor(ZETA, dtype=torch.float32)
            stretched = (zeta - gamma) * probs + gamma
            self.stretched = stretched.detach()
            probs = torch.clip(stretched, 0.0, 1.0)
        context = torch.matmul(probs, v)  # (B, H, T, d)
        if self.variant == "gated":
            logits = torch.einsum("bthd,hd->bth", x.view(B, T, HEADS, d), self.gate.weight) + self.gate.bias
            context = context * torch.sigmoid(logits).permute(0, 2, 1).unsqueeze(-1)
        return context.permute(0, 2, 1, 3).reshape(B, T, HIDDEN)


class Dense(torch.nn.Module):
    """Hugging Face's one-Linear wrappers (BertIntermediate, BertSelfOutput, BertOutput, the transform)."""

    def __init__(self, n_in, n_out, layer_norm):
        super().__init__()
        self.dense = torch.nn.Linear(n_in, n_out)
        if layer_norm:
            self.LayerNorm = torch.nn.LayerNorm(n_out, eps=EPS)


class Attention(torch.nn.Module):
    def __init__(self, variant):
        super().__init__()
        self.self = SelfAttention(variant)
        self.output = Dense(HIDDEN, HIDDEN, layer_norm=True)


class Layer(torch.nn.Module):
    def __init__(self, variant):
        super().__init__()
        self.attention = Attention(variant)
        self.intermediate = Dense(HIDDEN, INTERMEDIATE, layer_norm=False)
        self.output = Dense(INTERMEDIATE, HIDDEN, layer_norm=True)

    def forward(self, x, extended_mask):
        attention_output = self.attention.output
        a = attention_output.LayerNorm(attention_output.dense(self.attention.self(x, extended_mask)) + x)
        h = F.gelu(self.intermediate.dense(a))
        return self.output.LayerNorm(self.output.dense(h) + a)


class Embeddings(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.word_embeddings = torch.nn.Embedding(VOCAB, HIDDEN, padding_idx=0)
        self.position_embeddings = torch.nn.Embedding(MAX_POSITIONS, HIDDEN)
        self.token_type_embeddings = torch.nn.Embedding(TYPES, HIDDEN)
        self.LayerNorm = torch.nn.LayerNorm(HIDDEN, eps=EPS)

    def forward(self, input_ids, token_type_ids):
        embeddings = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        embeddings = embeddings + self.position_embeddings(torch.arange(T).unsqueeze(0))
        return self.LayerNorm(embeddings)


class Encoder(torch.nn.Module):
    def __init__(self, variant):
        super().__init__()
        self.layer = torch.nn.ModuleList([Layer(variant) for _ in range(LAYERS)])


class Bert(torch.nn.Module):
    def __init__(self, variant):
        super().__init__()
        self.embeddings = Embeddings()
        self.encoder = Encoder(variant)


class Predictions(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.bias = torch.nn.Parameter(torch.empty(VOCAB))
        self.transform = Dense(HIDDEN, HIDDEN, layer_norm=True)


class Cls(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.predictions = Predictions()


class BertForMaskedLM(torch.nn.Module):
    def __init__(self, variant):
        super().__init__()
        self.bert = Bert(variant)
        self.cls = Cls()

    def forward(self, input_ids, token_type_ids, attention_mask, labels):
        extended_mask = (1.0 - attention_mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        h = self.bert.embeddings(input_ids, token_type_ids)
        for layer in self.bert.encoder.layer:
            h = layer(h, extended_mask)
        transform = self.cls.predictions.transform
        h = transform.LayerNorm(F.gelu(transform.dense(h)))
        logits = torch.matmul(h, self.bert.embeddings.word_embeddings.weight.t()) + self.cls.predictions.bias
        loss = F.cross_entropy(logits.view(-1, VOCAB), labels.view(-1), ignore_index=-100)
        return logits, loss


def randomize(model, gen):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name:
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            elif ".query." in name or ".key." in name or "gate" in name:
                p.copy_(0.3 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.2 * torch.randn(p.shape, generator=gen))


def make_inputs(gen):
    input_ids = torch.randint(1, VOCAB, (B, T), generator=gen)
    attention_mask = torch.ones(B, T, dtype=torch.int64)
    attention_mask[1, T - 3:] = 0
    input_ids[1, T - 3:] = 0  # [PAD]
    token_type_ids = torch.tensor([[0, 0, 0, 0, 1, 1, 1, 1], [0, 0, 0, 1, 1, 0, 0, 0]])
    labels = torch.full((B, T), -100, dtype=torch.int64)
    for b, t in [(0, 1), (0, 4), (0, 6), (1, 0), (1, 3)]:
        labels[b, t] = torch.randint(0, VOCAB, (1,), generator=gen).item()
    return input_ids, token_type_ids, attention_mask, labels


def config_json(variant):
    return {
        "architectures": ["BertForMaskedLM"], "model_type": "bert", "vocab_size": VOCAB, "hidden_size": HIDDEN,
        "num_hidden_layers": LAYERS, "num_attention_heads": HEADS, "intermediate_size": INTERMEDIATE,
        "max_position_embeddings": MAX_POSITIONS, "type_vocab_size": TYPES, "pad_token_id": 0,
        "hidden_act": "gelu", "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,
        "layer_norm_eps": EPS, "initializer_range": 0.02, "bertforge_attention": variant,
        "bertforge_clip_alpha": ALPHA, "bertforge_clip_zeta": ZETA, "bertforge_gate_pi_init": 0.5,
        "bertforge_head_dropout_prob": 0.0,
    }


def check_clip_margins(model):
    """Prints how many entries clip and fails if any pre-clip value is within 1e-4 of 0 or 1, where float
    rounding could decide differently in C++ whether the clip is active."""
    stretched = torch.cat([layer.attention.self.stretched.flatten() for layer in model.bert.encoder.layer])
    low, high = (stretched < 0).float().mean().item(), (stretched > 1).float().mean().item()
    print(f"  clipped below 0: {low:.1%} (masked keys included), above 1: {high:.1%}")
    margin = torch.minimum((stretched - 0).abs(), (stretched - 1).abs()).min().item()
    assert margin > 1e-4 and high > 0 and low > 0, f"clip margin {margin}; pick another seed"


def write_fixture(variant, path):
    gen = torch.Generator().manual_seed(1234)
    model = BertForMaskedLM(variant)
    randomize(model, gen)
    inputs = make_inputs(gen)
    names = [name for name, _ in model.named_parameters()]
    tensors = {name: p.detach().clone() for name, p in model.named_parameters()}
    for key, value in zip(["input_ids", "token_type_ids", "attention_mask", "labels"], inputs):
        tensors[f"input.{key}"] = value

    logits, loss = model(*inputs)
    loss.backward()
    if variant == "clipped_softmax":
        check_clip_margins(model)
    tensors["output.logits"] = logits.detach()
    tensors["output.loss"] = loss.detach()
    for name, p in model.named_parameters():
        tensors[f"grad.{name}"] = p.grad.detach().clone()

    decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n)]
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                                  lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    losses = []
    for _ in range(ADAMW_STEPS):
        optimizer.zero_grad()
        _, loss = model(*inputs)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    tensors["adamw.losses"] = torch.tensor(losses, dtype=torch.float32)

    # One metadata entry: safetensors writes the entries of "__metadata__" in hash order, which varies by run.
    metadata = {"bert_fixture": json.dumps({"config": config_json(variant), "parameter_names": names})}
    save_file({k: v.contiguous() for k, v in tensors.items()}, path, metadata=metadata)
    print(f"{path}: loss {tensors['output.loss'].item():.6f}, AdamW losses {losses[0]:.4f} -> {losses[-1]:.4f}, "
          f"{os.path.getsize(path)} bytes")


def main():
    directory = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
    os.makedirs(directory, exist_ok=True)
    for variant in ["softmax", "clipped_softmax", "gated"]:
        write_fixture(variant, os.path.join(directory, f"bert_{variant}.safetensors"))


if __name__ == "__main__":
    main()
