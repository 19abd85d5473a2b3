// HostAllocator: size-classed free lists over aligned_alloc (see host_allocator.h).
//
// Each block starts with a kCpuAlignment-byte header holding its size class, so deallocate needs no lookup:
//   [header: size class][ user bytes ... ]
//   ^ aligned_alloc     ^ returned pointer (aligned)
#include "core/host_allocator.h"

#include <cstdlib>
#include <string>

#include "core/check.h"
#include "core/device.h"

namespace bertforge {

namespace {

constexpr size_t kHeaderBytes = kCpuAlignment;

void* base_of(void* ptr) { return static_cast<char*>(ptr) - kHeaderBytes; }

bool address_sanitizer_active() {
#if defined(__SANITIZE_ADDRESS__)
  return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  return true;
#else
  return false;
#endif
#else
  return false;
#endif
}

}  // namespace

HostAllocator::HostAllocator(size_t cache_limit) : cache_limit_(cache_limit) {}

HostAllocator::~HostAllocator() { release_cached(); }

size_t HostAllocator::size_class(size_t nbytes) {
  size_t rounded = (nbytes + kCpuAlignment - 1) / kCpuAlignment * kCpuAlignment;
  if (rounded <= 4 * kCpuAlignment) return rounded == 0 ? kCpuAlignment : rounded;
  const size_t power_of_two = size_t{1} << (63 - __builtin_clzll(rounded));  // the largest <= rounded
  const size_t step = power_of_two / 4;  // a multiple of kCpuAlignment here
  return (rounded + step - 1) / step * step;
}

void* HostAllocator::allocate(size_t nbytes) {
  const size_t size = size_class(nbytes);
  if (size >= kMinCachedBytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = free_blocks_.find(size);
    if (it != free_blocks_.end() && !it->second.empty()) {
      void* ptr = it->second.back();
      it->second.pop_back();
      stats_.cached_bytes -= size;
      ++stats_.reused;
      count_allocation(size);
      return ptr;
    }
    ++stats_.fresh;
  }
  void* base = std::aligned_alloc(kCpuAlignment, kHeaderBytes + size);
  if (base == nullptr) {  // the cache may hold what we need, in other size classes
    release_cached();
    base = std::aligned_alloc(kCpuAlignment, kHeaderBytes + size);
    if (base == nullptr) BF_FAIL("out of host memory allocating ", nbytes, " bytes");
  }
  *static_cast<size_t*>(base) = size;
  count_allocation(size);
  return static_cast<char*>(base) + kHeaderBytes;
}

void HostAllocator::count_allocation(size_t size) {
  const int64_t live = live_bytes_.fetch_add(static_cast<int64_t>(size), std::memory_order_relaxed) +
                       static_cast<int64_t>(size);
  int64_t peak = peak_live_bytes_.load(std::memory_order_relaxed);
  while (live > peak && !peak_live_bytes_.compare_exchange_weak(peak, live, std::memory_order_relaxed)) {
  }
}

void HostAllocator::reset_peak() { peak_live_bytes_.store(live_bytes_.load(std::memory_order_relaxed)); }

void HostAllocator::deallocate(void* ptr) {
  if (ptr == nullptr) return;
  void* base = base_of(ptr);
  const size_t size = *static_cast<size_t*>(base);
  live_bytes_.fetch_sub(static_cast<int64_t>(size), std::memory_order_relaxed);
  if (size >= kMinCachedBytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stats_.cached_bytes + size <= cache_limit_) {
      free_blocks_[size].push_back(ptr);
      stats_.cached_bytes += size;
      return;
    }
  }
  std::free(base);
}

void HostAllocator::release_cached() {
  std::lock_guard<std::mutex> lock(mutex_);
  release_cached_locked();
}

void HostAllocator::release_cached_locked() {
  for (auto& [size, blocks] : free_blocks_) {
    for (void* ptr : blocks) std::free(base_of(ptr));
  }
  free_blocks_.clear();
  stats_.cached_bytes = 0;
}

HostAllocator::Stats HostAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  Stats stats = stats_;
  stats.live_bytes = live_bytes_.load(std::memory_order_relaxed);
  stats.peak_live_bytes = peak_live_bytes_.load(std::memory_order_relaxed);
  return stats;
}

HostAllocator& host_allocator() {
  static HostAllocator* allocator = [] {
    size_t limit_mb = 8192;
    if (const char* env = std::getenv("BERTFORGE_HOST_CACHE_MB"); env != nullptr && *env != '\0') {
      char* end = nullptr;
      const unsigned long long value = std::strtoull(env, &end, 10);
      BF_CHECK(*end == '\0', "BERTFORGE_HOST_CACHE_MB must be a number of megabytes, got '", env, "'");
      limit_mb = static_cast<size_t>(value);
    }
    if (address_sanitizer_active()) limit_mb = 0;
    // Never destroyed: tensors in static objects may be freed after this function's statics.
    return new HostAllocator(limit_mb << 20);
  }();
  return *allocator;
}

}  // namespace bertforge
