// Post-training activation quantization of BERT (W8A8's "A8", the seed paper's uniform PTQ): calibrate a range
// per tap point, then fake-quantize every tap point during evaluation.
//
//   ActivationRangeTable ranges = *calibrate_activations(model, train_loader, {observer, batches});
//   ActivationQuantizer quantizer = *ActivationQuantizer::create(ranges, num_layers, {bits, exclude});
//   PerplexityResult ppl = evaluate_fake_quant_perplexity(model, validation_loader, quantizer);
//
// Calibration runs the encoder (eval mode, no grad) on the loader's next N batches, with an activation hook
// (models/forward_context.h) that feeds one observer per tap site and returns the activation unchanged; the
// observers stream, so memory does not depend on N. Every element counts, padding positions included (they
// flow through the quantized model just the same). The MLM head has no tap points: it stays in floating point,
// as the seed's decoder does.
//
// The quantizer's hook replaces each tap site's activation by its fake quantization (quant/activation_quant.h)
// with the parameters of the calibrated range; excluded points pass through unchanged. It is for no-grad
// evaluation: with grad mode on it throws, since the replacement has no gradient.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/json.h"
#include "models/bert.h"
#include "models/forward_context.h"
#include "quant/activation_quant.h"
#include "quant/observers.h"
#include "train/data_loader.h"
#include "train/evaluation.h"

namespace bertforge {

// The calibrated range of each tap site, by full name ("embeddings.sum", "layer.0.query", ...), in forward order.
struct ActivationRangeTable {
  std::string observer;  // the observer kind that produced the ranges ("minmax", ...), for the record
  int64_t batches = 0;   // calibration batches
  std::vector<std::pair<std::string, ActivationRange>> ranges;

  // The range called `name`, or nullptr.
  const ActivationRange* find(const std::string& name) const;

  // {"observer": "minmax", "batches": 16, "ranges": {"embeddings.sum": [min, max], ...}}; floats survive the
  // round trip exactly (JSON numbers are doubles).
  Json to_json() const;
  static absl::StatusOr<ActivationRangeTable> from_json(const Json& json);
};

struct CalibrationOptions {
  ObserverOptions observer;  // kind and its settings; observer.bits is the width an MSE search optimises for
  int64_t batches = 16;      // N >= 1 batches taken with loader.next()
};

// Runs the encoder on the next `options.batches` batches of `loader` (which advances) and returns every tap
// site's range. The model's training mode and hook are restored afterwards; its probe, if any, also sees the
// calibration batches.
absl::StatusOr<ActivationRangeTable> calibrate_activations(BertForMaskedLM& model, DataLoader& loader,
                                                           const CalibrationOptions& options);
// The same on the given batches (at least one; options.batches is not used).
absl::StatusOr<ActivationRangeTable> calibrate_activations(BertForMaskedLM& model,
                                                           const std::vector<MlmBatch>& batches,
                                                           const CalibrationOptions& options);

struct ActivationQuantOptions {
  int bits = 8;  // 2..16 (8, 6 and 4 in the experiments)
  // Tap points left in floating point: a point name ("attention_scores": that point of every layer) or a full
  // name ("layer.0.gelu", "embeddings.sum"). A name that matches no site is an error (typos don't pass).
  std::vector<std::string> exclude;
};

class ActivationQuantizer {
 public:
  // The parameters of every site of a `num_layers`-layer model; every site that is not excluded needs a range.
  static absl::StatusOr<ActivationQuantizer> create(const ActivationRangeTable& ranges, int64_t num_layers,
                                                    const ActivationQuantOptions& options);

  // The hook for BertForMaskedLM::set_hook. It holds the parameters itself (it may outlive the quantizer).
  ActivationHook hook() const;

  // The parameters of `site`, or nullptr where it stays in floating point.
  const ActivationQuantParams* params(const TapSite& site) const;
  int bits() const { return bits_; }
  int64_t num_layers() const { return num_layers_; }

 private:
  ActivationQuantizer() = default;
  int bits_ = 8;
  int64_t num_layers_ = 0;
  // Indexed by TapSite::index(); nullopt-like: quantize[i] false where the site stays FP.
  struct Entry {
    bool quantize = false;
    ActivationQuantParams params;
  };
  std::shared_ptr<const std::vector<Entry>> entries_;
};

// Sets `hook` on `model` for the scope, then puts back the hook it had before.
class ScopedActivationHook {
 public:
  ScopedActivationHook(BertForMaskedLM& model, ActivationHook hook) : model_(model), previous_(model.hook()) {
    model_.set_hook(std::move(hook));
  }
  ~ScopedActivationHook() { model_.set_hook(std::move(previous_)); }
  ScopedActivationHook(const ScopedActivationHook&) = delete;
  ScopedActivationHook& operator=(const ScopedActivationHook&) = delete;

 private:
  BertForMaskedLM& model_;
  ActivationHook previous_;
};

// evaluate_perplexity (train/evaluation.h) with the quantizer's hook set for the call; the quantizer must be built
// for the model's number of layers.
PerplexityResult evaluate_fake_quant_perplexity(BertForMaskedLM& model, DataLoader& loader,
                                                const ActivationQuantizer& quantizer, int64_t max_batches = 0);

}  // namespace bertforge
