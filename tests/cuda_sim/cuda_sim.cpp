// The CUDA simulator's runtime: fibers, the block scheduler, barriers and warp exchanges
// (see cuda_sim.h for what it models).
#include "tests/cuda_sim/cuda_sim.h"

#include <ucontext.h>

#include <cstdlib>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/check.h"

#if defined(__SANITIZE_ADDRESS__)
#define CUDA_SIM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CUDA_SIM_ASAN 1
#endif
#endif
#ifdef CUDA_SIM_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

namespace cuda_sim {
namespace {

#ifdef CUDA_SIM_ASAN
constexpr size_t kStackBytes = 256 * 1024;  // ASan's redzones make frames larger
#else
constexpr size_t kStackBytes = 64 * 1024;
#endif
constexpr uint64_t kPoison = ~uint64_t{0};
constexpr unsigned int kMaxThreadsPerBlock = 1024;
constexpr size_t kMaxDynamicSharedBytes = 48 * 1024;

enum class Wait : uint8_t { kNone, kBlockBarrier, kWarp };

struct Fiber {
  ucontext_t context;
  ThreadView view;
  int warp = 0, lane = 0;
  bool done = false;
  Wait wait = Wait::kNone;
  uint64_t barrier_generation = 0;  // the block barrier generation this fiber waits to see pass
  bool exchange_complete = false;   // set when the warp exchange this fiber waits in completes
  WarpValues received;              // what that exchange delivered
  void* asan_fake_stack = nullptr;
};

// One warp primitive in progress: the lanes of `mask` that have arrived and their values.
struct Exchange {
  unsigned int mask;
  uint32_t arrived;
  uint64_t values[32];
};

struct Warp {
  uint32_t live_lanes = 0;  // lanes that exist and have not returned
  std::vector<Exchange> exchanges;
};

// The state of one launch; blocks reuse the fibers' stacks.
struct Launch {
  const char* kernel_name;
  const std::function<void()>* body;
  std::vector<Fiber> fibers;
  std::unique_ptr<char[]> stacks;
  std::vector<Warp> warps;
  std::vector<uint64_t> dynamic_shared;
  ucontext_t scheduler;
  const void* scheduler_stack_bottom = nullptr;
  size_t scheduler_stack_size = 0;
  int live = 0;                 // threads of the block that have not returned
  int barrier_arrived = 0;      // threads waiting at __syncthreads
  uint64_t barrier_generation = 0;
  uint64_t events = 0;          // arrivals, releases and returns: the scheduler's progress measure
  std::string error;            // the first exception thrown by a kernel thread
};

thread_local Launch* current_launch = nullptr;
thread_local Fiber* current_fiber = nullptr;

Fiber& running_fiber() {
  BF_CHECK(current_fiber != nullptr, "cuda_sim: a device function was called outside a kernel launch");
  return *current_fiber;
}

// ---- Switching between the scheduler and a fiber (with AddressSanitizer's fiber annotations) ----

void switch_to_fiber(Launch& launch, Fiber& fiber) {
  current_fiber = &fiber;
#ifdef CUDA_SIM_ASAN
  void* fake_stack = nullptr;
  const size_t index = static_cast<size_t>(&fiber - launch.fibers.data());
  __sanitizer_start_switch_fiber(&fake_stack, launch.stacks.get() + index * kStackBytes, kStackBytes);
#endif
  swapcontext(&launch.scheduler, &fiber.context);
#ifdef CUDA_SIM_ASAN
  __sanitizer_finish_switch_fiber(fake_stack, nullptr, nullptr);
#endif
  current_fiber = nullptr;
}

void after_switch_into_fiber(Launch& launch, Fiber& fiber) {
#ifdef CUDA_SIM_ASAN
  __sanitizer_finish_switch_fiber(fiber.asan_fake_stack, &launch.scheduler_stack_bottom,
                                  &launch.scheduler_stack_size);
#endif
}

// Suspends the running fiber until the scheduler resumes it.
void yield(Launch& launch, Fiber& fiber) {
#ifdef CUDA_SIM_ASAN
  __sanitizer_start_switch_fiber(&fiber.asan_fake_stack, launch.scheduler_stack_bottom,
                                 launch.scheduler_stack_size);
#endif
  swapcontext(&fiber.context, &launch.scheduler);
  after_switch_into_fiber(launch, fiber);
}

// ---- Barriers --------------------------------------------------------------------------------

void release_block_barrier_if_complete(Launch& launch) {
  if (launch.barrier_arrived > 0 && launch.barrier_arrived == launch.live) {
    launch.barrier_arrived = 0;
    ++launch.barrier_generation;
    ++launch.events;
  }
}

// Completes `warp`'s exchanges whose live lanes have all arrived.
void complete_warp_exchanges(Launch& launch, int warp_index) {
  Warp& warp = launch.warps[warp_index];
  for (size_t e = 0; e < warp.exchanges.size();) {
    Exchange& exchange = warp.exchanges[e];
    const uint32_t needed = exchange.mask & warp.live_lanes;
    if ((exchange.arrived & needed) != needed) {
      ++e;
      continue;
    }
    WarpValues values;
    for (int lane = 0; lane < 32; ++lane) {
      values.value[lane] = (exchange.arrived >> lane) & 1u ? exchange.values[lane] : kPoison;
    }
    for (int lane = 0; lane < 32; ++lane) {
      if ((exchange.arrived >> lane) & 1u) {
        Fiber& fiber = launch.fibers[static_cast<size_t>(warp_index) * 32 + lane];
        fiber.received = values;
        fiber.exchange_complete = true;
      }
    }
    warp.exchanges.erase(warp.exchanges.begin() + static_cast<std::ptrdiff_t>(e));
    ++launch.events;
  }
}

// ---- A fiber's life: run the kernel body, then leave for good ------------------------------------

void fiber_entry(unsigned int high, unsigned int low) {
  Launch& launch = *current_launch;
  Fiber& fiber = *reinterpret_cast<Fiber*>((static_cast<uintptr_t>(high) << 32) | low);
  after_switch_into_fiber(launch, fiber);
  try {
    (*launch.body)();
  } catch (const std::exception& e) {
    if (launch.error.empty()) launch.error = e.what();
  }
  fiber.done = true;
  --launch.live;
  launch.warps[fiber.warp].live_lanes &= ~(1u << fiber.lane);
  ++launch.events;
  release_block_barrier_if_complete(launch);
  complete_warp_exchanges(launch, fiber.warp);
#ifdef CUDA_SIM_ASAN
  __sanitizer_start_switch_fiber(nullptr, launch.scheduler_stack_bottom, launch.scheduler_stack_size);
#endif
  setcontext(&launch.scheduler);
}

std::string describe_deadlock(const Launch& launch, const uint3& block) {
  int at_barrier = 0, at_warp = 0;
  for (const Fiber& fiber : launch.fibers) {
    if (fiber.done) continue;
    (fiber.wait == Wait::kBlockBarrier ? at_barrier : at_warp) += 1;
  }
  return absl::StrCat("cuda_sim: kernel ", launch.kernel_name, " deadlocked in block (", block.x, ", ", block.y, ", ",
                      block.z, "): ", at_barrier, " threads wait at __syncthreads and ", at_warp,
                      " at a warp primitive that other threads never reach; ",
                      launch.fibers.size() - static_cast<size_t>(at_barrier + at_warp), " of ", launch.fibers.size(),
                      " threads returned");
}

// Thread t of the block: its indices, and a fresh context that starts in fiber_entry on its own stack. (Not
// inlined: getcontext returns twice, which would make the caller's loop variables unsafe.)
__attribute__((noinline)) void prepare_fiber(Launch& launch, int t, const uint3& block, dim3 grid, dim3 block_dim) {
  Fiber& fiber = launch.fibers[t];
  fiber = Fiber{};
  fiber.view.thread_idx = uint3{t % block_dim.x, (t / block_dim.x) % block_dim.y, t / (block_dim.x * block_dim.y)};
  fiber.view.block_idx = block;
  fiber.view.block_dim = block_dim;
  fiber.view.grid_dim = grid;
  fiber.warp = t / 32;
  fiber.lane = t % 32;
  launch.warps[fiber.warp].live_lanes |= 1u << fiber.lane;
  getcontext(&fiber.context);
  fiber.context.uc_stack.ss_sp = launch.stacks.get() + static_cast<size_t>(t) * kStackBytes;
  fiber.context.uc_stack.ss_size = kStackBytes;
  fiber.context.uc_link = nullptr;
  const auto address = reinterpret_cast<uintptr_t>(&fiber);
  makecontext(&fiber.context, reinterpret_cast<void (*)()>(&fiber_entry), 2, static_cast<unsigned int>(address >> 32),
              static_cast<unsigned int>(address));
}

void run_block(Launch& launch, const uint3& block, dim3 grid, dim3 block_dim) {
  const int threads = static_cast<int>(launch.fibers.size());
  for (Warp& warp : launch.warps) {
    warp.live_lanes = 0;
    warp.exchanges.clear();
  }
  for (int t = 0; t < threads; ++t) prepare_fiber(launch, t, block, grid, block_dim);
  // Uninitialised shared memory reads as NaN, so a kernel that relies on it fails its test.
  if (!launch.dynamic_shared.empty()) {
    std::memset(launch.dynamic_shared.data(), 0xff, launch.dynamic_shared.size() * sizeof(uint64_t));
  }
  launch.live = threads;
  launch.barrier_arrived = 0;
  while (launch.live > 0) {
    const uint64_t events_before = launch.events;
    for (Fiber& fiber : launch.fibers) {
      if (!fiber.done) switch_to_fiber(launch, fiber);
    }
    if (!launch.error.empty()) bertforge::ThrowError(__FILE__, __LINE__, launch.error);
    if (launch.live > 0 && launch.events == events_before) {
      bertforge::ThrowError(__FILE__, __LINE__, describe_deadlock(launch, block));
    }
  }
}

}  // namespace

const ThreadView& this_thread() { return running_fiber().view; }

void* dynamic_shared_memory() {
  running_fiber();
  return current_launch->dynamic_shared.data();
}

int lane_id() { return running_fiber().lane; }

void sync_threads() {
  Fiber& fiber = running_fiber();
  Launch& launch = *current_launch;
  fiber.wait = Wait::kBlockBarrier;
  fiber.barrier_generation = launch.barrier_generation;
  ++launch.barrier_arrived;
  ++launch.events;
  release_block_barrier_if_complete(launch);
  while (launch.barrier_generation == fiber.barrier_generation) yield(launch, fiber);
  fiber.wait = Wait::kNone;
}

WarpValues warp_exchange(unsigned int mask, uint64_t value) {
  Fiber& fiber = running_fiber();
  Launch& launch = *current_launch;
  BF_CHECK((mask >> fiber.lane) & 1u, "cuda_sim: kernel ", launch.kernel_name, ": lane ", fiber.lane,
           " calls a warp primitive with mask 0x", absl::Hex(mask), " that does not name it");
  Warp& warp = launch.warps[fiber.warp];
  Exchange* exchange = nullptr;
  for (Exchange& e : warp.exchanges) {
    if (e.mask == mask) exchange = &e;
  }
  if (exchange == nullptr) {
    warp.exchanges.push_back(Exchange{mask, 0, {}});
    exchange = &warp.exchanges.back();
  }
  BF_CHECK(!((exchange->arrived >> fiber.lane) & 1u), "cuda_sim: lane arrived twice at one warp primitive");
  exchange->arrived |= 1u << fiber.lane;
  exchange->values[fiber.lane] = value;
  ++launch.events;
  fiber.wait = Wait::kWarp;
  fiber.exchange_complete = false;
  complete_warp_exchanges(launch, fiber.warp);
  while (!fiber.exchange_complete) yield(launch, fiber);
  fiber.wait = Wait::kNone;
  return fiber.received;
}

void run_grid(const char* kernel_name, dim3 grid, dim3 block, size_t dynamic_shared_bytes,
              const std::function<void()>& body) {
  BF_CHECK(current_launch == nullptr, "cuda_sim: kernel ", kernel_name, " launched from inside a kernel");
  const uint64_t threads = uint64_t{block.x} * block.y * block.z;
  BF_CHECK(threads >= 1 && threads <= kMaxThreadsPerBlock && block.z <= 64, "cuda_sim: kernel ", kernel_name,
           ": block (", block.x, ", ", block.y, ", ", block.z, ") has ", threads,
           " threads; a block has 1 to 1024 threads (z at most 64)");
  BF_CHECK(grid.x >= 1 && grid.y >= 1 && grid.z >= 1 && grid.x <= 2147483647u && grid.y <= 65535 &&
               grid.z <= 65535,
           "cuda_sim: kernel ", kernel_name, ": invalid grid (", grid.x, ", ", grid.y, ", ", grid.z, ")");
  BF_CHECK(dynamic_shared_bytes <= kMaxDynamicSharedBytes, "cuda_sim: kernel ", kernel_name, " asks for ",
           dynamic_shared_bytes, " bytes of dynamic shared memory; more than 48 KiB needs an opt-in on the GPU");
  Launch launch;
  launch.kernel_name = kernel_name;
  launch.body = &body;
  launch.fibers.resize(threads);
  launch.stacks.reset(new char[threads * kStackBytes]);
  launch.warps.resize((threads + 31) / 32);
  launch.dynamic_shared.resize((dynamic_shared_bytes + 7) / 8);
  current_launch = &launch;
  try {
    for (unsigned int z = 0; z < grid.z; ++z) {
      for (unsigned int y = 0; y < grid.y; ++y) {
        for (unsigned int x = 0; x < grid.x; ++x) run_block(launch, uint3{x, y, z}, grid, block);
      }
    }
  } catch (...) {
    current_launch = nullptr;
    throw;
  }
  current_launch = nullptr;
}

}  // namespace cuda_sim

unsigned int __ballot_sync(unsigned int mask, int predicate) {
  const cuda_sim::WarpValues all = cuda_sim::warp_exchange(mask, predicate ? 1 : 0);
  unsigned int ballot = 0;
  for (int lane = 0; lane < 32; ++lane) {
    if (all.value[lane] == 1) ballot |= 1u << lane;
  }
  return ballot;
}

unsigned int __activemask() {
  const cuda_sim::Fiber& fiber = cuda_sim::running_fiber();
  return cuda_sim::current_launch->warps[fiber.warp].live_lanes;
}
