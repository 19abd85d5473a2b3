// Starting a BertForMaskedLM from pretrained weights: continued pretraining (bert_train --init_from).
//
// The checkpoint may be any Hugging Face BERT layout (models/hf_checkpoint.h) or what bertforge writes:
//
//   BertForMaskedLM, BertForPreTraining   every parameter is loaded, MLM head included (the pooler and the NSP
//                                         head are set aside, as bertforge's BERT has neither)
//   BertModel (encoder only)              the encoder is loaded; the MLM head keeps the fresh initialisation the
//                                         model was built with (HfLoadReport-style list in `fresh`)
//
// Anything else missing, an unexpected tensor or a wrong shape is an error that starts with the config fields
// behind it (models/config_mismatch.h), and nothing is loaded.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "models/bert.h"
#include "models/hf_checkpoint.h"

namespace bertforge {

struct PretrainedLoad {
  HfCheckpointLayout layout;
  std::vector<std::string> ignored;  // tensors of the file set aside (pooler, NSP head)
  std::vector<std::string> fresh;    // parameters of the model left as initialised (the MLM head of a BertModel)
};

// Loads the safetensors file at `path` into `model` (built with the MLM head).
absl::StatusOr<PretrainedLoad> load_pretrained_weights(const std::string& path, BertForMaskedLM& model);

}  // namespace bertforge
