// Per-device kernel tables, and gradient accumulation on devices other than the CPU.
#include "ops/kernels.h"

#include "autograd/engine.h"

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

// acc += grad (f32, same device, grad contiguous) with the device's element-wise add kernel.
void accumulate_with_kernels(Tensor& acc, const Tensor& grad) {
  BF_CHECK(acc.dtype() == DType::kF32 && grad.dtype() == DType::kF32 && acc.is_contiguous(),
           "gradient accumulation on ", acc.device().str(), " supports contiguous f32, got ", acc.str());
  BF_KERNEL(acc.device(), binary)(BinaryOp::kAdd, acc.data<float>(), acc.data<float>(), grad.data<float>(),
                                  acc.numel());
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
  if (type != DeviceType::kCPU) autograd::register_accumulate(type, &accumulate_with_kernels);
  return t.tables[static_cast<int>(type)];
}

}  // namespace bertforge
