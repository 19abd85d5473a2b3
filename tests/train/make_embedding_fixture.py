#!/usr/bin/env python3
"""Writes tests/train/fixtures/minilm_sentence_embeddings.safetensors: the sentence embeddings of all-MiniLM-L6-v2
for the sentences below, as sentence-transformers computes them, for tests/train/test_sentence_embedding.cpp.

sentence-transformers is not needed: its pipeline for this model (modules.json: Transformer, Pooling, Normalize)
is reproduced with transformers alone:
    tokenizer(sentences, padding=True, truncation=True, max_length=256)   # sentence_bert_config.json's 256
    h = BertModel(...).last_hidden_state                                  # eval mode, eager attention, float32
    e = sum_t mask_t h_t / clamp(sum_t mask_t, min=1e-9)                  # Pooling(pooling_mode_mean_tokens)
    e = torch.nn.functional.normalize(e, p=2, dim=1)                      # Normalize
The tokenizer is AutoTokenizer (the fast one, which sentence-transformers loads); the script checks that the slow
BertTokenizer gives the same ids.

The model is not committed: scripts/fetch_minilm.sh puts it in .cache/minilm/. Run from the repository root:
    .venv/bin/python tests/train/make_embedding_fixture.py [--model .cache/minilm]

The file holds:
    input_ids    int32 (N, T)   [CLS] ... [SEP] then [PAD] (0), T the longest sentence (256: one is truncated)
    lengths      int32 (N)      tokens of each sentence, [CLS] and [SEP] included
    embeddings   float32 (N, 384)
and in "__metadata__": "sentences" (a JSON list of the raw text), "max_seq_len", and the versions used.
"""
import argparse
import hashlib
import json
import os

import torch
import transformers
from safetensors.torch import save_file
from transformers import AutoTokenizer, BertModel, BertTokenizer

MAX_SEQ_LEN = 256

# Long enough (over 300 word pieces) to be truncated to MAX_SEQ_LEN.
LONG_SENTENCE = " ".join(
    ["The committee, having reviewed the 2023 budget in detail, concluded that spending on infrastructure "
     "(roads, bridges, and public transport) should rise by 12.5% while administrative costs fall;"] * 8)

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "A fast, brown fox leapt over a sleepy dog!",
    "How do I reset my password?",
    "Forgot my password \u2014 how can I change it?",
    "Caf\u00e9 cr\u00e8me, na\u00efve fa\u00e7ade: Zo\u00eb's r\u00e9sum\u00e9 was d\u00e9j\u00e0 vu.",
    "Stra\u00dfe, \u00c5ngstr\u00f6m and S\u00e3o Paulo appear in multilingual text.",
    "THE STOCK MARKET FELL BY 3.5% ON TUESDAY, WIPING OUT $1,200,000,000.",
    "In 1969, Apollo 11 landed on the Moon; 600 million people watched it live.",
    "E = mc^2 (Einstein, 1905)... well, approximately!?",
    "Tokenizers split unfamiliar words like 'bioluminescence' into word pieces.",
    "\u6771\u4eac\u306f\u65e5\u672c\u306e\u9996\u90fd\u3067\u3059\u3002",
    "Hello, world.",
    LONG_SENTENCE,
]

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=os.path.join(ROOT, ".cache", "minilm"), help="the model directory")
    parser.add_argument("--out", default=os.path.join(HERE, "fixtures", "minilm_sentence_embeddings.safetensors"))
    args = parser.parse_args()

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    batch = tokenizer(SENTENCES, padding=True, truncation=True, max_length=MAX_SEQ_LEN, return_tensors="pt")
    slow = BertTokenizer.from_pretrained(args.model)
    slow_batch = slow(SENTENCES, padding=True, truncation=True, max_length=MAX_SEQ_LEN, return_tensors="pt")
    assert torch.equal(batch["input_ids"], slow_batch["input_ids"]), "fast and slow tokenizers disagree"

    model = BertModel.from_pretrained(args.model, attn_implementation="eager", torch_dtype=torch.float32).eval()
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / torch.clamp(mask.sum(1), min=1e-9)
    embeddings = torch.nn.functional.normalize(pooled, p=2, dim=1)

    with open(os.path.join(args.model, "model.safetensors"), "rb") as f:
        model_sha256 = hashlib.sha256(f.read()).hexdigest()
    tensors = {
        "input_ids": batch["input_ids"].to(torch.int32).contiguous(),
        "lengths": batch["attention_mask"].sum(1).to(torch.int32).contiguous(),
        "embeddings": embeddings.to(torch.float32).contiguous(),
    }
    metadata = {
        "sentences": json.dumps(SENTENCES),
        "max_seq_len": str(MAX_SEQ_LEN),
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "model_sha256": model_sha256,
    }
    save_file(tensors, args.out, metadata=metadata)
    os.chmod(args.out, 0o644)  # save_file creates it private
    print(f"wrote {args.out}: input_ids {tuple(batch['input_ids'].shape)}, lengths {tensors['lengths'].tolist()}, "
          f"embeddings {tuple(embeddings.shape)}")


if __name__ == "__main__":
    main()
