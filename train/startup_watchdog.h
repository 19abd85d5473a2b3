// A watchdog for the start-up of a multi-rank job: the calls that wait for every rank to join (MPI_Init,
// ncclCommInitRank) have no timeout of their own, so this thread ends the process with a message when start-up
// takes longer than the timeout, instead of leaving it waiting for a rank that never comes. The launcher then
// ends the others.
#pragma once

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "train/communicator.h"

namespace bertforge {

class StartupWatchdog {
 public:
  // `what`: the start-up step, for the message ("data-parallel start-up", "NCCL start-up").
  StartupWatchdog(const LaunchEnvironment& launch, double timeout_seconds, std::string what);
  ~StartupWatchdog();  // start-up finished: stops the watchdog
  StartupWatchdog(const StartupWatchdog&) = delete;
  StartupWatchdog& operator=(const StartupWatchdog&) = delete;

 private:
  std::mutex mutex_;
  std::condition_variable done_changed_;
  bool done_ = false;
  std::thread thread_;  // last: starts once the members above exist
};

}  // namespace bertforge
