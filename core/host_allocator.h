// HostAllocator: the CPU's memory allocator, which keeps freed large blocks for reuse.
//
// A training step allocates the same few hundred activation and gradient buffers on every step. From glibc,
// each block over its mmap threshold is a fresh mmap: the kernel zeroes and maps every page again on first
// touch, and page faults took up to a quarter of a step. Here a freed block of at least kMinCachedBytes goes
// to a free list of its size class instead, and the next request of that class gets it back, pages warm.
//
// Size classes: requests are rounded up to 4 classes per power of two (at most 25% over the request), so
// buffers of one shape always share a class. The cache holds at most `cache_limit` bytes (freed blocks over it
// go back to the system), and a failing allocation first releases the whole cache and retries. Under
// AddressSanitizer the default allocator caches nothing, so ASan still sees every use after free.
//
// Every block is kCpuAlignment-aligned. Thread-safe.
#pragma once

#include <cstddef>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

namespace bertforge {

class HostAllocator {
 public:
  static constexpr size_t kMinCachedBytes = size_t{64} << 10;

  // cache_limit: the most bytes kept in free lists; 0 caches nothing.
  explicit HostAllocator(size_t cache_limit);
  ~HostAllocator();  // returns the cached blocks; live blocks must have been deallocated
  HostAllocator(const HostAllocator&) = delete;
  HostAllocator& operator=(const HostAllocator&) = delete;

  // At least nbytes (0 allowed), kCpuAlignment-aligned; throws bertforge::Error when out of memory.
  void* allocate(size_t nbytes);
  // A pointer from allocate() of this allocator, or nullptr.
  void deallocate(void* ptr);
  // Returns every cached block to the system.
  void release_cached();

  struct Stats {
    size_t cached_bytes = 0;     // in free lists
    int64_t reused = 0;          // allocations served from a free list
    int64_t fresh = 0;           // allocations of a cacheable size served by the system
    int64_t live_bytes = 0;      // handed out and not yet deallocated, counted by size class
    int64_t peak_live_bytes = 0;  // the most live_bytes since construction or reset_peak()
  };
  Stats stats() const;
  // Starts a new peak at the current live_bytes (to measure one step's memory).
  void reset_peak();

  // The size class of a request: nbytes rounded up to a quarter of its power of two (and to kCpuAlignment).
  static size_t size_class(size_t nbytes);

 private:
  void release_cached_locked();
  void count_allocation(size_t size);

  const size_t cache_limit_;
  mutable std::mutex mutex_;
  std::map<size_t, std::vector<void*>> free_blocks_;  // by size class
  Stats stats_;  // live_bytes and peak_live_bytes are kept in the atomics below instead
  std::atomic<int64_t> live_bytes_{0};
  std::atomic<int64_t> peak_live_bytes_{0};
};

// The allocator behind CPU storage: caching up to BERTFORGE_HOST_CACHE_MB megabytes (default 8192; 0 turns the
// cache off), nothing under AddressSanitizer.
HostAllocator& host_allocator();

}  // namespace bertforge
