// The CUDA backend's registration: GPU memory for Tensors (the caching allocator, host <-> device copies, strided
// copies and fills on the device). The kernels register themselves, each beside its launcher (cuda/<family>.cu).
#include "cuda/device.h"

#include <memory>
#include <mutex>
#include <vector>

#include "core/device.h"
#include "cuda/caching_allocator.h"
#include "cuda/cuda_check.h"
#include "cuda/stream.h"
#include "cuda/tensor_copy.cuh"

namespace bertforge::cuda {
namespace {

class CudaDevice final : public DeviceInterface {
 public:
  explicit CudaDevice(int devices) : allocators_(devices) {
    for (auto& allocator : allocators_) allocator = std::make_unique<CachingAllocator>();
  }

  void* allocate(size_t nbytes, int index) override {
    select(index);
    return allocators_[index]->allocate(nbytes);
  }
  void deallocate(void* ptr, int index) override { allocators_[index]->deallocate(ptr); }
  void copy_to_host(void* dst, const void* src, size_t n, int index) override {
    select(index);
    BF_CUDA_CHECK(cudaMemcpy(dst, src, n, cudaMemcpyDeviceToHost));
  }
  void copy_from_host(void* dst, const void* src, size_t n, int index) override {
    select(index);
    BF_CUDA_CHECK(cudaMemcpy(dst, src, n, cudaMemcpyHostToDevice));
  }
  void copy_within(void* dst, const void* src, size_t n, int index) override {
    select(index);
    BF_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, compute_stream()));
  }
  void copy_strided(void* dst, const int64_t* dst_strides, const void* src, const int64_t* src_strides,
                    const int64_t* shape, int dims, size_t element_size, int index) override {
    select(index);
    cuda::copy_strided(dst, dst_strides, src, src_strides, shape, dims, element_size);
  }
  void fill(void* dst, const void* value, size_t element_size, int64_t count, int index) override {
    select(index);
    cuda::fill(dst, value, element_size, count);
  }
  void convert(void* dst, DType dst_dtype, const void* src, DType src_dtype, int64_t count, int index) override {
    select(index);
    cuda::convert(dst, dst_dtype, src, src_dtype, count);
  }

  AllocatorStats stats(int index) const { return allocators_.at(index)->stats(); }
  void reset_peak(int index) { allocators_.at(index)->reset_peak(); }

 private:
  void select(int index) const {
    BF_CHECK(index >= 0 && index < static_cast<int>(allocators_.size()), "cuda:", index, " does not exist (",
             allocators_.size(), " CUDA devices)");
    BF_CUDA_CHECK(cudaSetDevice(index));
  }

  std::vector<std::unique_ptr<CachingAllocator>> allocators_;
};

CudaDevice* registered_device = nullptr;

}  // namespace

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return count;
}

void register_cuda_backend() {
  static std::once_flag once;
  std::call_once(once, [] {
    static CudaDevice device(device_count());
    registered_device = &device;
    register_device_interface(DeviceType::kCUDA, &device);
  });
}

AllocatorStats allocator_stats(int index) {
  BF_CHECK(registered_device != nullptr, "the CUDA backend is not registered");
  return registered_device->stats(index);
}

void reset_peak_allocated(int index) {
  BF_CHECK(registered_device != nullptr, "the CUDA backend is not registered");
  registered_device->reset_peak(index);
}

}  // namespace bertforge::cuda
