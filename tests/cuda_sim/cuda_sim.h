// A simulator of the CUDA execution model, so that the kernel sources in cuda/*.cu
// compile with the host compiler and run in tests on machines without a GPU.
//
// Include this header before a kernel source. A launch (BF_LAUNCH in
// cuda/portable.cuh) runs the blocks of the grid one after another on the calling
// thread; inside a block every CUDA thread is a fiber (ucontext) with its own stack,
// and a cooperative scheduler switches fibers only where CUDA threads may wait for
// each other:
//   __syncthreads()                   every live thread of the block arrives;
//   __syncwarp, __shfl*_sync, votes   every live lane named in the mask arrives.
// Threads that have returned count as arrived, as on Volta and later GPUs. A launch
// where no thread can move on (a barrier some threads never reach) throws
// bertforge::Error naming the kernel instead of hanging.
//
// What a kernel sees: threadIdx, blockIdx, blockDim, gridDim; static __shared__
// variables (one copy shared by the fibers of the running block) and dynamic shared
// memory (BF_DYNAMIC_SHARED); warp shuffles (__shfl_sync, _xor, _up, _down) and
// votes (__ballot_sync, __any_sync, __all_sync) of 32-lane warps; atomics (plain
// read-modify-writes are atomic here: fibers switch only at the points above); the
// math functions of CUDA's device library that kernels use (float versions).
//
// A shuffle that reads a lane that is not taking part (not in the mask, exited, or
// beyond the end of a partial warp) gets a poison value (all bits set: NaN as a float,
// -1 as an int) rather than what a GPU would give (undefined), so a kernel that
// depends on such a read fails its test. Launch limits are those of sm_80/sm_90:
// 1024 threads per block and 48 KiB of dynamic shared memory without opt-in.
#pragma once

#define BF_CUDA_SIMULATOR 1

#include <math.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <type_traits>

// ---- CUDA C++ keywords ------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) alignas(n)
// Blocks run one at a time on one OS thread, so a function-local static is exactly one
// copy per running block (thread_local keeps concurrent tests in separate threads apart).
#define __shared__ static thread_local

struct uint3 {
  unsigned int x, y, z;
};
struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1) : x(x_), y(y_), z(z_) {}
};

namespace cuda_sim {

// What the running CUDA thread sees of itself.
struct ThreadView {
  uint3 thread_idx;
  uint3 block_idx;
  dim3 block_dim;
  dim3 grid_dim;
};

// The running thread (valid only inside a kernel launched through launch()).
const ThreadView& this_thread();
// The running block's dynamic shared memory.
void* dynamic_shared_memory();

void sync_threads();
// Waits until every live lane of `mask` in this thread's warp has arrived with the same
// mask, then returns what each lane deposited (poison for lanes not taking part).
struct WarpValues {
  uint64_t value[32];
};
WarpValues warp_exchange(unsigned int mask, uint64_t value);
int lane_id();

// Runs `body` as every thread of every block of the grid (see the file comment).
// Throws bertforge::Error on a bad configuration or a deadlock.
void run_grid(const char* kernel_name, dim3 grid, dim3 block, size_t dynamic_shared_bytes,
              const std::function<void()>& body);

template <typename Kernel, typename... Args>
void launch(const char* kernel_name, Kernel kernel, dim3 grid, dim3 block, size_t dynamic_shared_bytes,
            Args... args) {
  run_grid(kernel_name, grid, block, dynamic_shared_bytes, [&] { kernel(args...); });
}

template <typename T>
uint64_t to_bits(T value) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8, "shuffles move values of up to 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof(T));
  return bits;
}
template <typename T>
T from_bits(uint64_t bits) {
  T value;
  std::memcpy(&value, &bits, sizeof(T));
  return value;
}

}  // namespace cuda_sim

#define threadIdx (::cuda_sim::this_thread().thread_idx)
#define blockIdx (::cuda_sim::this_thread().block_idx)
#define blockDim (::cuda_sim::this_thread().block_dim)
#define gridDim (::cuda_sim::this_thread().grid_dim)

constexpr int warpSize = 32;

inline void __syncthreads() { cuda_sim::sync_threads(); }
inline void __syncwarp(unsigned int mask = 0xffffffffu) { cuda_sim::warp_exchange(mask, 0); }
inline void __threadfence() {}
inline void __threadfence_block() {}

// ---- Warp shuffles and votes --------------------------------------------------------------
// `width` splits the warp into segments of `width` lanes (a power of 2 up to 32), as on a GPU.
template <typename T>
T __shfl_sync(unsigned int mask, T var, int src_lane, int width = 32) {
  const cuda_sim::WarpValues all = cuda_sim::warp_exchange(mask, cuda_sim::to_bits(var));
  const int lane = cuda_sim::lane_id();
  const int src = (lane & ~(width - 1)) + (src_lane & (width - 1));
  return cuda_sim::from_bits<T>(all.value[src]);
}
template <typename T>
T __shfl_xor_sync(unsigned int mask, T var, int lane_mask, int width = 32) {
  const cuda_sim::WarpValues all = cuda_sim::warp_exchange(mask, cuda_sim::to_bits(var));
  const int lane = cuda_sim::lane_id();
  const int src = lane ^ lane_mask;
  const bool same_segment = (src & ~(width - 1)) == (lane & ~(width - 1));
  return same_segment ? cuda_sim::from_bits<T>(all.value[src]) : var;
}
template <typename T>
T __shfl_down_sync(unsigned int mask, T var, unsigned int delta, int width = 32) {
  const cuda_sim::WarpValues all = cuda_sim::warp_exchange(mask, cuda_sim::to_bits(var));
  const int lane = cuda_sim::lane_id();
  const bool inside = (lane & (width - 1)) + static_cast<int>(delta) < width;
  return inside ? cuda_sim::from_bits<T>(all.value[lane + static_cast<int>(delta)]) : var;
}
template <typename T>
T __shfl_up_sync(unsigned int mask, T var, unsigned int delta, int width = 32) {
  const cuda_sim::WarpValues all = cuda_sim::warp_exchange(mask, cuda_sim::to_bits(var));
  const int lane = cuda_sim::lane_id();
  const bool inside = (lane & (width - 1)) >= static_cast<int>(delta);
  return inside ? cuda_sim::from_bits<T>(all.value[lane - static_cast<int>(delta)]) : var;
}
unsigned int __ballot_sync(unsigned int mask, int predicate);
inline int __any_sync(unsigned int mask, int predicate) { return __ballot_sync(mask, predicate) != 0; }
inline int __all_sync(unsigned int mask, int predicate) { return __ballot_sync(mask, !predicate) == 0; }
unsigned int __activemask();

// ---- Atomics: fibers switch only at barriers and warp primitives, so these are atomic ----
template <typename T>
T atomicAdd(T* address, T value) {
  const T old = *address;
  *address = old + value;
  return old;
}
template <typename T>
T atomicMax(T* address, T value) {
  const T old = *address;
  *address = old < value ? value : old;
  return old;
}
template <typename T>
T atomicMin(T* address, T value) {
  const T old = *address;
  *address = value < old ? value : old;
  return old;
}
template <typename T>
T atomicExch(T* address, T value) {
  const T old = *address;
  *address = value;
  return old;
}
template <typename T>
T atomicCAS(T* address, T compare, T value) {
  const T old = *address;
  if (old == compare) *address = value;
  return old;
}

// ---- Device math and bit intrinsics that have no host equivalent of the same name ---------
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __fdividef(float x, float y) { return x / y; }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x); }
inline int __float_as_int(float x) { return cuda_sim::from_bits<int>(cuda_sim::to_bits(x)); }
inline float __int_as_float(int x) { return cuda_sim::from_bits<float>(cuda_sim::to_bits(x)); }
inline unsigned int __float_as_uint(float x) { return cuda_sim::from_bits<unsigned int>(cuda_sim::to_bits(x)); }
inline float __uint_as_float(unsigned int x) { return cuda_sim::from_bits<float>(cuda_sim::to_bits(x)); }
inline int __popc(unsigned int x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
// The four signed bytes of a times those of b, summed, plus c (sm_61+'s dp4a.s32.s32).
inline int __dp4a(int a, int b, int c) {
  for (int byte = 0; byte < 4; ++byte) {
    c += static_cast<int>(static_cast<int8_t>(a >> (8 * byte))) * static_cast<int8_t>(b >> (8 * byte));
  }
  return c;
}
template <typename T>
T __ldg(const T* address) {
  return *address;
}

#include "cuda/portable.cuh"
