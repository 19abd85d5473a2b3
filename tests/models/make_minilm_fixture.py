#!/usr/bin/env python3
"""Writes tests/models/fixtures/minilm_hidden_states.safetensors: the last hidden state of the real Hugging Face
BertModel all-MiniLM-L6-v2 on a padded batch of four English sentences, computed by transformers, for
tests/models/test_minilm.cpp (which loads the same model into bertforge and compares).

The model itself is not committed: scripts/fetch_minilm.sh puts it in .cache/minilm/. Run, from the repository
root, with a Python that has transformers (scripts/setup.sh makes .venv with it, on top of Debian's
python3-torch):
    scripts/fetch_minilm.sh
    .venv/bin/python tests/models/make_minilm_fixture.py [--model .cache/minilm]

The tokenizer is transformers' BertTokenizer (the Python WordPiece reference) with the model's vocab.txt, and
the model runs in eval mode with eager attention, in float32.

The file holds:
    input_ids          int64 (B, T)   [CLS] ... [SEP] then [PAD] (0) up to the longest sentence
    attention_mask     int64 (B, T)   1 for tokens, 0 for padding
    token_type_ids     int64 (B, T)   all 0 (one segment)
    last_hidden_state  float32 (B, T, 384), padding positions included
and in "__metadata__": "sentences" (a JSON list, the raw text of each row) and the versions used.
"""
import argparse
import hashlib
import json
import os

import torch
import transformers
from safetensors.torch import save_file
from transformers import BertModel, BertTokenizer

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "In 1867, Alaska was purchased from Russia for $7.2 million!",
    "Tokenizers split unfamiliar words like 'bioluminescence' into word pieces.",
    "Hello, world.",
]

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=os.path.join(ROOT, ".cache", "minilm"), help="the model directory")
    parser.add_argument("--out", default=os.path.join(HERE, "fixtures", "minilm_hidden_states.safetensors"))
    args = parser.parse_args()

    tokenizer = BertTokenizer.from_pretrained(args.model)
    model = BertModel.from_pretrained(args.model, attn_implementation="eager", torch_dtype=torch.float32).eval()
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt", return_token_type_ids=True)
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state

    with open(os.path.join(args.model, "model.safetensors"), "rb") as f:
        model_sha256 = hashlib.sha256(f.read()).hexdigest()
    tensors = {
        "input_ids": batch["input_ids"].to(torch.int64).contiguous(),
        "attention_mask": batch["attention_mask"].to(torch.int64).contiguous(),
        "token_type_ids": batch["token_type_ids"].to(torch.int64).contiguous(),
        "last_hidden_state": hidden.to(torch.float32).contiguous(),
    }
    metadata = {
        "sentences": json.dumps(SENTENCES),
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "model_sha256": model_sha256,
    }
    save_file(tensors, args.out, metadata=metadata)
    os.chmod(args.out, 0o644)  # save_file creates it private
    print(f"wrote {args.out}: input_ids {tuple(batch['input_ids'].shape)}, "
          f"last_hidden_state {tuple(hidden.shape)}, max |h| {hidden.abs().max().item():.3f}")


if __name__ == "__main__":
    main()
