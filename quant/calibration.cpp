// Calibration of activation ranges at the model's tap points, and the fake-quantizing hook (see calibration.h).
#include "quant/calibration.h"

#include <set>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "autograd/grad_mode.h"
#include "core/check.h"

namespace bertforge {

// ---- ActivationRangeTable -----------------------------------------------------------------------------------

const ActivationRange* ActivationRangeTable::find(const std::string& name) const {
  for (const auto& [n, range] : ranges) {
    if (n == name) return &range;
  }
  return nullptr;
}

Json ActivationRangeTable::to_json() const {
  Json table = Json::object();
  for (const auto& [name, range] : ranges) {
    Json pair = Json::array();
    pair.push_back(static_cast<double>(range.min));
    pair.push_back(static_cast<double>(range.max));
    table.set(name, std::move(pair));
  }
  Json j = Json::object();
  j.set("observer", observer);
  j.set("batches", batches);
  j.set("ranges", std::move(table));
  return j;
}

absl::StatusOr<ActivationRangeTable> ActivationRangeTable::from_json(const Json& json) {
  const Json* observer = json.is_object() ? json.get("observer") : nullptr;
  const Json* batches = json.is_object() ? json.get("batches") : nullptr;
  const Json* ranges = json.is_object() ? json.get("ranges") : nullptr;
  if (observer == nullptr || !observer->is_string() || batches == nullptr || !batches->is_int64() ||
      ranges == nullptr || !ranges->is_object()) {
    return absl::InvalidArgumentError(
        "activation ranges: expected {\"observer\": string, \"batches\": int, \"ranges\": {name: [min, max]}}");
  }
  ActivationRangeTable table;
  table.observer = observer->as_string();
  table.batches = batches->as_int64();
  for (const auto& [name, value] : ranges->as_object()) {
    if (!value.is_array() || value.as_array().size() != 2 || !value.as_array()[0].is_number() ||
        !value.as_array()[1].is_number()) {
      return absl::InvalidArgumentError(absl::StrCat("activation ranges: '", name, "' must be [min, max]"));
    }
    const ActivationRange range{static_cast<float>(value.as_array()[0].as_number()),
                                static_cast<float>(value.as_array()[1].as_number())};
    if (!(range.min <= range.max) || !std::isfinite(range.min) || !std::isfinite(range.max)) {
      return absl::InvalidArgumentError(
          absl::StrCat("activation ranges: '", name, "' has [", range.min, ", ", range.max, "]"));
    }
    table.ranges.emplace_back(name, range);
  }
  return table;
}

// ---- Calibration --------------------------------------------------------------------------------------------

absl::StatusOr<ActivationRangeTable> calibrate_activations(BertForMaskedLM& model, DataLoader& loader,
                                                           const CalibrationOptions& options) {
  if (options.batches < 1) {
    return absl::InvalidArgumentError(absl::StrCat("calibration needs at least 1 batch, got ", options.batches));
  }
  std::vector<MlmBatch> batches;
  for (int64_t b = 0; b < options.batches; ++b) batches.push_back(loader.next());
  return calibrate_activations(model, batches, options);
}

absl::StatusOr<ActivationRangeTable> calibrate_activations(BertForMaskedLM& model,
                                                           const std::vector<MlmBatch>& batches,
                                                           const CalibrationOptions& options) {
  BF_RETURN_IF_ERROR(options.observer.validate());
  if (batches.empty()) return absl::InvalidArgumentError("calibration needs at least 1 batch, got 0");
  const std::vector<TapSite> sites = all_tap_sites(model.config().num_hidden_layers);
  std::vector<std::unique_ptr<Observer>> observers;
  for (size_t i = 0; i < sites.size(); ++i) observers.push_back(make_observer(options.observer));

  {
    autograd::NoGradGuard no_grad;
    const ScopedEvalMode eval_mode(model);
    const ScopedActivationHook hook(model, [&observers](const TapSite& site, const Tensor& value) {
      observers[site.index()]->observe(value);
      return value;
    });
    for (const MlmBatch& batch : batches) model.encode(batch.input_ids, batch.token_type_ids, batch.attention_mask);
  }

  ActivationRangeTable table;
  table.observer = observer_kind_name(options.observer.kind);
  table.batches = static_cast<int64_t>(batches.size());
  for (size_t i = 0; i < sites.size(); ++i) {
    if (!observers[i]->has_data()) {
      return absl::FailedPreconditionError(
          absl::StrCat("calibration: no finite value reached ", sites[i].name()));
    }
    table.ranges.emplace_back(sites[i].name(), observers[i]->range());
  }
  return table;
}

// ---- ActivationQuantizer ------------------------------------------------------------------------------------

absl::StatusOr<ActivationQuantizer> ActivationQuantizer::create(const ActivationRangeTable& ranges,
                                                                int64_t num_layers,
                                                                const ActivationQuantOptions& options) {
  if (options.bits < 2 || options.bits > 16) {
    return absl::InvalidArgumentError(absl::StrCat("activation bits must be in [2, 16], got ", options.bits));
  }
  const std::set<std::string> exclude(options.exclude.begin(), options.exclude.end());
  std::set<std::string> matched;
  const std::vector<TapSite> sites = all_tap_sites(num_layers);
  auto entries = std::make_shared<std::vector<Entry>>(sites.size());
  for (const TapSite& site : sites) {
    const std::string name = site.name();
    const char* point = tap_point_name(site.point);
    const bool excluded_by_point = exclude.count(point) > 0, excluded_by_name = exclude.count(name) > 0;
    if (excluded_by_point) matched.insert(point);
    if (excluded_by_name) matched.insert(name);
    if (excluded_by_point || excluded_by_name) continue;
    const ActivationRange* range = ranges.find(name);
    if (range == nullptr) {
      return absl::NotFoundError(absl::StrCat("activation quantization: no calibrated range for ", name));
    }
    Entry& entry = (*entries)[site.index()];
    entry.quantize = true;
    entry.params = ActivationQuantParams::from_range(*range, options.bits);
  }
  for (const std::string& name : exclude) {
    if (matched.count(name) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("activation quantization: excluded point '", name, "' matches no tap site"));
    }
  }
  ActivationQuantizer quantizer;
  quantizer.bits_ = options.bits;
  quantizer.num_layers_ = num_layers;
  quantizer.entries_ = std::move(entries);
  return quantizer;
}

const ActivationQuantParams* ActivationQuantizer::params(const TapSite& site) const {
  const int64_t i = site.index();
  if (i < 0 || i >= static_cast<int64_t>(entries_->size()) || !(*entries_)[i].quantize) return nullptr;
  return &(*entries_)[i].params;
}

ActivationHook ActivationQuantizer::hook() const {
  return [entries = entries_](const TapSite& site, const Tensor& value) -> Tensor {
    const int64_t i = site.index();
    BF_CHECK(i >= 0 && i < static_cast<int64_t>(entries->size()), "activation quantizer: tap site ", site.name(),
             " is beyond the ", entries->size(), " sites it was built for");
    const Entry& entry = (*entries)[i];
    if (!entry.quantize) return value;
    BF_CHECK(!autograd::GradMode::is_enabled(),
             "activation quantizer: fake quantization is for no-grad evaluation (it has no gradient); at ",
             site.name());
    return fake_quantize_activation(value, entry.params);
  };
}

namespace {
void check_layers(const BertForMaskedLM& model, const ActivationQuantizer& quantizer) {
  BF_CHECK(model.config().num_hidden_layers == quantizer.num_layers(), "activation quantizer built for ",
           quantizer.num_layers(), " layers, the model has ", model.config().num_hidden_layers);
}
}  // namespace

PerplexityResult evaluate_fake_quant_perplexity(BertForMaskedLM& model, DataLoader& loader,
                                                const ActivationQuantizer& quantizer, int64_t max_batches) {
  check_layers(model, quantizer);
  const ScopedActivationHook hook(model, quantizer.hook());
  return evaluate_perplexity(model, loader, max_batches);
}

}  // namespace bertforge
