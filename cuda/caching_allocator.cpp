// The caching GPU allocator (see caching_allocator.h).
#include "cuda/caching_allocator.h"

#include <cuda_runtime.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "cuda/cuda_check.h"

namespace bertforge::cuda {

namespace {
constexpr size_t kSmallLimit = size_t{1} << 20;
constexpr size_t kSmallRounding = 512;
constexpr size_t kLargeRounding = size_t{2} << 20;

std::string mib(size_t bytes) { return absl::StrCat(bytes >> 20, " MiB"); }
}  // namespace

size_t CachingAllocator::rounded_size(size_t nbytes) {
  const size_t unit = nbytes < kSmallLimit ? kSmallRounding : kLargeRounding;
  return std::max<size_t>(unit, (nbytes + unit - 1) / unit * unit);
}

void* CachingAllocator::allocate_on_device(size_t nbytes) {
  void* ptr = nullptr;
  cudaError_t status = cudaMalloc(&ptr, nbytes);
  if (status == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // clear the error, give the cache back, and try once more
    release_cached_locked();
    status = cudaMalloc(&ptr, nbytes);
  }
  if (status != cudaSuccess) {
    cudaGetLastError();
    BF_FAIL("out of GPU memory: cudaMalloc of ", mib(nbytes), " failed (", cudaGetErrorString(status), ") with ",
            mib(stats_.allocated_bytes), " allocated by bertforge; use a smaller --batch_size or "
            "--grad_accumulation");
  }
  ++stats_.device_allocations;
  return ptr;
}

void* CachingAllocator::allocate(size_t nbytes) {
  const size_t size = rounded_size(nbytes);
  std::lock_guard<std::mutex> lock(mutex_);
  void* ptr = nullptr;
  auto cached = free_blocks_.find(size);
  if (cached != free_blocks_.end() && !cached->second.empty()) {
    ptr = cached->second.back();
    cached->second.pop_back();
    stats_.cached_bytes -= size;
  } else {
    ptr = allocate_on_device(size);
    block_sizes_[ptr] = size;
  }
  stats_.allocated_bytes += size;
  stats_.peak_allocated_bytes = std::max(stats_.peak_allocated_bytes, stats_.allocated_bytes);
  return ptr;
}

void CachingAllocator::deallocate(void* ptr) {
  if (ptr == nullptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto block = block_sizes_.find(ptr);
  BF_CHECK(block != block_sizes_.end(), "CachingAllocator: freeing a pointer it did not allocate");
  free_blocks_[block->second].push_back(ptr);
  stats_.allocated_bytes -= block->second;
  stats_.cached_bytes += block->second;
}

void CachingAllocator::release_cached() {
  std::lock_guard<std::mutex> lock(mutex_);
  release_cached_locked();
}

void CachingAllocator::release_cached_locked() {
  for (auto& [size, blocks] : free_blocks_) {
    for (void* ptr : blocks) {
      cudaFree(ptr);
      block_sizes_.erase(ptr);
      stats_.cached_bytes -= size;
    }
    blocks.clear();
  }
}

AllocatorStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void CachingAllocator::reset_peak() {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.peak_allocated_bytes = stats_.allocated_bytes;
}

}  // namespace bertforge::cuda
