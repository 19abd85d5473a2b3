// What a model's config says against what a checkpoint's tensors say, for the first line of a load error.
//
// A checkpoint loaded with the wrong config.json fails on dozens of tensor shapes at once; the user needs the
// handful of config fields behind them ("hidden_size 256 in the config, 128 in the checkpoint"). The fields
// that tensor shapes determine are read back from the (bertforge-named) tensors:
//
//   vocab_size, hidden_size      bert.embeddings.word_embeddings.weight            [vocab_size, hidden_size]
//   max_position_embeddings      bert.embeddings.position_embeddings.weight        [max_position_embeddings, hidden]
//   type_vocab_size              bert.embeddings.token_type_embeddings.weight      [type_vocab_size, hidden]
//   intermediate_size            bert.encoder.layer.0.intermediate.dense.weight    [intermediate_size, hidden]
//   num_hidden_layers            1 + the highest <i> of bert.encoder.layer.<i>.*
//
// (num_attention_heads leaves no trace in the shapes.)
#pragma once

#include <string>

#include "absl/strings/string_view.h"

#include "models/bert_config.h"
#include "models/module.h"

namespace bertforge {

// "hidden_size 256 in the config, 128 in the checkpoint; num_hidden_layers 4 in the config, 2 in the checkpoint",
// or "" when every field the tensors determine agrees with `config` (or the tensors determine none).
std::string describe_config_mismatch(const BertConfig& config, const StateDict& bertforge_named_tensors);

// The message of a load that failed with `load_error` (Module::load_state_dict's "; "-separated problems):
// "does not fit the model: <differing fields>\n  details: <the problems>", the problems cut to the first three when
// the fields already explain them; without differing fields, "does not fit the model: <the problems>".
std::string explain_load_failure(const BertConfig& config, const StateDict& bertforge_named_tensors,
                                 absl::string_view load_error);

}  // namespace bertforge
