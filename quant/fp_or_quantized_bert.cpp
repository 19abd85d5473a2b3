// Loading an FP or a quantized BERT checkpoint (fp_or_quantized_bert.h).
#include "quant/fp_or_quantized_bert.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/check.h"
#include "models/hf_checkpoint.h"
#include "quant/quantized_model.h"

namespace bertforge::quant {

absl::StatusOr<FpOrQuantizedBert> load_fp_or_quantized_bert(const std::string& weights, const BertConfig& config,
                                                            bool int8) {
  BF_ASSIGN_OR_RETURN(const bool quantized, is_quantized_checkpoint(weights));
  if (int8 && !quantized) {
    return absl::InvalidArgumentError(absl::StrCat("--int8 needs a quantized checkpoint (bert_quant's output); ",
                                                   weights, " is an FP checkpoint"));
  }
  FpOrQuantizedBert loaded;
  if (quantized) {
    QuantizedBuildOptions options;
    options.execution = int8 ? QuantizedExecution::kInt8 : QuantizedExecution::kFakeQuant;
    BF_ASSIGN_OR_RETURN(LoadedQuantizedBert q, load_quantized_bert(weights, config, options));
    loaded.quantization = q.bert.describe(q.spec);
    loaded.layout = absl::StrCat("quantized (", quantized_execution_name(options.execution), "): ",
                                 loaded.quantization);
    loaded.model = std::move(q.bert.model);
    return loaded;
  }
  HfLoadReport report;
  BF_ASSIGN_OR_RETURN(loaded.model, load_hf_bert(weights, config, &report));
  loaded.layout = report.layout.describe();
  if (!report.ignored.empty()) absl::StrAppend(&loaded.layout, "; not used: ", absl::StrJoin(report.ignored, ", "));
  return loaded;
}

}  // namespace bertforge::quant
