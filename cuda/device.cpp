// CUDA memory for Tensors (cudaMalloc/cudaFree, host<->device copies) and
// registration of the CUDA backend: device interface plus kernel table.
// (The caching allocator of the CUDA issue replaces the plain cudaMalloc.)
#include "cuda/device.h"

#include "core/device.h"
#include "cuda/cuda_check.h"
#include "cuda/kernels.h"
#include "ops/kernels.h"

namespace bertforge::cuda {
namespace {

class CudaDevice final : public DeviceInterface {
 public:
  void* allocate(size_t nbytes, int index) override {
    BF_CUDA_CHECK(cudaSetDevice(index));
    void* ptr = nullptr;
    BF_CUDA_CHECK(cudaMalloc(&ptr, nbytes == 0 ? 1 : nbytes));
    return ptr;
  }
  void deallocate(void* ptr, int index) override {
    cudaSetDevice(index);
    cudaFree(ptr);  // never throws from a destructor path
  }
  void copy_to_host(void* dst, const void* src, size_t n, int index) override {
    BF_CUDA_CHECK(cudaSetDevice(index));
    BF_CUDA_CHECK(cudaMemcpy(dst, src, n, cudaMemcpyDeviceToHost));
  }
  void copy_from_host(void* dst, const void* src, size_t n, int index) override {
    BF_CUDA_CHECK(cudaSetDevice(index));
    BF_CUDA_CHECK(cudaMemcpy(dst, src, n, cudaMemcpyHostToDevice));
  }
  void copy_within(void* dst, const void* src, size_t n, int index) override {
    BF_CUDA_CHECK(cudaSetDevice(index));
    BF_CUDA_CHECK(cudaMemcpy(dst, src, n, cudaMemcpyDeviceToDevice));
  }
};

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
  static CudaDevice device;
  register_device_interface(DeviceType::kCUDA, &device);
  register_elementwise_kernels(mutable_kernel_table(DeviceType::kCUDA));
}

}  // namespace bertforge::cuda
