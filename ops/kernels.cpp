// Per-device kernel tables.
#include "ops/kernels.h"

namespace bertforge {
namespace cpu {
void register_cpu_kernels(KernelTable& table);  // ops/cpu/cpu_kernels.cpp
}  // namespace cpu

namespace {
struct Tables {
  KernelTable tables[kNumDeviceTypes];
  bool registered[kNumDeviceTypes] = {true, false};
  Tables() { cpu::register_cpu_kernels(tables[static_cast<int>(DeviceType::kCPU)]); }
};
Tables& all_tables() {
  static Tables tables;
  return tables;
}
}  // namespace

const KernelTable& kernels_for(Device device) {
  Tables& t = all_tables();
  const int slot = static_cast<int>(device.type);
  BF_CHECK(t.registered[slot], "no kernels for ", device.str(),
           ": bertforge was built without CUDA (-DBERTFORGE_CUDA=OFF or no nvcc)");
  return t.tables[slot];
}

KernelTable& mutable_kernel_table(DeviceType type) {
  Tables& t = all_tables();
  t.registered[static_cast<int>(type)] = true;
  return t.tables[static_cast<int>(type)];
}

}  // namespace bertforge
