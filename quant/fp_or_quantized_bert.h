// Loading a BERT from either kind of checkpoint file: an FP one (any Hugging Face layout, models/hf_checkpoint.h)
// or a quantized one (bert_quant's output, quant/quantized_model.h, recognised by its metadata), for the tools
// that run whichever they are given (bert_eval, bert_embed, bert_fill_mask).
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "models/bert.h"
#include "models/bert_config.h"

namespace bertforge::quant {

struct FpOrQuantizedBert {
  std::unique_ptr<BertForMaskedLM> model;  // in eval mode (dropout off), FP or quantized
  std::string layout;        // the checkpoint layout, or for a quantized one how it runs and its scheme
  std::string quantization;  // the quantized scheme; "" for an FP checkpoint
};

// The model in the safetensors file `weights` built with `config`. A quantized checkpoint runs fake-quantized,
// or with its encoder Linears in int8 when `int8` is set (QuantizedExecution::kInt8; a scheme without int8
// execution is an InvalidArgument). `int8` with an FP checkpoint is an InvalidArgument.
absl::StatusOr<FpOrQuantizedBert> load_fp_or_quantized_bert(const std::string& weights, const BertConfig& config,
                                                            bool int8);

}  // namespace bertforge::quant
