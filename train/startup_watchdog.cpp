// The start-up watchdog of multi-rank jobs (startup_watchdog.h).
#include "train/startup_watchdog.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace bertforge {

StartupWatchdog::StartupWatchdog(const LaunchEnvironment& launch, double timeout_seconds, std::string what)
    : thread_([this, launch, timeout_seconds, what = std::move(what)] {
        std::unique_lock<std::mutex> lock(mutex_);
        const auto timeout = std::chrono::duration<double>(timeout_seconds);
        if (done_changed_.wait_for(lock, timeout, [this] { return done_; })) return;
        std::fprintf(stderr,
                     "rank %d: %s: not every one of the %d ranks that %s started joined within %.0f s (one failed "
                     "to start, or is stuck); exiting\n",
                     launch.rank, what.c_str(), launch.world_size, launch.launcher.c_str(), timeout_seconds);
        std::fflush(stderr);
        std::_Exit(1);
      }) {}

StartupWatchdog::~StartupWatchdog() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    done_ = true;
  }
  done_changed_.notify_one();
  thread_.join();
}

}  // namespace bertforge
