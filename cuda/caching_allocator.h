// A caching allocator for GPU memory: freed blocks are kept and handed out again for
// requests of the same rounded size, so a training step, which asks for the same sizes
// every time, stops calling cudaMalloc/cudaFree (each a device synchronisation) after
// its first step.
//
// Sizes round up to 512 bytes below 1 MiB and to 2 MiB above. All work runs on one stream
// (cuda/stream.h), so a block freed on the host may be reused at once: the kernels that
// used it are ordered before the kernels of its next owner. When cudaMalloc fails the
// cache is released and the allocation tried once more; if that fails too, the error
// names the request and what is allocated and cached.
#pragma once

#include <cstddef>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace bertforge::cuda {

struct AllocatorStats {
  size_t allocated_bytes = 0;       // in blocks handed out now
  size_t cached_bytes = 0;          // in freed blocks kept for reuse
  size_t peak_allocated_bytes = 0;  // the largest allocated_bytes so far
  size_t device_allocations = 0;    // cudaMalloc calls
};

class CachingAllocator {
 public:
  // Memory on the current device (cudaSetDevice) of at least `nbytes` bytes.
  void* allocate(size_t nbytes);
  // Returns a block from allocate() to the cache.
  void deallocate(void* ptr);
  // cudaFree of every cached block.
  void release_cached();
  AllocatorStats stats() const;
  // Starts a new peak at the current allocated_bytes (to measure one step's memory).
  void reset_peak();

  static size_t rounded_size(size_t nbytes);

 private:
  void* allocate_on_device(size_t nbytes);  // mutex_ held
  void release_cached_locked();

  mutable std::mutex mutex_;
  std::unordered_map<void*, size_t> block_sizes_;      // every live or cached block
  std::map<size_t, std::vector<void*>> free_blocks_;  // cached blocks by size
  AllocatorStats stats_;
};

}  // namespace bertforge::cuda
