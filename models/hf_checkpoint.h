// Loading Hugging Face BERT checkpoints (safetensors) of any of the usual layouts into BertForMaskedLM.
//
// transformers names a BERT's tensors by the class that saved it:
//
//   BertForMaskedLM     bert.embeddings.*, bert.encoder.layer.<i>.*, cls.predictions.*   (what bertforge writes)
//   BertForPreTraining  the same plus bert.pooler.* and the NSP head cls.seq_relationship.*
//   BertModel           embeddings.*, encoder.layer.<i>.*, pooler.*   (no "bert." prefix, no MLM head; e.g.
//                       sentence-transformers' all-MiniLM-L6-v2)
//
// The layout is read from the names: tensors under cls.predictions.* mean the MLM head is there (the model is
// built with it), none means an encoder-only model (BertHead::kEncoderOnly, encode() only); a missing "bert." prefix
// is added. The pooler (dense + tanh on the [CLS] state) and the NSP head are not part of bertforge's BERT:
// they are set aside and listed in HfLoadReport::ignored, never loaded. Everything else loads strictly
// (Module::load_state_dict): a missing or unexpected tensor, or a wrong shape, is an error that names the
// detected layout and every offending tensor, and nothing is loaded. Values of any floating dtype are converted
// to float32; the tied duplicates and the position_ids buffer are dropped as bert.h describes.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "models/bert.h"
#include "models/bert_config.h"
#include "models/module.h"

namespace bertforge {

// What the tensor names of a checkpoint say about it.
struct HfCheckpointLayout {
  bool bert_prefix = true;  // names start with "bert." (BertForMaskedLM, BertForPreTraining), not BertModel's
  bool mlm_head = true;     // has cls.predictions.*

  BertHead head() const { return mlm_head ? BertHead::kMaskedLM : BertHead::kEncoderOnly; }
  // "BertForMaskedLM layout (bert.* + cls.predictions.*)", "BertModel layout (encoder only, no MLM head)", ...
  std::string describe() const;
};

// The layout of `tensors`; InvalidArgument when they hold no BERT embeddings, or mix prefixed and unprefixed
// encoder names.
absl::StatusOr<HfCheckpointLayout> detect_hf_layout(const StateDict& tensors);

// What load_hf_bert found besides the loaded parameters.
struct HfLoadReport {
  HfCheckpointLayout layout;
  std::vector<std::string> ignored;  // tensors set aside (pooler, NSP head), under their names in the file
};

// `tensors` renamed to bertforge's names ("bert." added where missing), without the pooler and NSP head (which
// go to `ignored` when given). The tensors are shared, not copied.
StateDict to_bertforge_names(const StateDict& tensors, const HfCheckpointLayout& layout,
                             std::vector<std::string>* ignored = nullptr);

// Reads the safetensors file at `path`, detects its layout, builds a BertForMaskedLM of `config` with or
// without the MLM head accordingly, and loads every parameter (see the file comment). The model comes back in
// eval mode (dropout off), for inference: a loaded checkpoint is run, evaluated or quantized far more often than
// trained further; call train() before training it (the trainer builds its own model).
absl::StatusOr<std::unique_ptr<BertForMaskedLM>> load_hf_bert(const std::string& path, const BertConfig& config,
                                                              HfLoadReport* report = nullptr);

}  // namespace bertforge
