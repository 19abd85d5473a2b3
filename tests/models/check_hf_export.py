#!/usr/bin/env python3
"""Loads a directory written by tools/export_hf.py with transformers' BertForMaskedLM and checks that its logits
equal bertforge's, for tests/models/test_hf_export.cpp (which writes the checkpoint and the expected logits).

    PYTHON tests/models/check_hf_export.py EXPORTED_DIR EXPECTED.safetensors --tolerance 1e-5

EXPECTED holds input_ids, token_type_ids, attention_mask (int64, (B, T)) and logits (float32, (B, T, V)), all
computed by bertforge. Checks: the load reports no missing, unexpected or mismatched tensor (the tied decoder
is tied, not missing); max |transformers - bertforge| over every logit is within the tolerance; with a
vocab.txt in the directory, BertTokenizer loads it with the model's vocabulary size.

Exit status: 0 on a match, 1 on a mismatch, 77 when transformers (or torch) cannot be imported, which ctest and
the gtest read as "skipped".
"""
import argparse
import os
import sys

SKIP = 77


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("exported")
    parser.add_argument("expected")
    parser.add_argument("--tolerance", type=float, required=True)
    args = parser.parse_args()
    try:
        import torch
        import transformers
        from safetensors.torch import load_file
        from transformers import BertForMaskedLM, BertTokenizer
    except ImportError as e:
        print(f"check_hf_export: skipped: cannot import transformers/torch/safetensors ({e}); "
              "scripts/setup.sh makes .venv with them")
        return SKIP
    if not transformers.utils.is_torch_available():
        print(f"check_hf_export: skipped: transformers {transformers.__version__} disables torch {torch.__version__}")
        return SKIP

    model, info = BertForMaskedLM.from_pretrained(args.exported, output_loading_info=True,
                                                  attn_implementation="eager", torch_dtype=torch.float32)
    model.eval()
    problems = {k: v for k, v in info.items() if v}
    if problems:
        print(f"check_hf_export: FAIL: transformers' load reports {problems}")
        return 1
    if model.cls.predictions.decoder.weight.data_ptr() != model.bert.embeddings.word_embeddings.weight.data_ptr():
        print("check_hf_export: FAIL: the decoder is not tied to the word embeddings")
        return 1

    expected = load_file(args.expected)
    with torch.no_grad():
        logits = model(input_ids=expected["input_ids"], token_type_ids=expected["token_type_ids"],
                       attention_mask=expected["attention_mask"]).logits
    want = expected["logits"]
    if logits.shape != want.shape:
        print(f"check_hf_export: FAIL: logits {tuple(logits.shape)}, expected {tuple(want.shape)}")
        return 1
    error = (logits - want).abs().max().item()
    print(f"check_hf_export: transformers {transformers.__version__}: max |transformers - bertforge| logit = "
          f"{error:.3g} over {want.numel()} logits (|logit| up to {want.abs().max().item():.2f}, tolerance "
          f"{args.tolerance:g})")
    if not error <= args.tolerance:
        return 1

    has_vocab = os.path.isfile(os.path.join(args.exported, "vocab.txt"))  # exported with --vocab
    tokenizer = BertTokenizer.from_pretrained(args.exported) if has_vocab else None
    if tokenizer is not None and len(tokenizer) != model.config.vocab_size:
        print(f"check_hf_export: FAIL: the tokenizer has {len(tokenizer)} tokens, the model {model.config.vocab_size}")
        return 1
    print(f"check_hf_export: ok{' (tokenizer loaded)' if tokenizer is not None else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
