// The kernel registry: one map from name to kernel per device type, filled during static initialisation.
#include "ops/kernels.h"

#include <cxxabi.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <string_view>

namespace bertforge {
namespace {

struct Entry {
  AnyKernel fn = nullptr;
  const std::type_info* type = nullptr;
  bool registered_twice = false;
};

// Filled before main() and only read afterwards, so look-ups need no lock.
std::map<std::string_view, Entry>& kernels_of(DeviceType device) {
  static std::map<std::string_view, Entry> maps[kNumDeviceTypes];
  return maps[static_cast<int>(device)];
}

const char* device_type_name(DeviceType device) { return device == DeviceType::kCPU ? "cpu" : "cuda"; }

}  // namespace

std::string type_name(const std::type_info& type) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> demangled(abi::__cxa_demangle(type.name(), nullptr, nullptr, &status),
                                                   &std::free);
  return status == 0 ? std::string(demangled.get()) : std::string(type.name());
}

bool register_kernel(DeviceType device, const char* name, AnyKernel fn, const std::type_info& type) {
  auto [it, inserted] = kernels_of(device).try_emplace(name, Entry{fn, &type});
  if (!inserted) it->second.registered_twice = true;
  return true;
}

AnyKernel find_kernel(Device device, const char* name, const std::type_info& type) {
  const auto& kernels = kernels_of(device.type);
  BF_CHECK(!kernels.empty(), "no kernels for ", device.str(),
           ": bertforge was built without CUDA (-DBERTFORGE_CUDA=OFF or no nvcc)");
  const auto it = kernels.find(name);
  BF_CHECK(it != kernels.end(), "kernel ", name, " is not implemented for ", device.str());
  const Entry& entry = it->second;
  BF_CHECK(!entry.registered_twice, "kernel ", name, " is registered twice for ", device_type_name(device.type));
  BF_CHECK(*entry.type == type, "kernel ", name, " of ", device_type_name(device.type), " has type ",
           type_name(*entry.type), ", called as ", type_name(type));
  return entry.fn;
}

std::vector<RegisteredKernel> registered_kernels(DeviceType device) {
  std::vector<RegisteredKernel> list;
  for (const auto& [name, entry] : kernels_of(device)) list.push_back({std::string(name), entry.type});
  return list;
}

}  // namespace bertforge
