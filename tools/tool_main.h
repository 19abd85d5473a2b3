// tools/tool_main.h — what the command-line tools' main() functions share (header-only): parsing flags with no
// positional arguments allowed, and running the tool's body with its errors turned into a message and an exit
// code ("<tool>: <message>" on stderr; 1 for a failed run, 2 for bad usage).
#pragma once

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "core/check.h"

namespace bertforge {

// Parses the flags; false (after saying why) when positional arguments were given.
inline bool parse_tool_flags(const char* tool, const char* usage, int argc, char** argv) {
  absl::SetProgramUsageMessage(usage);
  const std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  if (positional.size() > 1) {
    std::fprintf(stderr, "%s: unexpected argument %s (flags only; see --help)\n", tool, positional[1]);
    return false;
  }
  return true;
}

// Runs `body`; 0 when it succeeds, else prints its error (a Status or a thrown bertforge::Error) and returns 1.
inline int run_tool(const char* tool, const std::function<absl::Status()>& body) {
  try {
    const absl::Status status = body();
    if (status.ok()) return 0;
    std::fprintf(stderr, "%s: %s\n", tool, std::string(status.message()).c_str());
  } catch (const Error& e) {
    std::fprintf(stderr, "%s: %s\n", tool, e.what());
  }
  return 1;
}

}  // namespace bertforge
