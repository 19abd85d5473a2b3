// The kernel registry: every compute kernel an op may call, found by name and device.
//
// A kernel takes raw pointers to contiguous data plus sizes, in the style of llm.c, so that a CUDA kernel has
// exactly the signature of its CPU reference. Each kernel is defined, and registered, in one place per device:
//     ops/activation.cpp      namespace cpu  { void gelu_forward(float* out, const float* x, int64_t n) {...} }
//                             BF_REGISTER_KERNEL(DeviceType::kCPU, gelu_forward);
//     cuda/activation.cu      namespace cuda { void gelu_forward(float* out, const float* x, int64_t n) {...} }
//                             BF_REGISTER_KERNEL(DeviceType::kCUDA, gelu_forward);
// The op, in the file of the CPU kernel, checks shapes, dtypes and devices, then calls
//     BF_KERNEL(x.device(), gelu_forward)(out, x, n);
// which looks the kernel up for x's device with the type of cpu::gelu_forward. So the signature is written twice,
// once per device, and there is no central list: the registry checks at each look-up that a device's kernel has
// the type the op calls it with, and a test checks every CUDA kernel against its CPU twin at once
// (tests/support/kernel_twins.h). A missing kernel or a mismatched one fails with the kernel's name.
//
// Registration runs during static initialisation (the registrar sits beside the definition), so an object file
// whose kernels nobody calls directly (cuda/*.cu) must be linked whole: cuda/CMakeLists.txt.
//
// To add an op: README.md, "Adding an op".
#pragma once

#include <cstdint>
#include <string>
#include <typeinfo>
#include <vector>

#include "core/check.h"
#include "core/device.h"

namespace bertforge {

// ---- Argument types that a CPU kernel and its CUDA twin share.
enum class BinaryOp : uint8_t { kAdd, kSub, kMul };  // the `binary` kernel's operation

// Multi-tensor kernels (sum_of_squares_chunks, adamw_update_many) work on `count` tensors in one call, one launch
// per kMultiTensorGroup tensors on a GPU. Each tensor is cut into chunks of kMultiTensorChunk elements (its last
// chunk shorter).
inline constexpr int64_t kMultiTensorChunk = 65536;  // elements per chunk: a GPU block's share
inline constexpr int kMultiTensorGroup = 32;          // tensors per GPU launch (their table is a kernel argument)

// The chunks of tensors of these sizes: sum over i of ceil(sizes[i] / kMultiTensorChunk).
inline int64_t multi_tensor_chunks(const int64_t* sizes, int64_t count) {
  int64_t chunks = 0;
  for (int64_t i = 0; i < count; ++i) chunks += (sizes[i] + kMultiTensorChunk - 1) / kMultiTensorChunk;
  return chunks;
}

// Element count below which a CPU kernel runs on one thread: threads cost more than they save.
inline constexpr int64_t kParallelThreshold = 1 << 15;

// ---- The registry.
using AnyKernel = void (*)();  // a kernel's address, its type erased (and restored by kernel<Fn>)

// Records `fn`, of function type `type`, as kernel `name` of device type `device`; returns true so that it can
// initialise a static. `name` must outlive the program (a string literal). Registering a name twice for one
// device is an error (reported at the next look-up of that name).
bool register_kernel(DeviceType device, const char* name, AnyKernel fn, const std::type_info& type);

// The kernel `name` of `device`'s type, checked to be of function type `type`; throws naming the kernel if it is
// missing, of another type, or if no kernel at all was built for that device type.
AnyKernel find_kernel(Device device, const char* name, const std::type_info& type);

template <typename Fn>
Fn* kernel(Device device, const char* name) {
  return reinterpret_cast<Fn*>(find_kernel(device, name, typeid(Fn)));
}

// One registered kernel, for listings and for the test that CPU and CUDA twins agree.
struct RegisteredKernel {
  std::string name;
  const std::type_info* type;
};
std::vector<RegisteredKernel> registered_kernels(DeviceType device);

// Readable form of a function type, for error messages ("void (float*, float const*, long)").
std::string type_name(const std::type_info& type);

}  // namespace bertforge

// Registers the function `fn` (unqualified, in the current namespace) as the kernel named #fn of `device`.
// At namespace scope, next to the definition.
#define BF_REGISTER_KERNEL(device, fn)                                                                \
  [[maybe_unused]] static const bool bf_kernel_registered_##fn = ::bertforge::register_kernel( \
      (device), #fn, reinterpret_cast<::bertforge::AnyKernel>(&fn), typeid(fn))

// The kernel `name` for `device`, of the type of the CPU kernel bertforge::cpu::name, which the calling file
// defines (or includes). Usage: BF_KERNEL(x.device(), gelu_forward)(out, x, n).
#define BF_KERNEL(device, name) (::bertforge::kernel<decltype(::bertforge::cpu::name)>((device), #name))
