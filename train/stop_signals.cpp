// Signal handlers that only set a flag (async-signal-safe: an atomic store, write(2), _exit(2)).
#include "train/stop_signals.h"

#include <signal.h>
#include <unistd.h>

#include <cstring>

#include "core/check.h"

namespace bertforge {
namespace {

volatile sig_atomic_t g_signal = 0;
struct sigaction g_previous_int, g_previous_term;
bool g_installed = false;

void on_stop_signal(int number) {
  if (g_signal != 0) _exit(128 + number);  // the second signal: the user wants out now
  g_signal = number;
  static const char kMessage[] =
      "\nstop requested: finishing this step and writing a checkpoint (signal again to exit at once)\n";
  ssize_t ignored = write(STDERR_FILENO, kMessage, sizeof(kMessage) - 1);
  (void)ignored;
}

}  // namespace

StopSignals::StopSignals() {
  BF_CHECK(!g_installed, "StopSignals: one instance at a time");
  g_installed = true;
  g_signal = 0;
  struct sigaction action;
  std::memset(&action, 0, sizeof(action));
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // file writes and collectives in progress continue
  sigaction(SIGINT, &action, &g_previous_int);
  sigaction(SIGTERM, &action, &g_previous_term);
}

StopSignals::~StopSignals() {
  sigaction(SIGINT, &g_previous_int, nullptr);
  sigaction(SIGTERM, &g_previous_term, nullptr);
  g_installed = false;
}

bool StopSignals::requested() { return g_signal != 0; }

int StopSignals::signal_number() { return g_signal; }

}  // namespace bertforge
