#!/usr/bin/env python3
"""export_hf: turns a bertforge checkpoint into a directory that transformers loads (BertForMaskedLM, or BertModel
for an encoder-only checkpoint).

    python3 tools/export_hf.py CHECKPOINT OUT_DIR [--vocab vocab.txt] [--config config.json] [--dequantize]

CHECKPOINT is what bert_eval takes: a run directory RUN (its latest checkpoint), a checkpoint directory
RUN/checkpoints/step-N, or a model.safetensors file. The config defaults to a config.json beside the model file,
else RUN/config.json (what bert_train writes). OUT_DIR gets:

    model.safetensors  the weights under Hugging Face's names, values unchanged (bertforge already uses those names,
                       with the decoder tied to the word embeddings, as transformers saves it), "__metadata__"
                       {"format": "pt"}
    config.json        the Hugging Face fields, "model_type": "bert" and "architectures": ["BertForMaskedLM"], or
                       ["BertModel"] for an encoder-only checkpoint (no cls.predictions.*); the bertforge_* fields
                       are dropped
    vocab.txt, tokenizer_config.json   with --vocab (e.g. DATA/vocab.txt from bert_prep): an uncased BertTokenizer

then, in Python:  transformers.BertForMaskedLM.from_pretrained(OUT_DIR) (BertModel for an encoder-only one),
BertTokenizer.from_pretrained(OUT_DIR).

Encoder-only checkpoints (BertModel: sentence-transformers' all-MiniLM-L6-v2, names without the "bert." prefix and
with a pooler; or a bertforge model without its MLM head, names with "bert.") export as BertModel, names as they
are (transformers maps either form). bertforge keeps no pooler, so a bertforge encoder-only checkpoint has none:
transformers then initialises BertModel's pooler at random (and says so); the hidden states do not use it.

Quantized checkpoints (bert_quant's output, quant/quantized_checkpoint.h: encoder Linear weights stored as integer
codes X.qweight with X.scales (and X.zeros), their schemes in "__metadata__"["bertforge.quant"]) are refused as
they are: transformers' BERT holds float weights only, with no integer Linear to run the codes. --dequantize
exports the weights the quantized model computes with, w = s * (q - z) in float32, as bert_eval's fake
quantization dequantizes them. Activation quantization (model.activations.json) has no place in transformers, so
the exported model runs FP activations: it equals bertforge's fake-quantized model exactly when activations were
not quantized (--activation_bits 0, AWQ), and is otherwise the weight-quantized model only (a warning says so).
Checkpoints folded by migration or AWQ (quant/channel_fold.h) also carry per-channel multiplies
(*.folded.{attention_residual, ffn_residual, gelu_output}, or the earlier *.output.dense.awq_input_scale) that
BERT lacks; they are folded back into the weights, exactly up to float rounding:
    gelu_output g      output.dense weight columns *= g
    attention_residual r  the LayerNorm before the layer (the embeddings' for layer 0): gamma, beta *= r;
                          query, key, value weight columns /= r
    ffn_residual r     attention.output.LayerNorm: gamma, beta *= r; intermediate.dense weight columns /= r

transformers' BERT has softmax attention only. A clipped_softmax checkpoint is refused (transformers would
silently compute plain softmax attention: other numbers, no error), and so is a gated one (its per-head gate
parameters have no place in BertForMaskedLM), as is any other tensor that is not a Hugging Face BERT parameter.
Head dropout is training-only (the identity at inference), so it only draws a warning. Needs nothing but the
Python standard library.
"""
import argparse
import array
import json
import math
import os
import re
import shutil
import struct
import sys

ENCODER = (
    r"embeddings\.(word_embeddings|position_embeddings|token_type_embeddings)\.weight"
    r"|embeddings\.LayerNorm\.(weight|bias)"
    r"|embeddings\.position_ids"
    r"|encoder\.layer\.\d+\.(attention\.self\.(query|key|value)|attention\.output\.dense|intermediate\.dense"
    r"|output\.dense|attention\.output\.LayerNorm|output\.LayerNorm)\.(weight|bias)"
    r"|pooler\.dense\.(weight|bias)")
MLM_HEAD = r"cls\.predictions\.(bias|decoder\.(weight|bias)|transform\.(dense|LayerNorm)\.(weight|bias))"
HF_NAMES = re.compile(rf"(bert\.)?({ENCODER})|{MLM_HEAD}")
# What folding leaves (quant/channel_fold.h): (prefix, layer, kind).
FOLDED = re.compile(r"(bert\.)?encoder\.layer\.(\d+)\.(?:folded\.(attention_residual|ffn_residual|gelu_output)"
                    r"|output\.dense\.(awq_input_scale))")
QUANT_METADATA = "bertforge.quant"  # quant/quantized_checkpoint.h
QUANT_SUFFIXES = (".qweight", ".scales", ".zeros")

WHY_NOT = {
    "clipped_softmax": "transformers' BertForMaskedLM has only softmax attention, so it would silently compute "
                       "something else (plain softmax instead of clip((zeta - gamma) softmax + gamma, 0, 1))",
    "gated": "transformers' BertForMaskedLM has only softmax attention and no place for the per-head gate "
             "parameters (attention.self.gate.*)",
}
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


class ExportError(Exception):
    pass


class Tensor:
    """A safetensors entry: dtype name, shape, raw little-endian bytes."""

    def __init__(self, dtype, shape, data):
        self.dtype, self.shape, self.data = dtype, list(shape), data

    def numel(self):
        return math.prod(self.shape)

    def floats(self, name):
        """The values of F32 tensor `name` as array('f')."""
        if self.dtype != "F32":
            raise ExportError(f"{name} is {self.dtype}, expected F32")
        values = array.array("f", self.data)
        if sys.byteorder != "little":
            values.byteswap()
        return values

    @staticmethod
    def from_floats(shape, values):
        values = array.array("f", values)
        if sys.byteorder != "little":
            values.byteswap()
        return Tensor("F32", shape, values.tobytes())


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


def read_safetensors(path):
    """(metadata dict, {name: Tensor} in file order) of a safetensors file."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ExportError(f"{path}: not a safetensors file (shorter than 8 bytes)")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > 100_000_000 or n > len(raw) - 8:
        raise ExportError(f"{path}: not a safetensors file (header length {n})")
    try:
        header = json.loads(raw[8:8 + n])
    except ValueError as e:
        raise ExportError(f"{path}: malformed safetensors header: {e}")
    metadata = header.pop("__metadata__", None) or {}
    tensors = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        size = DTYPE_BYTES.get(entry["dtype"])
        if size is None or end - begin != size * math.prod(entry["shape"]) or 8 + n + end > len(raw):
            raise ExportError(f"{path}: tensor {name} ({entry['dtype']} {entry['shape']}) has bad data offsets")
        tensors[name] = Tensor(entry["dtype"], entry["shape"], raw[8 + n + begin:8 + n + end])
    return metadata, tensors


def write_safetensors(path, tensors):
    """Writes {name: Tensor} with "__metadata__" {"format": "pt"}, which transformers needs."""
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, t in tensors.items():
        header[name] = {"dtype": t.dtype, "shape": t.shape, "data_offsets": [offset, offset + len(t.data)]}
        offset += len(t.data)
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(encoded)) + encoded)
        for t in tensors.values():
            out.write(t.data)


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


def quantized_name(param, suffix):
    """quant/quantized_checkpoint.h: "X.weight" + ".qweight" -> "X.qweight"."""
    return (param[:-len(".weight")] if param.endswith(".weight") else param) + suffix


def dequantize(weights, param, spec, tensors):
    """The F32 Tensor s * (q - z) of quantized parameter `param` (quant/weight_quant.h's layout), taking its
    .qweight, .scales and .zeros out of `tensors`."""
    try:
        rows, cols = spec["shape"]
        scheme = spec["scheme"]
        bits, symmetric, granularity = scheme["bits"], scheme["symmetric"], scheme["granularity"]
        group = scheme.get("group_size", cols) if granularity == "per_group" else cols
    except (KeyError, TypeError, ValueError) as e:
        raise ExportError(f"{weights}: bad {QUANT_METADATA} entry for {param}: {spec!r} ({e!r})")
    packed = bits <= 4
    groups = -(-cols // group)
    n_scales = {"per_tensor": 1, "per_channel": rows, "per_group": rows * groups}.get(granularity)
    row_bytes = (cols + 1) // 2 if packed else cols
    qweight = tensors.pop(quantized_name(param, ".qweight"), None)
    scales = tensors.pop(quantized_name(param, ".scales"), None)
    zeros = None if symmetric else tensors.pop(quantized_name(param, ".zeros"), None)
    if (qweight is None or scales is None or (zeros is None and not symmetric) or n_scales is None
            or len(qweight.data) != rows * row_bytes or scales.numel() != n_scales
            or (zeros is not None and zeros.numel() != n_scales)):
        raise ExportError(f"{weights}: the codes, scales or zero points of {param} ({scheme}, shape [{rows}, {cols}]) "
                          "are missing or of the wrong size")
    s = scales.floats(quantized_name(param, ".scales"))
    z = zeros.data if zeros is not None else bytes(n_scales)
    codes_of = array.array("b" if symmetric else "B")
    values = array.array("f")
    for n in range(rows):
        row = qweight.data[n * row_bytes:(n + 1) * row_bytes]
        if packed:  # two codes per byte, column 2j in the low nibble; symmetric codes are 4-bit two's complement
            codes = [0] * cols
            codes[0::2] = [b & 15 for b in row][:(cols + 1) // 2]
            codes[1::2] = [b >> 4 for b in row][:cols // 2]
            if symmetric:
                codes = [c - 16 if c >= 8 else c for c in codes]
        else:
            codes = array.array(codes_of.typecode, row)
        for g in range(groups):
            b = 0 if granularity == "per_tensor" else (n if granularity == "per_channel" else n * groups + g)
            scale, zero = s[b], z[b]
            values.extend([(c - zero) * scale for c in codes[g * group:(g + 1) * group]])
    return Tensor.from_floats([rows, cols], values)


def scale_columns(tensors, name, factors, divide=False):
    """Multiplies (or divides) column j of the F32 matrix `name` by factors[j]."""
    t = tensors[name]
    rows, cols = t.shape
    if cols != len(factors):
        raise ExportError(f"{name} has {cols} columns, its folded scale {len(factors)} channels")
    f = [1 / x for x in factors] if divide else list(factors)
    w = t.floats(name)
    tensors[name] = Tensor.from_floats(t.shape, [v * f[j % cols] for j, v in enumerate(w)])


def scale_vector(tensors, name, factors):
    t = tensors[name]
    tensors[name] = Tensor.from_floats(t.shape, [v * f for v, f in zip(t.floats(name), factors)])


def unfold(weights, tensors):
    """Folds each per-channel multiply that channel folding left back into the weights (see the file comment);
    returns how many."""
    folded = [(name, FOLDED.fullmatch(name)) for name in list(tensors)]
    folded = [(name, m) for name, m in folded if m]
    for name, m in folded:
        prefix, layer = m.group(1) or "", int(m.group(2))
        kind = m.group(3) or "gelu_output"
        factors = tensors.pop(name).floats(name)
        if m.group(4):  # the earlier AWQ form holds s, the multiply is 1/s
            factors = array.array("f", [1 / x for x in factors])
        if any(x == 0 or not math.isfinite(x) for x in factors):
            raise ExportError(f"{weights}: {name} holds a zero or non-finite scale")
        here = f"{prefix}encoder.layer.{layer}."
        try:
            if kind == "gelu_output":
                scale_columns(tensors, here + "output.dense.weight", factors)
                continue
            if kind == "attention_residual":
                norm = (f"{prefix}embeddings.LayerNorm" if layer == 0
                        else f"{prefix}encoder.layer.{layer - 1}.output.LayerNorm")
                readers = [here + f"attention.self.{p}.weight" for p in ("query", "key", "value")]
            else:  # ffn_residual
                norm, readers = here + "attention.output.LayerNorm", [here + "intermediate.dense.weight"]
            for suffix in (".weight", ".bias"):
                scale_vector(tensors, norm + suffix, factors)
            for reader in readers:
                scale_columns(tensors, reader, factors, divide=True)
        except KeyError as e:
            raise ExportError(f"{weights}: {name} is folded into {e.args[0]}, which the checkpoint lacks")
    return len(folded)


def activation_bits(weights):
    """The activation bits of the quantized model's model.activations.json (quant/quantized_model.h), or None."""
    sibling = weights[:-len(".safetensors")] + ".activations.json" if weights.endswith(".safetensors") else None
    if sibling is None or not os.path.isfile(sibling):
        return None
    with open(sibling) as f:
        return json.load(f).get("activation_bits")


def load_weights(weights, dequantize_codes):
    """{name: Tensor} of the model file with Hugging Face BERT parameters only: quantized weights dequantized (with
    --dequantize) and folded multiplies folded back; a quantized checkpoint without --dequantize is refused."""
    metadata, tensors = read_safetensors(weights)
    quant = metadata.get(QUANT_METADATA)
    if quant is not None or any(name.endswith(QUANT_SUFFIXES) for name in tensors):
        try:
            specs = json.loads(quant)["tensors"] if quant is not None else {}
        except (ValueError, KeyError, TypeError) as e:
            raise ExportError(f"{weights}: malformed {QUANT_METADATA} metadata: {e!r}")
        schemes = sorted({json.dumps(spec.get("scheme"), sort_keys=True) for spec in specs.values()})
        what = (f"a quantized checkpoint (bert_quant's output: {len(specs)} weights stored as integer codes + scales, "
                f"{', '.join(schemes) or 'no scheme in its metadata'})")
        if not dequantize_codes:
            raise ExportError(f"{weights} is {what}. transformers' BERT holds float weights only and has no integer "
                              "Linear to run the codes, so they cannot be exported as they are; --dequantize exports "
                              "the weights the quantized model computes with (codes * scales, float32)")
        if quant is None:
            raise ExportError(f"{weights} holds {', '.join(n for n in tensors if n.endswith(QUANT_SUFFIXES))[:200]} "
                              f"but no {QUANT_METADATA} metadata saying how they are quantized")
        dequantized = {param: dequantize(weights, param, spec, tensors) for param, spec in specs.items()}
        bits = activation_bits(weights)
        if bits != 0:
            print(f"export_hf: warning: {weights}'s activations are quantized in bertforge "
                  f"({'activation_bits ' + str(bits) if bits else 'model.activations.json not found'}); "
                  "transformers runs them in float32, so the export is the weight-quantized model only",
                  file=sys.stderr)
        tensors.update(dequantized)
    elif dequantize_codes:
        raise ExportError(f"{weights} is not a quantized checkpoint (no {QUANT_METADATA} metadata): "
                          "--dequantize is for bert_quant's output")
    folds = unfold(weights, tensors)
    if folds:
        print(f"export_hf: folded {folds} per-channel multiplies of channel folding back into the weights",
              file=sys.stderr)
    return tensors


def export(checkpoint, out_dir, vocab=None, config_path=None, dequantize_codes=False):
    weights, config_path = resolve(checkpoint, config_path)
    with open(config_path) as f:
        config = hf_config(json.load(f))
    tensors = load_weights(weights, dequantize_codes)
    names = list(tensors)
    foreign = [name for name in names if not HF_NAMES.fullmatch(name)]
    if foreign:
        shown = ", ".join(foreign[:8]) + (f", ... ({len(foreign)} in all)" if len(foreign) > 8 else "")
        raise ExportError(f"{weights} holds tensors that are not Hugging Face BERT parameters: {shown}. "
                          "transformers cannot load them.")
    prefixed = any(name.startswith("bert.") for name in names)
    unprefixed = any(re.match(r"(embeddings|encoder|pooler)\.", name) for name in names)
    if prefixed and unprefixed:
        raise ExportError(f"{weights} mixes bert.-prefixed names (BertForMaskedLM) with unprefixed ones (BertModel)")
    if not any(re.match(r"(bert\.)?embeddings\.", name) for name in names):
        raise ExportError(f"{weights} holds no embeddings (bert.embeddings.* or embeddings.*): not a BERT checkpoint")
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
    write_safetensors(os.path.join(out_dir, "model.safetensors"), tensors)
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
          f"{', dequantized' if dequantize_codes else ''}{', with vocab.txt' if vocab else ''})")


def main():
    parser = argparse.ArgumentParser(description="Export a bertforge checkpoint for transformers' BertForMaskedLM "
                                                 "(or BertModel, for an encoder-only checkpoint).")
    parser.add_argument("checkpoint", help="RUN, RUN/checkpoints/step-N or a model.safetensors")
    parser.add_argument("out_dir", help="the directory to write (created if missing)")
    parser.add_argument("--vocab", help="vocab.txt to ship with the model (e.g. DATA/vocab.txt from bert_prep)")
    parser.add_argument("--config", help="the model's config.json (default: beside the model, else RUN/config.json)")
    parser.add_argument("--dequantize", action="store_true",
                        help="a quantized checkpoint (bert_quant's output): export its weights dequantized to float32")
    args = parser.parse_args()
    try:
        export(args.checkpoint, args.out_dir, args.vocab, args.config, args.dequantize)
    except (ExportError, OSError, ValueError) as e:
        print(f"export_hf: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
