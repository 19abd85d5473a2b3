// quant/channel_fold.h — exact folding of per-input-channel scales into post-LN BERT: the one mechanism behind
// SmoothQuant-style migration, Outlier Suppression's gamma migration and AWQ (quant/migration.h, quant/awq.h).
//
// A Linear y = x W^T + b computes the same y from x diag(1/s) and W diag(s) for any s (K) with no zero entry.
// Quantization prefers the pair whose outlier channels are tamer; folding makes the model compute it exactly.
// The question is where 1/s goes: into the op that produces x. Per encoder layer, four groups of Linears share
// an input (C hidden channels, I intermediate channels):
//
//   group        Linears                      producer of the input and how it absorbs 1/s
//   qkv          attention.self.{query,key,   the LayerNorm before: the embeddings' (layer 0) or layer l-1's
//                value} (and the gated          output.LayerNorm. gamma /= s, beta /= s. Post-LN: that LayerNorm's
//                variant's gate weight)         output is also layer l's attention residual, which multiplies it
//                                               back by s (BertLayer::FoldedScales::attention_residual *= s)
//   context      attention.output.dense       value: its weight rows and bias /= s (P V mixes tokens, not
//                                               channels; head gates and head dropout are per-head scalars)
//   ffn_input    intermediate.dense           attention.output.LayerNorm: gamma, beta /= s, and the FFN residual
//                                               multiplies a back by s (FoldedScales::ffn_residual *= s)
//   gelu_output  output.dense                 nothing can (GELU is not homogeneous): the layer multiplies the GELU
//                                               output by 1/s (FoldedScales::gelu_output /= s)
// and every Linear of the group has its input columns multiplied by s (W[:, j] *= s_j; the gate weight
// (H, d) of head h, entry j: *= s[h d + j]). The folded model computes the original's function up to float
// rounding (tests/quant/test_channel_fold.cpp: hidden states and logits within 1e-5 relative), and folds compose:
// folding s then t equals folding s * t. Inside the layers the activations do change: the tap points see the folded
// ones (a LayerNorm output divided by s, what a quantizer reads), so the outlier metrics that bert_eval reports for
// a folded model describe those, except the last layer's output, which is never folded.
//
// In checkpoints the per-channel multiplies that remain are FP tensors next to the parameters,
//   bert.encoder.layer.<i>.folded.{attention_residual, ffn_residual, gelu_output}
// (the multiplier itself); folded_scale_tensors() writes them, take_folded_scales() reads them back (it also reads
// the earlier AWQ form "bert.encoder.layer.<i>.output.dense.awq_input_scale" = s, i.e. gelu_output = 1/s).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/tensor.h"
#include "models/bert.h"
#include "models/bert_layer.h"
#include "models/encoder_linears.h"
#include "models/module.h"

namespace bertforge::quant {

// The Linear groups of a layer that share an input (file comment), in forward order.
enum class FoldGroup { kQkv, kContext, kFfnInput, kGeluOutput };
inline constexpr FoldGroup kFoldGroups[] = {FoldGroup::kQkv, FoldGroup::kContext, FoldGroup::kFfnInput,
                                            FoldGroup::kGeluOutput};
const char* fold_group_name(FoldGroup group);  // "qkv", "context", "ffn_input", "gelu_output"
// What absorbs 1/s: "layernorm", "value", "layernorm", "gelu*1/s".
const char* fold_group_producer(FoldGroup group);
// The Linears of `group` (rows of models/encoder_linears.h), in forward order: query, key, value for kQkv.
std::vector<EncoderLinearInfo> fold_group_linears(FoldGroup group);

// 1 / s element-wise: s F32 (K) with no zero entry -> F32 (K) on the CPU.
Tensor reciprocal(const Tensor& s);

// The weights of `group`'s Linears in encoder layer `layer`, stacked by rows: F32 (sum of N, K) on the CPU; the
// Linears are in fold_group_linears order.
Tensor group_weight(const BertForMaskedLM& model, int64_t layer, FoldGroup group);

// The input scales of one layer's groups; an undefined tensor leaves that group as it is.
struct LayerInputScales {
  Tensor qkv;          // (C)
  Tensor context;      // (C)
  Tensor ffn_input;    // (C)
  Tensor gelu_output;  // (I)

  Tensor& at(FoldGroup group);
  const Tensor& at(FoldGroup group) const;
};

// Folds `scales` (one entry per encoder layer, or fewer: the rest stay as they are) into `model` in place, as the
// file comment says. Each scale: F32 of its group's width, every entry finite and non-zero (negative is fine: gamma
// migration folds a LayerNorm's signed gamma). InvalidArgument naming the layer and group otherwise, and nothing
// is changed. The model must run in floating point (no Linear forward overrides).
absl::Status fold_input_scales(BertForMaskedLM& model, const std::vector<LayerInputScales>& scales);

// A copy of `model` (same config and head, parameters and folded scales copied, eval mode, no hook, CPU).
std::unique_ptr<BertForMaskedLM> clone_bert(const BertForMaskedLM& model);

// "bert.encoder.layer.<layer>.folded.<kind>", kind one of attention_residual, ffn_residual, gelu_output.
std::string folded_scale_name(int64_t layer, const char* kind);
// The folded scales the model holds, under those names (none for an unfolded model).
StateDict folded_scale_tensors(const BertForMaskedLM& model);
// Takes every "*.folded.*" and legacy "*.output.dense.awq_input_scale" tensor out of `tensors` and returns the
// folded scales of each of `config`'s layers. InvalidArgument for a bad name or layer, a wrong dtype or shape, a
// value that is not finite and non-zero, or a scale given twice.
absl::StatusOr<std::vector<BertLayer::FoldedScales>> take_folded_scales(StateDict& tensors, const BertConfig& config);
// Sets each layer's folded scales (as many layers as `scales` has).
void install_folded_scales(BertForMaskedLM& model, const std::vector<BertLayer::FoldedScales>& scales);
// The number of layers with at least one folded multiply.
int64_t folded_layer_count(const BertForMaskedLM& model);

}  // namespace bertforge::quant
