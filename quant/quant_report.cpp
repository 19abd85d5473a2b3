// quant/quant_report.cpp — bert_quant's report: its tables, its JSON object and its SQNR warning
// (quant/quant_report.h).
#include "quant/quant_report.h"

#include <cstdio>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "core/check.h"
#include "models/encoder_linears.h"
#include "models/forward_context.h"
#include "quant/calibration.h"
#include "quant/channel_fold.h"

namespace bertforge::quant {
namespace {

// "bert.encoder.layer.0.attention.self.query.weight" -> "layer.0.attention.self.query".
std::string short_weight_name(absl::string_view name) {
  absl::ConsumePrefix(&name, "bert.encoder.");
  absl::ConsumeSuffix(&name, ".weight");
  return std::string(name);
}

// What absorbs an AWQ-scaled Linear's 1/s ("layernorm", "value", "gelu*1/s"), or "unscaled".
const char* awq_scaled_name(const AwqLinearReport& w) {
  return w.alpha > 0 ? fold_group_producer(w.group) : "unscaled";
}

// "layer.0 qkv" for a group of a layer.
std::string group_label(int64_t layer, FoldGroup group) {
  return absl::StrCat("layer.", layer, " ", fold_group_name(group));
}

// Whether `site` is the input of one of the six encoder Linears of a layer (models/encoder_linears.h).
bool is_linear_input(const TapSite& site, int64_t num_layers) {
  for (int64_t l = 0; l < num_layers; ++l) {
    for (const EncoderLinearInfo& linear : kEncoderLinears) {
      if (linear.input_site(l).index() == site.index()) return true;
    }
  }
  return false;
}

void print_migration_table(const QuantReport& r) {
  std::printf("%-24s %-9s %5s %19s %15s %23s\n", ("migration (" + r.migration_method + ")").c_str(), "into",
              "alpha", "max|x| before/after", "max/median", "output error before/after");
  for (const MigrationGroupReport& g : r.migration.groups) {
    std::printf("%-24s %-9s %5s %9.3f/%-9.3f %6.1f/%-8.1f %11.4e/%-11.4e\n", group_label(g.layer, g.group).c_str(),
                g.migrated ? fold_group_producer(g.group) : "-",
                g.migrated && r.migration_method == "smooth" ? absl::StrFormat("%.2f", g.alpha).c_str() : "-",
                g.input_max_before, g.input_max_after, g.outlier_ratio_before, g.outlier_ratio_after, g.error_before,
                g.error_after);
  }
  std::printf("(statistics of %lld calibration tokens; output error of the group's Linears on a sample of them, "
              "weights and activations fake-quantized as the scheme says)\n\n",
              static_cast<long long>(r.migration.calibration_tokens));
}

void print_clipping_table(const QuantReport& r) {
  std::printf("\n%-32s %21s %21s %8s %23s\n", "token-wise clipping", "min-max range", "clipped range", "quantile",
              "output error min-max/clipped");
  for (const ClippingReport& c : r.ptq.clipping) {
    const TokenwiseClippingResult& t = c.result;
    std::printf("%-32s [%8.3f, %8.3f] [%8.3f, %8.3f] %8.4f %11.4e/%-11.4e\n", c.site.c_str(), t.minmax_range.min,
                t.minmax_range.max, t.range.min, t.range.max, t.coarse_quantile, t.minmax_error, t.fine_error);
  }
}

void print_awq_table(const QuantReport& r) {
  std::printf("%-44s %-10s %-9s %5s %15s %11s %11s %7s\n", "weight (AWQ)", "shape", "scaled", "alpha",
              "clip min/mean/max", "MSE RTN", "MSE AWQ", "ratio");
  for (const AwqLinearReport& w : r.awq_result.linears) {
    std::printf("%-44s %-10s %-9s %5.2f %4.2f/%4.2f/%4.2f %11.4e %11.4e %7.3f\n", short_weight_name(w.name).c_str(),
                absl::StrCat(w.rows, "x", w.cols).c_str(), awq_scaled_name(w), w.alpha, w.clip_min,
                w.clip_mean, w.clip_max, w.rtn_mse, w.awq_mse, w.rtn_mse > 0 ? w.awq_mse / w.rtn_mse : 1.0);
  }
  std::printf("(output MSE per element on %lld calibration tokens sampled of %lld; \"scaled\": what absorbs 1/s, "
              "query/key/value share one scale)\n",
              static_cast<long long>(r.awq_result.linears.empty() ? 0 : r.awq_result.linears.front().samples),
              static_cast<long long>(r.awq_result.calibration_tokens));
}

void print_ptq_tables(const QuantReport& r) {
  std::printf("%-44s %-10s %-34s %9s\n", "weight", "shape", "scheme", "SQNR dB");
  for (const WeightQuantReport& w : r.ptq.weights) {
    std::printf("%-44s %-10s %-34s %9.2f\n", short_weight_name(w.name).c_str(),
                absl::StrCat(w.rows, "x", w.cols).c_str(), w.scheme.str().c_str(), w.sqnr_db);
  }
  const ActivationQuantSpec& spec = r.ptq.activations;
  if (spec.quantized() && !spec.has_ranges()) {
    std::printf("\nactivations: %d-bit per token, computed at run time, at the %s\n", spec.bits,
                activation_scope_name(spec.scope));
  } else if (spec.quantized()) {
    absl::StatusOr<ActivationQuantizer> quantizer = ActivationQuantizer::create(
        spec.calibration, r.num_layers, ActivationQuantOptions{spec.bits, spec.exclude});
    BF_CHECK(quantizer.ok(), quantizer.status().ToString());  // quantize_ptq checked it
    std::printf("\n%-44s %12s %12s %12s %6s\n", "activation", "min", "max", "scale", "zero");
    for (const TapSite& site : all_tap_sites(r.num_layers)) {
      if (spec.scope == ActivationScope::kLinearInputs && !is_linear_input(site, r.num_layers)) continue;
      const ActivationRange& range = *spec.calibration.find(site.name());
      const ActivationQuantParams* p = quantizer->params(site);
      if (p == nullptr) {
        std::printf("%-44s %12.4f %12.4f %12s %6s\n", site.name().c_str(), range.min, range.max, "FP", "-");
      } else {
        std::printf("%-44s %12.4f %12.4f %12.6f %6d\n", site.name().c_str(), range.min, range.max, p->scale,
                    p->zero_point);
      }
    }
  } else {
    std::printf("\nactivations: FP (--activation_bits 0)\n");
  }
  if (!r.ptq.clipping.empty()) print_clipping_table(r);
}

void print_hidden(const char* label, const HiddenStateAgreement& h) {
  std::printf("%-32s %12.2f dB SQNR, mean cosine %.6f\n", label, h.sqnr_db, h.mean_cosine);
}

// The recipe of README.md "W8A8 that survives a real BERT".
constexpr const char* kRecipe = "--granularity per_channel --activation_scope linear_inputs "
                                "--activation_granularity per_token --migration smooth --migration_alpha search";

bool is_recipe(const PtqOptions& options, const MigrationOptions& migration) {
  return options.weights.granularity == Granularity::kPerChannel &&
         options.scope == ActivationScope::kLinearInputs &&
         options.granularity == ActivationGranularity::kPerToken &&
         migration.method == MigrationMethod::kSmooth && migration.search_alpha;
}

}  // namespace

void print_quant_report(const QuantReport& r) {
  if (r.migration_method != "none") print_migration_table(r);
  if (r.awq) {
    print_awq_table(r);
    std::printf("\nactivations: FP (AWQ is weight-only)\n");
  } else {
    print_ptq_tables(r);
  }
  std::printf("\nscheme: %s\n", r.scheme.c_str());
  std::printf("%-32s %12.3f MB -> %.3f MB (%.2fx smaller)\n", "model size", r.fp_bytes / 1e6,
              r.quantized_bytes / 1e6, static_cast<double>(r.fp_bytes) / static_cast<double>(r.quantized_bytes));
  if (r.has_perplexity) {
    std::printf("%-32s %12.4f\n", "FP perplexity", r.fp.perplexity);
    if (r.awq) {
      std::printf("%-32s %12.4f (%+.2f%%)\n", "RTN perplexity", r.rtn.perplexity,
                  100.0 * (r.rtn.perplexity / r.fp.perplexity - 1.0));
    }
    std::printf("%-32s %12.4f (%+.2f%%)\n", "quantized perplexity", r.quantized.perplexity,
                100.0 * (r.quantized.perplexity / r.fp.perplexity - 1.0));
    std::printf("(%lld masked tokens, %lld validation batches)\n", static_cast<long long>(r.fp.scored_tokens),
                static_cast<long long>(r.fp.batches));
  } else {
    std::printf("%-32s %12s (encoder-only model: no MLM head)\n", "perplexity", "n/a");
  }
  if (r.awq) print_hidden("RTN hidden state vs FP", r.rtn_hidden);
  print_hidden("quantized hidden state vs FP", r.hidden);
  if (r.int8_hidden.has_value()) {
    print_hidden("int8-executed hidden state vs FP", *r.int8_hidden);
  } else {
    std::printf("%-32s %12s (%s)\n", "int8-executed hidden state", "n/a", r.int8_unavailable.c_str());
  }
  std::printf("(final hidden state over %lld real tokens of %lld validation batches, MLM masking undone)\n",
              static_cast<long long>(r.hidden.tokens), static_cast<long long>(r.hidden.batches));
}

Json quant_report_json(const QuantReport& r, const std::string& out) {
  Json j = Json::object();
  j.set("out", out);
  j.set("method", r.awq ? "awq" : "ptq");
  j.set("scheme", r.scheme);
  Json weights = Json::array();
  for (const AwqLinearReport& w : r.awq_result.linears) {
    Json row = Json::object();
    row.set("name", w.name);
    row.set("shape", Json(Json::Array{Json(w.rows), Json(w.cols)}));
    row.set("scheme", w.scheme.to_json());
    row.set("group", fold_group_name(w.group));
    row.set("scaled", awq_scaled_name(w));
    row.set("alpha", w.alpha);
    row.set("clip", Json(Json::Array{Json(double(w.clip_min)), Json(double(w.clip_mean)), Json(double(w.clip_max))}));
    row.set("rtn_mse", w.rtn_mse);
    row.set("scaled_mse", w.scaled_mse);
    row.set("awq_mse", w.awq_mse);
    weights.push_back(std::move(row));
  }
  const auto perplexity = [&](const PerplexityResult& p) { return r.has_perplexity ? Json(p.perplexity) : Json(); };
  if (r.awq) {
    j.set("rtn_perplexity", perplexity(r.rtn));
    j.set("rtn_hidden_sqnr_db", r.rtn_hidden.sqnr_db);
    j.set("rtn_hidden_cosine", r.rtn_hidden.mean_cosine);
  }
  for (const WeightQuantReport& w : r.ptq.weights) {
    Json row = Json::object();
    row.set("name", w.name);
    row.set("shape", Json(Json::Array{Json(w.rows), Json(w.cols)}));
    row.set("scheme", w.scheme.to_json());
    row.set("sqnr_db", w.sqnr_db);
    weights.push_back(std::move(row));
  }
  j.set("weights", std::move(weights));
  j.set("activations", r.ptq.activations.to_json());
  j.set("fp_bytes", r.fp_bytes);
  j.set("quantized_bytes", r.quantized_bytes);
  j.set("fp_perplexity", perplexity(r.fp));
  j.set("quantized_perplexity", perplexity(r.quantized));
  j.set("scored_tokens", r.fp.scored_tokens);
  j.set("hidden_sqnr_db", r.hidden.sqnr_db);
  j.set("hidden_cosine", r.hidden.mean_cosine);
  j.set("hidden_tokens", r.hidden.tokens);
  j.set("int8_hidden_sqnr_db", r.int8_hidden.has_value() ? Json(r.int8_hidden->sqnr_db) : Json());
  j.set("int8_hidden_cosine", r.int8_hidden.has_value() ? Json(r.int8_hidden->mean_cosine) : Json());
  if (!r.int8_hidden.has_value()) j.set("int8_unavailable", r.int8_unavailable);
  Json migration = Json::object();
  migration.set("method", r.migration_method);
  Json groups = Json::array();
  for (const MigrationGroupReport& g : r.migration.groups) {
    Json row = Json::object();
    row.set("layer", g.layer);
    row.set("group", fold_group_name(g.group));
    row.set("migrated", g.migrated);
    row.set("alpha", g.alpha);
    row.set("input_max", Json(Json::Array{Json(double(g.input_max_before)), Json(double(g.input_max_after))}));
    row.set("outlier_ratio",
            Json(Json::Array{Json(double(g.outlier_ratio_before)), Json(double(g.outlier_ratio_after))}));
    row.set("output_error", Json(Json::Array{Json(g.error_before), Json(g.error_after)}));
    groups.push_back(std::move(row));
  }
  migration.set("groups", std::move(groups));
  j.set("migration", std::move(migration));
  Json clipping = Json::array();
  for (const ClippingReport& c : r.ptq.clipping) {
    Json row = Json::object();
    row.set("site", c.site);
    row.set("minmax_range", Json(Json::Array{Json(double(c.result.minmax_range.min)),
                                             Json(double(c.result.minmax_range.max))}));
    row.set("range", Json(Json::Array{Json(double(c.result.range.min)), Json(double(c.result.range.max))}));
    row.set("coarse_quantile", c.result.coarse_quantile);
    row.set("minmax_error", c.result.minmax_error);
    row.set("coarse_error", c.result.coarse_error);
    row.set("fine_error", c.result.fine_error);
    clipping.push_back(std::move(row));
  }
  j.set("clipping", std::move(clipping));
  j.set("vocab", r.vocab);
  j.set("warn_sqnr_db", r.warn_sqnr_db);
  Json warnings = Json::array();
  for (const std::string& w : r.warnings) warnings.push_back(Json(w));
  j.set("warnings", std::move(warnings));
  return j;
}

std::optional<std::string> sqnr_warning(const QuantReport& r, const PtqOptions& options,
                                        const MigrationOptions& migration) {
  const bool int8_low = r.int8_hidden.has_value() && r.int8_hidden->sqnr_db < r.warn_sqnr_db;
  if (!(r.hidden.sqnr_db < r.warn_sqnr_db) && !int8_low) return std::nullopt;
  std::string measured = absl::StrFormat("%.2f dB", r.hidden.sqnr_db);
  if (r.int8_hidden.has_value()) {
    absl::StrAppendFormat(&measured, " (executed in int8: %.2f dB)", r.int8_hidden->sqnr_db);
  }
  std::string hint;
  if (r.awq || options.activation_bits == 0) {
    hint = "the weights alone lose it: try more --weight_bits, --granularity per_channel, or --method awq";
  } else if (is_recipe(options, migration)) {
    hint = "this is already README.md's \"W8A8 that survives a real BERT\" recipe: try more --calibration_batches, "
           "or --activation_bits 0 to see whether the weights or the activations lose it";
  } else {
    hint = absl::StrCat("for a real BERT's activation outliers use README.md's \"W8A8 that survives a real BERT\" "
                        "recipe: ", kRecipe);
  }
  return absl::StrCat("the quantized model's final hidden state is ", measured, " SQNR against FP, below ",
                      "--warn_sqnr_db ", absl::StrFormat("%g", r.warn_sqnr_db),
                      ": it has lost the FP model's hidden state; ", hint);
}

}  // namespace bertforge::quant
