// Where a tensor's bytes live, and the per-device memory interface.
//
// core/ knows only the CPU. The CUDA backend (cuda/) registers its own
// DeviceInterface at start-up; asking for a CUDA tensor in a CPU-only build
// fails with "built without CUDA" rather than a link error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/dtype.h"

namespace bertforge {

enum class DeviceType : uint8_t { kCPU = 0, kCUDA = 1 };
inline constexpr int kNumDeviceTypes = 2;

struct Device {
  DeviceType type = DeviceType::kCPU;
  int index = 0;  // GPU ordinal; always 0 for the CPU

  static Device cpu() { return Device{}; }
  static Device cuda(int index = 0) { return Device{DeviceType::kCUDA, index}; }
  bool is_cpu() const { return type == DeviceType::kCPU; }
  bool operator==(const Device& o) const { return type == o.type && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
  std::string str() const;
};

// "cpu", "cuda" (GPU 0) or "cuda:N".
absl::StatusOr<Device> parse_device(absl::string_view name);

// Memory operations a device backend provides. All sizes in bytes.
class DeviceInterface {
 public:
  virtual ~DeviceInterface() = default;
  virtual void* allocate(size_t nbytes, int index) = 0;
  virtual void deallocate(void* ptr, int index) = 0;
  // Copies between this device and the host, or within this device.
  virtual void copy_to_host(void* host_dst, const void* src, size_t nbytes, int index) = 0;
  virtual void copy_from_host(void* dst, const void* host_src, size_t nbytes, int index) = 0;
  virtual void copy_within(void* dst, const void* src, size_t nbytes, int index) = 0;
  // Copies a strided view into another on this device, elements of `element_size` bytes (1, 2, 4 or 8):
  // element (i0, .., i{dims-1}) of `shape` goes from src[sum i_d * src_strides[d]] to dst[sum i_d * dst_strides[d]]
  // (strides in elements, the pointers already at the views' offsets; dims <= kMaxStridedCopyDims).
  virtual void copy_strided(void* dst, const int64_t* dst_strides, const void* src, const int64_t* src_strides,
                            const int64_t* shape, int dims, size_t element_size, int index) = 0;
  // Sets `count` contiguous elements of `element_size` bytes (1, 2, 4 or 8) to the bytes at `value`.
  virtual void fill(void* dst, const void* value, size_t element_size, int64_t count, int index) = 0;
  // dst[i] = src[i] converted, i < count, both contiguous, between the floating dtypes f32, bf16 and f16
  // (rounding to nearest even, as core/half.h does on the CPU).
  virtual void convert(void* dst, DType dst_dtype, const void* src, DType src_dtype, int64_t count, int index) = 0;
};

inline constexpr int kMaxStridedCopyDims = 8;

// The interface registered for `type`; throws if that backend was not built.
DeviceInterface& device_interface(DeviceType type);
void register_device_interface(DeviceType type, DeviceInterface* iface);

// CPU storage is 64-byte aligned (a cache line, and an AVX-512 vector).
inline constexpr size_t kCpuAlignment = 64;

}  // namespace bertforge
