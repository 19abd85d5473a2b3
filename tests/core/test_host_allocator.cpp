// HostAllocator: size classes, reuse of freed blocks, the cache limit, alignment and release.
#include "core/host_allocator.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

#include "core/device.h"

namespace bertforge {
namespace {

TEST(HostAllocatorTest, SizeClassesRoundUpByAtMostAQuarter) {
  EXPECT_EQ(HostAllocator::size_class(0), kCpuAlignment);
  EXPECT_EQ(HostAllocator::size_class(1), kCpuAlignment);
  EXPECT_EQ(HostAllocator::size_class(64), 64u);
  EXPECT_EQ(HostAllocator::size_class(65), 128u);
  EXPECT_EQ(HostAllocator::size_class(1 << 20), size_t{1} << 20);
  // Between 1 MiB and 2 MiB the classes are 1.25, 1.5, 1.75 and 2 MiB.
  EXPECT_EQ(HostAllocator::size_class((1 << 20) + 1), size_t{5} << 18);
  EXPECT_EQ(HostAllocator::size_class((size_t{3} << 19) + 64), size_t{7} << 18);
  for (size_t n = 1; n < (size_t{1} << 30); n = n * 3 + 7) {
    const size_t c = HostAllocator::size_class(n);
    EXPECT_GE(c, n);
    EXPECT_EQ(c % kCpuAlignment, 0u);
    if (n > 4 * kCpuAlignment) {
      EXPECT_LE(c, n + n / 4 + kCpuAlignment) << n;
    }
    EXPECT_EQ(HostAllocator::size_class(c), c) << "a class is its own class: " << n;
  }
}

TEST(HostAllocatorTest, ReusesAFreedBlockOfTheSameClass) {
  HostAllocator allocator(size_t{64} << 20);
  void* a = allocator.allocate(1000000);
  std::memset(a, 1, 1000000);
  allocator.deallocate(a);
  EXPECT_EQ(allocator.stats().cached_bytes, HostAllocator::size_class(1000000));
  void* b = allocator.allocate(999000);  // the same class
  EXPECT_EQ(b, a);
  EXPECT_EQ(allocator.stats().reused, 1);
  EXPECT_EQ(allocator.stats().cached_bytes, 0u);
  void* c = allocator.allocate(4000000);  // another class: fresh
  EXPECT_NE(c, a);
  EXPECT_EQ(allocator.stats().fresh, 2);
  allocator.deallocate(b);
  allocator.deallocate(c);
  allocator.release_cached();
  EXPECT_EQ(allocator.stats().cached_bytes, 0u);
}

TEST(HostAllocatorTest, SmallBlocksAndBlocksOverTheLimitAreNotCached) {
  HostAllocator allocator(size_t{3} << 20);
  void* small = allocator.allocate(HostAllocator::kMinCachedBytes / 2);
  allocator.deallocate(small);
  EXPECT_EQ(allocator.stats().cached_bytes, 0u);
  void* a = allocator.allocate(size_t{2} << 20);
  void* b = allocator.allocate(size_t{2} << 20);
  allocator.deallocate(a);
  allocator.deallocate(b);  // 4 MiB would exceed the 3 MiB limit
  EXPECT_EQ(allocator.stats().cached_bytes, size_t{2} << 20);
  HostAllocator no_cache(0);
  no_cache.deallocate(no_cache.allocate(size_t{1} << 20));
  EXPECT_EQ(no_cache.stats().cached_bytes, 0u);
}

TEST(HostAllocatorTest, BlocksAreAlignedAndWritable) {
  HostAllocator allocator(size_t{64} << 20);
  for (size_t n : {size_t{0}, size_t{1}, size_t{100}, size_t{70000}, size_t{3} << 20}) {
    auto* p = static_cast<unsigned char*>(allocator.allocate(n));
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % kCpuAlignment, 0u) << n;
    std::memset(p, 0xab, n);
    allocator.deallocate(p);
  }
  allocator.deallocate(nullptr);
}

TEST(HostAllocatorTest, CountsLiveAndPeakBytesBySizeClass) {
  HostAllocator allocator(size_t{64} << 20);
  const int64_t big = static_cast<int64_t>(HostAllocator::size_class(1000000));
  const int64_t small = static_cast<int64_t>(HostAllocator::size_class(100));
  void* a = allocator.allocate(1000000);
  void* b = allocator.allocate(100);
  EXPECT_EQ(allocator.stats().live_bytes, big + small);
  allocator.deallocate(a);  // cached: no longer live
  EXPECT_EQ(allocator.stats().live_bytes, small);
  EXPECT_EQ(allocator.stats().peak_live_bytes, big + small);
  allocator.reset_peak();
  EXPECT_EQ(allocator.stats().peak_live_bytes, small);
  void* c = allocator.allocate(999000);  // reused from the cache: live again
  EXPECT_EQ(allocator.stats().live_bytes, big + small);
  allocator.deallocate(b);
  allocator.deallocate(c);
  EXPECT_EQ(allocator.stats().live_bytes, 0);
  EXPECT_EQ(allocator.stats().peak_live_bytes, big + small);
}

}  // namespace
}  // namespace bertforge
