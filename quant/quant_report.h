// quant/quant_report.h — what bert_quant reports about one quantization: QuantReport (filled in by the tool as it
// quantizes, writes and evaluates), its tables (stdout) and its JSON object (--json, and OUT/quant_report.json).
//
// Tables, in this order (print_quant_report):
//   migration      (--migration smooth|gamma) per layer and Linear group: what absorbs the scales, alpha (smooth),
//                  max|x| and the max/median channel ratio of the group's input before/after, the W8A8 output error
//                  before/after (quant/migration.h)
//   weight (AWQ)   (awq) per Linear: shape, what absorbs 1/s ("layernorm", "value", "gelu*1/s", or "unscaled"),
//                  alpha, clip ratios min/mean/max, calibration output MSE of RTN and of AWQ, AWQ/RTN (quant/awq.h)
//   weight         (ptq) per quantized weight: shape, scheme, SQNR dB; then the activations: per tap point in scope
//                  its calibrated min/max and scale/zero point ("FP" when excluded), or one line for per-token or FP
//                  activations; then token-wise clipping per Linear input when used (quant/tokenwise_clipping.h)
//   summary        scheme, model size before/after, FP / RTN (awq) / quantized perplexity ("n/a" for an
//                  encoder-only model), final hidden state vs FP (SQNR dB, mean cosine): RTN (awq), quantized,
//                  int8-executed ("n/a" and why when the scheme cannot run in integers)
//
// JSON object (quant_report_json):
//   out, method ("ptq" | "awq"), scheme, vocab (the vocab.txt copied into OUT), warn_sqnr_db, warnings [text]
//   weights     awq: [{name, shape [rows, cols], scheme, group, scaled, alpha, clip [min, mean, max], rtn_mse,
//               scaled_mse, awq_mse}]; ptq: [{name, shape, scheme, sqnr_db}]
//   rtn_perplexity, rtn_hidden_sqnr_db, rtn_hidden_cosine          awq only
//   activations                                                     ActivationQuantSpec::to_json
//   fp_bytes, quantized_bytes, fp_perplexity, quantized_perplexity (null without an MLM head), scored_tokens
//   hidden_sqnr_db, hidden_cosine, hidden_tokens; int8_hidden_sqnr_db, int8_hidden_cosine (null when not
//   int8-executable, then int8_unavailable says why)
//   migration   {method, groups [{layer, group, migrated, alpha, input_max, outlier_ratio, output_error}]}, the
//               pairs [before, after]
//   clipping    [{site, minmax_range [min, max], range [min, max], coarse_quantile, minmax_error, coarse_error,
//               fine_error}]
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/json.h"
#include "quant/awq.h"
#include "quant/migration.h"
#include "quant/ptq.h"
#include "train/evaluation.h"

namespace bertforge::quant {

struct QuantReport {
  bool awq = false;
  MigrationResult migration;  // --migration smooth|gamma
  std::string migration_method = "none";
  PtqResult ptq;                    // --method ptq
  AwqResult awq_result;             // --method awq
  PerplexityResult rtn;             // --method awq: round-to-nearest with the same scheme
  HiddenStateAgreement rtn_hidden;  // --method awq: RTN's final hidden state against FP's
  std::string scheme;               // QuantizedBert::describe
  int64_t fp_bytes = 0, quantized_bytes = 0;
  bool has_perplexity = true;  // false for an encoder-only model
  PerplexityResult fp, quantized;
  HiddenStateAgreement hidden;                      // the quantized model's final hidden state against FP's
  std::optional<HiddenStateAgreement> int8_hidden;  // the written file executed by the int8 kernels, against FP
  std::string int8_unavailable;                     // why not, when int8_hidden is empty
  int64_t num_layers = 0;
  std::string vocab;                  // the vocab.txt copied into --out
  double warn_sqnr_db = 0;            // --warn_sqnr_db
  std::vector<std::string> warnings;  // printed to stderr, and in the JSON report
};

// Prints the tables above to stdout.
void print_quant_report(const QuantReport& r);

// The JSON object above; `out` is the output directory it names.
Json quant_report_json(const QuantReport& r, const std::string& out);

// The warning for a final hidden state below r.warn_sqnr_db (fake-quant or int8-executed), with what to try (in
// bert_quant's flags; `options` and `migration` are the PTQ run's, unused for AWQ); none when both are at or above
// it.
std::optional<std::string> sqnr_warning(const QuantReport& r, const PtqOptions& options,
                                        const MigrationOptions& migration);

}  // namespace bertforge::quant
