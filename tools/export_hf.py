#!/usr/bin/env python3
"""export_hf: turns a bertforge checkpoint into a directory that transformers loads as BertForMaskedLM.

    python3 tools/export_hf.py CHECKPOINT OUT_DIR [--vocab vocab.txt] [--config config.json]

CHECKPOINT is what bert_eval takes: a run directory RUN (its latest checkpoint), a checkpoint directory
RUN/checkpoints/step-N, or a model.safetensors file. The config defaults to a config.json beside the model file,
else RUN/config.json (what bert_train writes). OUT_DIR gets:

    model.safetensors  the weights, unchanged (bertforge already uses Hugging Face's names, with the decoder tied
                       to the word embeddings, as transformers saves it)
    config.json        the Hugging Face fields, "architectures": ["BertForMaskedLM"] (["BertModel"] for an
                       encoder-only checkpoint), "model_type": "bert"; the bertforge_* fields are dropped
    vocab.txt, tokenizer_config.json   with --vocab (e.g. DATA/vocab.txt from bert_prep): an uncased BertTokenizer

then, in Python:  transformers.BertForMaskedLM.from_pretrained(OUT_DIR), BertTokenizer.from_pretrained(OUT_DIR).

transformers' BERT has softmax attention only. A clipped_softmax checkpoint is refused (transformers would
silently compute plain softmax attention: other numbers, no error), and so is a gated one (its per-head gate
parameters have no place in BertForMaskedLM), as is any tensor that is not a Hugging Face BERT parameter
(e.g. a quantized checkpoint's .qweight/.scales). Head dropout is training-only (the identity at inference), so
it only draws a warning. Needs nothing but the Python standard library.
"""
import argparse
import json
import os
import re
import shutil
import struct
import sys

HF_NAMES = re.compile(
    r"bert\.embeddings\.(word_embeddings|position_embeddings|token_type_embeddings)\.weight"
    r"|bert\.embeddings\.LayerNorm\.(weight|bias)"
    r"|bert\.embeddings\.position_ids"
    r"|bert\.encoder\.layer\.\d+\.(attention\.self\.(query|key|value)|attention\.output\.dense|intermediate\.dense"
    r"|output\.dense|attention\.output\.LayerNorm|output\.LayerNorm)\.(weight|bias)"
    r"|bert\.pooler\.dense\.(weight|bias)"
    r"|cls\.predictions\.(bias|decoder\.(weight|bias)|transform\.(dense|LayerNorm)\.(weight|bias))")

WHY_NOT = {
    "clipped_softmax": "transformers' BertForMaskedLM has only softmax attention, so it would silently compute "
                       "something else (plain softmax instead of clip((zeta - gamma) softmax + gamma, 0, 1))",
    "gated": "transformers' BertForMaskedLM has only softmax attention and no place for the per-head gate "
             "parameters (attention.self.gate.*)",
}


class ExportError(Exception):
    pass


def resolve(checkpoint, config):
    """(model.safetensors path, config.json path) of CHECKPOINT, as bert_eval finds them."""
    if not os.path.exists(checkpoint):
        raise ExportError(f"no such checkpoint: {checkpoint}")
    path = checkpoint
    if os.path.isdir(path):
        if os.path.isdir(os.path.join(path, "checkpoints")):  # a run directory: its latest checkpoint
            latest = os.path.join(path, "checkpoints", "latest")
            if not os.path.isfile(latest):
                raise ExportError(f"{path} has no checkpoint (no {latest})")
            with open(latest) as f:
                path = os.path.join(path, "checkpoints", f.read().strip())
        path = os.path.join(path, "model.safetensors")
        if not os.path.isfile(path):
            raise ExportError(f"{checkpoint} holds no model.safetensors")
    if config:
        return path, config
    here = os.path.dirname(os.path.abspath(path))
    run_dir = os.path.dirname(os.path.dirname(here))  # RUN for RUN/checkpoints/step-N/model.safetensors
    candidates = [os.path.join(here, "config.json"), os.path.join(run_dir, "config.json")]
    for candidate in candidates:
        if os.path.isfile(candidate):
            return path, candidate
    raise ExportError(f"no config.json beside {path} nor at {candidates[1]}; give --config")


def read_header(path):
    """(header length, header dict) of a safetensors file."""
    with open(path, "rb") as f:
        prefix = f.read(8)
        if len(prefix) != 8:
            raise ExportError(f"{path}: not a safetensors file (shorter than 8 bytes)")
        (n,) = struct.unpack("<Q", prefix)
        if n > 100_000_000 or n > os.path.getsize(path) - 8:
            raise ExportError(f"{path}: not a safetensors file (header length {n})")
        try:
            return n, json.loads(f.read(n))
        except ValueError as e:
            raise ExportError(f"{path}: malformed safetensors header: {e}")


def copy_weights(src, dst):
    """Copies src to dst; transformers needs "__metadata__" {"format": "pt"}, so a file without it gets it."""
    n, header = read_header(src)
    metadata = header.get("__metadata__") or {}
    if metadata.get("format") == "pt":
        shutil.copyfile(src, dst)
        return
    header["__metadata__"] = dict(metadata, format="pt")
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    with open(src, "rb") as f, open(dst, "wb") as out:
        f.seek(8 + n)
        out.write(struct.pack("<Q", len(encoded)) + encoded)
        shutil.copyfileobj(f, out)


def hf_config(config):
    """The config.json transformers reads: the Hugging Face fields of a bertforge config."""
    attention = config.get("bertforge_attention", "softmax")
    if attention != "softmax":
        raise ExportError(f"the checkpoint uses {attention} attention: {WHY_NOT.get(attention, 'unknown variant')}. "
                          "Only softmax-attention checkpoints can be exported to transformers.")
    if config.get("bertforge_head_dropout_prob", 0) > 0:
        print("export_hf: warning: head dropout (bertforge_head_dropout_prob) is dropped: it is the identity at "
              "inference, but transformers has no DropHead, so training the exported model there differs",
              file=sys.stderr)
    for key, want in (("hidden_act", "gelu"), ("position_embedding_type", "absolute")):
        if config.get(key, want) != want:
            raise ExportError(f"config {key} is {config[key]!r}; bertforge only knows {want!r}")
    out = {k: v for k, v in config.items() if not k.startswith("bertforge_")}
    out.update({"model_type": "bert", "hidden_act": "gelu", "position_embedding_type": "absolute",
                "tie_word_embeddings": True, "torch_dtype": "float32"})
    return out


def export(checkpoint, out_dir, vocab=None, config_path=None):
    weights, config_path = resolve(checkpoint, config_path)
    with open(config_path) as f:
        config = hf_config(json.load(f))
    _, header = read_header(weights)
    names = [name for name in header if name != "__metadata__"]
    foreign = [name for name in names if not HF_NAMES.fullmatch(name)]
    if foreign:
        shown = ", ".join(foreign[:8]) + (f", ... ({len(foreign)} in all)" if len(foreign) > 8 else "")
        raise ExportError(f"{weights} holds tensors that are not Hugging Face BERT parameters: {shown}. "
                          "(Gated attention? A quantized checkpoint?) transformers cannot load them.")
    if not any(name.startswith("bert.embeddings.") for name in names):
        raise ExportError(f"{weights} holds no bert.embeddings.*: not a bertforge BERT checkpoint")
    mlm_head = any(name.startswith("cls.predictions.") for name in names)
    config["architectures"] = ["BertForMaskedLM" if mlm_head else "BertModel"]
    if vocab is not None:
        with open(vocab, encoding="utf-8") as f:
            tokens = f.read().split("\n")  # one token a line, as BertTokenizer reads it
        if tokens and tokens[-1] == "":
            tokens.pop()
        if len(tokens) != config.get("vocab_size"):
            raise ExportError(f"{vocab} has {len(tokens)} tokens but the model's vocab_size is "
                              f"{config.get('vocab_size')}")

    os.makedirs(out_dir, exist_ok=True)
    copy_weights(weights, os.path.join(out_dir, "model.safetensors"))
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    if vocab is not None:
        shutil.copyfile(vocab, os.path.join(out_dir, "vocab.txt"))
        with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
            # bertforge's WordPiece tokenizer is BERT-uncased's (train/tokenizer.h).
            json.dump({"tokenizer_class": "BertTokenizer", "do_lower_case": True,
                       "model_max_length": config.get("max_position_embeddings", 512)}, f, indent=2)
            f.write("\n")
    print(f"export_hf: {weights} -> {out_dir} ({config['architectures'][0]}, {len(names)} tensors"
          f"{', with vocab.txt' if vocab else ''})")


def main():
    parser = argparse.ArgumentParser(description="Export a bertforge checkpoint for transformers' BertForMaskedLM.")
    parser.add_argument("checkpoint", help="RUN, RUN/checkpoints/step-N or a model.safetensors")
    parser.add_argument("out_dir", help="the directory to write (created if missing)")
    parser.add_argument("--vocab", help="vocab.txt to ship with the model (e.g. DATA/vocab.txt from bert_prep)")
    parser.add_argument("--config", help="the model's config.json (default: beside the model, else RUN/config.json)")
    args = parser.parse_args()
    try:
        export(args.checkpoint, args.out_dir, args.vocab, args.config)
    except (ExportError, OSError, ValueError) as e:
        print(f"export_hf: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
