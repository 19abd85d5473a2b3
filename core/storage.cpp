// Device registry, the CPU allocator, and Storage.
#include "core/storage.h"

#include <cstring>
#include <new>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "core/check.h"
#include "core/host_allocator.h"

namespace bertforge {
namespace {

// Host memory, from the caching allocator (core/host_allocator.h).
class CpuDevice final : public DeviceInterface {
 public:
  void* allocate(size_t nbytes, int) override { return host_allocator().allocate(nbytes); }
  void deallocate(void* ptr, int) override { host_allocator().deallocate(ptr); }
  void copy_to_host(void* dst, const void* src, size_t n, int) override { std::memcpy(dst, src, n); }
  void copy_from_host(void* dst, const void* src, size_t n, int) override { std::memcpy(dst, src, n); }
  void copy_within(void* dst, const void* src, size_t n, int) override { std::memcpy(dst, src, n); }
  // Tensor::copy_ and fill_ walk CPU views themselves (with dtype conversion); only other devices get these calls.
  void copy_strided(void*, const int64_t*, const void*, const int64_t*, const int64_t*, int, size_t, int) override {
    BF_FAIL("internal error: strided CPU copies belong to Tensor::copy_");
  }
  void fill(void*, const void*, size_t, int64_t, int) override {
    BF_FAIL("internal error: CPU fills belong to Tensor::fill_");
  }
  void convert(void*, DType, const void*, DType, int64_t, int) override {
    BF_FAIL("internal error: CPU conversions belong to Tensor::copy_");
  }
};

DeviceInterface*& registry_slot(DeviceType type) {
  static CpuDevice cpu;
  static DeviceInterface* slots[kNumDeviceTypes] = {&cpu, nullptr};
  return slots[static_cast<int>(type)];
}

}  // namespace

std::string Device::str() const {
  return is_cpu() ? std::string("cpu") : absl::StrCat("cuda:", index);
}

absl::StatusOr<Device> parse_device(absl::string_view name) {
  if (name == "cpu") return Device::cpu();
  if (name == "cuda") return Device::cuda(0);
  absl::string_view index_text = name;
  int index = -1;
  if (absl::ConsumePrefix(&index_text, "cuda:") && absl::SimpleAtoi(index_text, &index) && index >= 0) {
    return Device::cuda(index);
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown device '", name, "': cpu, cuda or cuda:N"));
}

DeviceInterface& device_interface(DeviceType type) {
  DeviceInterface* iface = registry_slot(type);
  if (iface == nullptr) {
    BF_FAIL("device ", Device{type, 0}.str(),
            " is not available: bertforge was built without CUDA (-DBERTFORGE_CUDA=OFF or no nvcc)");
  }
  return *iface;
}

void register_device_interface(DeviceType type, DeviceInterface* iface) {
  registry_slot(type) = iface;
}

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  data_ = device_interface(device.type).allocate(nbytes, device.index);
}

Storage::~Storage() { device_interface(device_.type).deallocate(data_, device_.index); }

}  // namespace bertforge
