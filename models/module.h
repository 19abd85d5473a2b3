// Module: the tree of named parameters that every model is built from, with Hugging Face style dotted names.
//
// A module owns parameters (leaf tensors that require grad) and has child modules, each registered under a
// name; the full name of a parameter joins the names on its path with dots, e.g.
// "bert.encoder.layer.0.attention.self.query.weight". Registration order is kept, parameters and children
// interleaved as registered, so named_parameters() and saved checkpoints list tensors in the order of the
// model's definition (as PyTorch's state_dict does).
//
// A module class registers its pieces in its constructor:
//
//   class Linear : public Module {
//    public:
//     Linear(int64_t in, int64_t out, float std) {
//       weight = register_parameter("weight", {out, in}, ParamInit::normal(std));
//       bias = register_parameter("bias", {out}, ParamInit::zeros());
//     }
//     Tensor weight, bias;
//   };
//
// and a parent registers children that are its own members (register_module("query", query_)); names may
// contain dots, which flattens Hugging Face's thin wrapper modules ("output.dense"). Modules are neither
// copyable nor movable, so registered pointers stay valid. Loading a state dict copies values into the
// existing tensors, so handles held by the model (and by an optimizer) stay valid too.
//
// Initialisation: every parameter is registered with a ParamInit and starts at zero; the root model's
// init_parameters(seed) then fills them, drawing each normal or uniform parameter from its own Philox stream
// (seed, fnv1a64(full name)), so a parameter's initial values depend only on the seed and its name, not on
// the order or the sizes of the others.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/tensor.h"

namespace bertforge {

// Named tensors in order: what a checkpoint holds (the same pairs as SafetensorsFile::tensors).
using StateDict = std::vector<std::pair<std::string, Tensor>>;

// How a parameter is initialised.
struct ParamInit {
  enum class Kind { kNormal, kUniform, kConstant };
  Kind kind = Kind::kConstant;
  float value = 0.0f;     // kNormal: the standard deviation (mean 0); kUniform: the bound b of U(-b, b);
                          // kConstant: the value
  int64_t zero_row = -1;  // kNormal on a 2-d tensor: this row is then set to zero (an embedding's padding_idx)

  static ParamInit normal(float std, int64_t zero_row = -1) { return {Kind::kNormal, std, zero_row}; }
  static ParamInit uniform(float bound) { return {Kind::kUniform, bound, -1}; }
  static ParamInit constant(float value) { return {Kind::kConstant, value, -1}; }
  static ParamInit zeros() { return constant(0.0f); }
  static ParamInit ones() { return constant(1.0f); }
};

// load_state_dict's modes. kStrict: every parameter must be given and every given name must be a parameter,
// else nothing is loaded. kNonStrict: load what matches and report the rest in a LoadReport. In both modes a
// name that matches with the wrong shape, or a non-floating dtype, is an error (the model's config is wrong).
enum class LoadMode { kStrict, kNonStrict };

// What a load skipped: parameters that kept their values (missing) and given names that are not parameters
// (unexpected), each in order.
struct LoadReport {
  std::vector<std::string> missing;
  std::vector<std::string> unexpected;
  bool clean() const { return missing.empty() && unexpected.empty(); }
  // "missing: a, b; unexpected: c", or "nothing skipped".
  std::string str() const;
};

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // (full name, parameter) for every parameter of this module and its descendants, in registration order.
  // The tensors are the parameters themselves (aliases), not copies.
  std::vector<std::pair<std::string, Tensor>> named_parameters() const;
  std::vector<Tensor> parameters() const;
  int64_t num_parameters() const;  // total number of elements

  // Training mode (the default) enables dropout; eval mode disables it. Both apply to every descendant.
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Fills every parameter per its ParamInit (see the file comment). Not recorded by autograd.
  void init_parameters(uint64_t seed);
  // Resets every parameter's .grad to undefined.
  void zero_grad();
  // Moves every parameter to `device` in place (Tensor::move_to_); gradients are dropped.
  void to(Device device);

  // named_parameters(), detached: the state to save.
  StateDict state_dict() const;
  // Copies `state` into the parameters (values converted to f32) after checking every name, shape and dtype;
  // on an error nothing is loaded. `report` (optional) receives what was skipped in kNonStrict mode.
  // Names registered with ignore_on_load are dropped silently. Errors are InvalidArgument, listing every
  // problem with the shapes involved.
  absl::Status load_state_dict(const StateDict& state, LoadMode mode = LoadMode::kStrict,
                               LoadReport* report = nullptr);

 protected:
  // Creates a parameter of `shape` (f32, CPU, requiring grad, zero until init_parameters) and returns it;
  // the module keeps the handle in a member.
  Tensor register_parameter(std::string name, const Shape& shape, ParamInit init);
  // Registers `child`, which must outlive this module (normally a member of it).
  void register_module(std::string name, Module& child);
  // A name that checkpoints may carry but that is not a parameter of this module, for example a tied
  // duplicate ("cls.predictions.decoder.weight" is the word embeddings) or a buffer Hugging Face saves
  // ("bert.embeddings.position_ids"): load_state_dict drops it without reporting it.
  void ignore_on_load(std::string name);

 private:
  struct Entry {
    std::string name;
    Tensor parameter;        // defined for a parameter entry
    ParamInit init;          // of a parameter entry
    Module* child = nullptr; // set for a child entry
  };
  // Appends (prefix + name, entry) for every parameter below this module.
  void collect(const std::string& prefix, std::vector<std::pair<std::string, const Entry*>>& out) const;
  void collect_ignored(const std::string& prefix, std::vector<std::string>& out) const;

  std::vector<Entry> entries_;
  std::vector<std::string> ignored_;
  bool training_ = true;
};

// Eval mode for a scope: the module's previous mode comes back when the guard goes (also on an exception).
class ScopedEvalMode {
 public:
  explicit ScopedEvalMode(Module& module) : module_(module), was_training_(module.is_training()) { module.eval(); }
  ~ScopedEvalMode() { module_.train(was_training_); }
  ScopedEvalMode(const ScopedEvalMode&) = delete;
  ScopedEvalMode& operator=(const ScopedEvalMode&) = delete;

 private:
  Module& module_;
  bool was_training_;
};

// The 64-bit FNV-1a hash of `text`: the Philox stream offset of a parameter's initialisation.
uint64_t fnv1a64(absl::string_view text);

// A module's state_dict() as a safetensors file with "__metadata__" {"format": "pt"} (what transformers
// writes), and back through load_state_dict.
absl::Status save_safetensors(const Module& module, const std::string& path);
absl::Status load_safetensors(Module& module, const std::string& path, LoadMode mode = LoadMode::kStrict,
                              LoadReport* report = nullptr);

}  // namespace bertforge
