// Module: parameter registration, traversal, initialisation and state-dict loading (see module.h).
#include "models/module.h"

#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "autograd/grad_mode.h"
#include "core/philox.h"
#include "core/safetensors.h"

namespace bertforge {

uint64_t fnv1a64(absl::string_view text) {
  uint64_t hash = 0xcbf29ce484222325ull;
  for (char c : text) {
    hash ^= static_cast<uint8_t>(c);
    hash *= 0x100000001b3ull;
  }
  return hash;
}

std::string LoadReport::str() const {
  if (clean()) return "nothing skipped";
  std::vector<std::string> parts;
  if (!missing.empty()) parts.push_back(absl::StrCat("missing: ", absl::StrJoin(missing, ", ")));
  if (!unexpected.empty()) parts.push_back(absl::StrCat("unexpected: ", absl::StrJoin(unexpected, ", ")));
  return absl::StrJoin(parts, "; ");
}

// ---- Registration and traversal ------------------------------------------------------------------------------

Tensor Module::register_parameter(std::string name, const Shape& shape, ParamInit init) {
  BF_CHECK(!name.empty(), "register_parameter: empty name");
  Tensor parameter = Tensor::zeros(shape);
  parameter.set_requires_grad(true);
  entries_.push_back(Entry{std::move(name), parameter, init, nullptr});
  return parameter;
}

void Module::register_module(std::string name, Module& child) {
  BF_CHECK(!name.empty(), "register_module: empty name");
  BF_CHECK(&child != this, "register_module: a module cannot be its own child (", name, ")");
  entries_.push_back(Entry{std::move(name), Tensor(), ParamInit(), &child});
}

void Module::ignore_on_load(std::string name) { ignored_.push_back(std::move(name)); }

void Module::collect(const std::string& prefix, std::vector<std::pair<std::string, const Entry*>>& out) const {
  for (const Entry& e : entries_) {
    if (e.child != nullptr) {
      e.child->collect(prefix + e.name + ".", out);
    } else {
      out.emplace_back(prefix + e.name, &e);
    }
  }
}

void Module::collect_ignored(const std::string& prefix, std::vector<std::string>& out) const {
  for (const std::string& name : ignored_) out.push_back(prefix + name);
  for (const Entry& e : entries_) {
    if (e.child != nullptr) e.child->collect_ignored(prefix + e.name + ".", out);
  }
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters() const {
  std::vector<std::pair<std::string, const Entry*>> entries;
  collect("", entries);
  std::vector<std::pair<std::string, Tensor>> out;
  out.reserve(entries.size());
  for (auto& [name, entry] : entries) out.emplace_back(std::move(name), entry->parameter);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, parameter] : named_parameters()) out.push_back(parameter);
  return out;
}

int64_t Module::num_parameters() const {
  int64_t total = 0;
  for (const Tensor& p : parameters()) total += p.numel();
  return total;
}

void Module::train(bool on) {
  training_ = on;
  for (Entry& e : entries_) {
    if (e.child != nullptr) e.child->train(on);
  }
}

void Module::zero_grad() {
  for (Tensor& p : parameters()) p.set_grad(Tensor());
}

void Module::to(Device device) {
  for (Tensor& p : parameters()) p.move_to_(device);
}

// ---- Initialisation --------------------------------------------------------------------------------------------

void Module::init_parameters(uint64_t seed) {
  std::vector<std::pair<std::string, const Entry*>> entries;
  collect("", entries);
  for (const auto& [name, entry] : entries) {
    Tensor p = entry->parameter;
    const ParamInit& init = entry->init;
    if (init.kind == ParamInit::Kind::kConstant) {
      p.fill_(init.value);
      continue;
    }
    if (init.kind == ParamInit::Kind::kUniform) {
      fill_uniform(p, seed, fnv1a64(name), -init.value, init.value);
      continue;
    }
    fill_normal(p, seed, fnv1a64(name), 0.0f, init.value);
    if (init.zero_row >= 0) {
      BF_CHECK(p.dim() == 2 && init.zero_row < p.size(0), "init_parameters: zero_row ", init.zero_row,
               " outside parameter ", name, " ", p.shape_str());
      p.slice(0, init.zero_row, init.zero_row + 1).fill_(0.0f);
    }
  }
}

// ---- State dicts -----------------------------------------------------------------------------------------------

StateDict Module::state_dict() const {
  StateDict out;
  for (auto& [name, parameter] : named_parameters()) out.emplace_back(std::move(name), parameter.detach());
  return out;
}

absl::Status Module::load_state_dict(const StateDict& state, LoadMode mode, LoadReport* report) {
  const std::vector<std::pair<std::string, Tensor>> params = named_parameters();
  std::map<std::string, Tensor> by_name(params.begin(), params.end());
  std::vector<std::string> ignored_names;
  collect_ignored("", ignored_names);
  const std::set<std::string> ignored(ignored_names.begin(), ignored_names.end());

  LoadReport skipped;
  std::vector<std::string> errors;
  std::set<std::string> given;
  std::vector<std::pair<Tensor, Tensor>> copies;  // (parameter, value), applied only when nothing is wrong
  for (const auto& [name, value] : state) {
    if (!given.insert(name).second) {
      errors.push_back(absl::StrCat(name, " is given twice"));
      continue;
    }
    if (ignored.count(name) != 0) continue;
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      skipped.unexpected.push_back(name);
      continue;
    }
    const Tensor& parameter = it->second;
    if (!value.defined() || !dtype_is_floating(value.dtype())) {
      errors.push_back(absl::StrCat(name, " has dtype ", value.defined() ? dtype_name(value.dtype()) : "undefined",
                                    ", expected a floating-point tensor"));
    } else if (value.shape() != parameter.shape()) {
      errors.push_back(absl::StrCat(name, " has shape ", value.shape_str(), " in the state dict but ",
                                    parameter.shape_str(), " in the model"));
    } else {
      copies.emplace_back(parameter, value);
    }
  }
  for (const auto& [name, parameter] : params) {
    if (given.count(name) == 0) skipped.missing.push_back(name);
  }
  if (mode == LoadMode::kStrict && !skipped.clean()) errors.push_back(skipped.str());
  if (!errors.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("load_state_dict: nothing loaded: ", absl::StrJoin(errors, "; ")));
  }
  autograd::NoGradGuard no_grad;
  for (auto& [parameter, value] : copies) parameter.copy_(value.to(parameter.dtype()).to(parameter.device()));
  if (report != nullptr) *report = std::move(skipped);
  return absl::OkStatus();
}

// ---- Safetensors -----------------------------------------------------------------------------------------------

absl::Status save_safetensors(const Module& module, const std::string& path) {
  return write_safetensors(path, module.state_dict(), {{"format", "pt"}});
}

absl::Status load_safetensors(Module& module, const std::string& path, LoadMode mode, LoadReport* report) {
  absl::StatusOr<SafetensorsFile> file = read_safetensors(path);
  if (!file.ok()) return file.status();
  const absl::Status status = module.load_state_dict(file->tensors, mode, report);
  if (!status.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", status.message()));
  return absl::OkStatus();
}

}  // namespace bertforge
