// StopSignals: SIGINT (Ctrl-C) and SIGTERM (kill, a scheduler's preemption) turned into a request to stop at
// the next step boundary, so that a long run writes a final checkpoint instead of losing everything since the
// last one. A second signal ends the process at once (exit status 128 + signal number), for a user who does not
// want to wait; the checkpoint being written then is lost, but never corrupts the run (train/checkpoint.h
// publishes a checkpoint only when it is complete).
//
//   StopSignals signals;                                  // handlers installed
//   config.stop_requested = [] { return StopSignals::requested(); };
//   ...                                                   // destructor: the previous handlers are back
//
// One instance at a time per process (the signal state is process-wide).
#pragma once

namespace bertforge {

class StopSignals {
 public:
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // Whether a SIGINT or SIGTERM has arrived since construction; the number of the first one (0 if none).
  static bool requested();
  static int signal_number();
};

}  // namespace bertforge
