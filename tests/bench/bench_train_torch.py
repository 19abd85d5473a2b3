"""tests/bench/bench_train_torch.py — the PyTorch side of bench_train: one BERT MLM training step, timed.

Called by bench_train (C++) as
    bench_train_torch.py THREADS WARMUP REPEATS PRESET BATCH SEQ HEAD_ROWS DEVICE [AUTOCAST]
and prints "parameters N" and "step_seconds S" (the median of REPEATS steps after WARMUP untimed ones).
HEAD_ROWS "all" runs the MLM head at every position, as Hugging Face does; "labelled" gathers the labelled
positions first and runs the head on those alone, as bertforge's training does (BertForMaskedLM::mlm_loss).

The model is BertForMaskedLM as Hugging Face computes it in eager mode (transformers 4.x, modeling_bert.py,
attn_implementation="eager"): embeddings (word + token type) + position, LayerNorm, dropout; post-LN layers with
scores = QK^T / sqrt(d) + additive mask, softmax, dropout on the probabilities, dropout + residual + LayerNorm
after each block, erf GELU; the MLM head dense -> GELU -> LayerNorm -> decoder tied to the word embeddings + bias,
logits at every position (or at the labelled ones, see HEAD_ROWS), cross-entropy with ignore index -100. A step: forward in train mode (dropout 0.1),
backward, clip_grad_norm_(1.0), torch.optim.AdamW (weight decay 0.01), zero_grad(set_to_none=True). The batch
is synthetic as on the C++ side: ids uniform in [1000, V), 15% of the positions labelled, no padding.
DEVICE is cpu or cuda; on cuda TF32 is off (FP32 GEMMs, as bertforge's default) and each timed step ends with
torch.cuda.synchronize(). AUTOCAST (none, bf16 or fp16; default none) runs forward and loss under torch.autocast
of that type, the peer of bertforge's --mixed_precision; fp16 adds a GradScaler (dynamic loss scaling) on a GPU,
and is not available on a CPU in this PyTorch (nothing is printed then).
"""
import math
import sys

import torch
import torch.nn.functional as F

from bench_timing import median_seconds

PRESETS = {  # layers, hidden, heads, FFN: models/bert_config.h
    "tiny": (2, 128, 2, 512),
    "mini": (4, 256, 4, 1024),
    "base": (12, 768, 12, 3072),
}
VOCAB, MAX_POSITIONS, TYPES, DROPOUT, EPS = 30522, 512, 2, 0.1, 1e-12


class Layer(torch.nn.Module):
    def __init__(self, hidden, heads, ffn):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = (torch.nn.Linear(hidden, hidden) for _ in range(3))
        self.attention_output = torch.nn.Linear(hidden, hidden)
        self.attention_norm = torch.nn.LayerNorm(hidden, eps=EPS)
        self.intermediate = torch.nn.Linear(hidden, ffn)
        self.output = torch.nn.Linear(ffn, hidden)
        self.output_norm = torch.nn.LayerNorm(hidden, eps=EPS)

    def forward(self, x, extended_mask):
        B, T, C = x.shape
        d = C // self.heads

        def split(t):  # (B, T, C) -> (B, H, T, d)
            return t.view(B, T, self.heads, d).permute(0, 2, 1, 3)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d) + extended_mask
        probs = F.dropout(F.softmax(scores, dim=-1), DROPOUT, self.training)
        context = torch.matmul(probs, v).permute(0, 2, 1, 3).reshape(B, T, C)
        a = self.attention_norm(F.dropout(self.attention_output(context), DROPOUT, self.training) + x)
        h = F.gelu(self.intermediate(a))
        return self.output_norm(F.dropout(self.output(h), DROPOUT, self.training) + a)


class BertForMaskedLM(torch.nn.Module):
    def __init__(self, layers, hidden, heads, ffn):
        super().__init__()
        self.word = torch.nn.Embedding(VOCAB, hidden, padding_idx=0)
        self.position = torch.nn.Embedding(MAX_POSITIONS, hidden)
        self.token_type = torch.nn.Embedding(TYPES, hidden)
        self.embedding_norm = torch.nn.LayerNorm(hidden, eps=EPS)
        self.layers = torch.nn.ModuleList(Layer(hidden, heads, ffn) for _ in range(layers))
        self.transform = torch.nn.Linear(hidden, hidden)
        self.transform_norm = torch.nn.LayerNorm(hidden, eps=EPS)
        self.decoder_bias = torch.nn.Parameter(torch.zeros(VOCAB))
        for module in self.modules():  # Hugging Face's _init_weights
            if isinstance(module, (torch.nn.Linear, torch.nn.Embedding)):
                module.weight.data.normal_(0.0, 0.02)
            if isinstance(module, torch.nn.Linear):
                module.bias.data.zero_()

    def forward(self, ids, token_types, attention_mask, labels, labelled_rows_only):
        B, T = ids.shape
        positions = torch.arange(T, device=ids.device).unsqueeze(0)
        x = self.word(ids) + self.token_type(token_types) + self.position(positions)
        x = F.dropout(self.embedding_norm(x), DROPOUT, self.training)
        extended_mask = (1.0 - attention_mask[:, None, None, :]) * torch.finfo(torch.float32).min
        for layer in self.layers:
            x = layer(x, extended_mask)
        x, labels = x.reshape(B * T, -1), labels.reshape(B * T)
        if labelled_rows_only:
            rows = (labels != -100).nonzero().squeeze(1)
            x, labels = x.index_select(0, rows), labels.index_select(0, rows)
        # .float(): a no-op in FP32 and what CUDA autocast does before layer_norm; torch 1.13's CPU autocast
        # leaves this one bf16 and layer_norm then refuses its FP32 weight.
        h = self.transform_norm(F.gelu(self.transform(x)).float())
        logits = F.linear(h, self.word.weight, self.decoder_bias)
        return F.cross_entropy(logits, labels, ignore_index=-100)


def main():
    threads, warmup, repeats = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    preset, batch, seq = sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
    labelled_rows_only = {"all": False, "labelled": True}[sys.argv[7]]
    device = torch.device(sys.argv[8])
    autocast = sys.argv[9] if len(sys.argv) > 9 else "none"
    if autocast == "fp16" and device.type == "cpu":
        return  # CPU autocast supports bfloat16 only in torch 1.13
    autocast_dtype = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[autocast]
    scaler = torch.cuda.amp.GradScaler() if autocast == "fp16" else None
    torch.set_num_threads(threads)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.manual_seed(0)
    model = BertForMaskedLM(*PRESETS[preset]).to(device)
    model.train()
    no_decay = [p for n, p in model.named_parameters() if p.dim() == 1]
    decay = [p for n, p in model.named_parameters() if p.dim() > 1]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                                  lr=1e-4, eps=1e-6)

    gen = torch.Generator().manual_seed(7)
    ids = torch.randint(1000, VOCAB, (batch, seq), generator=gen)
    labels = torch.where(torch.rand(batch, seq, generator=gen) < 0.15, ids, torch.full_like(ids, -100))
    token_types = torch.zeros_like(ids)
    attention_mask = torch.ones(batch, seq)
    ids, labels, token_types, attention_mask = (t.to(device) for t in (ids, labels, token_types, attention_mask))

    def step():
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            loss = model(ids, token_types, attention_mask, labels, labelled_rows_only)
        if scaler is None:
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            scaler.step(optimizer)
            scaler.update()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()

    seconds = median_seconds(step, warmup, repeats)
    print("parameters", sum(p.numel() for p in model.parameters()))
    print("step_seconds", seconds)


if __name__ == "__main__":
    main()
