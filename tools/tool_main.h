// tools/tool_main.h — what the command-line tools' main() functions share (header-only): parsing flags with no
// positional arguments allowed, --help, and running the tool's body with its errors turned into a message and an
// exit code ("<tool>: <message>" on stderr; 1 for a failed run, 2 for bad usage).
#pragma once

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "absl/strings/string_view.h"
#include "core/check.h"

namespace bertforge {

// Whether the command line asks for --help (or -help, --help=...) before any "--".
inline bool asks_for_help(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const absl::string_view arg = argv[i];
    if (arg == "--") return false;
    if (arg == "--help" || arg == "-help" || absl::StartsWith(arg, "--help=")) return true;
  }
  return false;
}

// --help: what the tool does, how to call it, and its own flags (those defined under tools/, which a tool's binary
// links only its own of) with their help and default, sorted. absl's --help would list them under the absolute
// path of the build's source files and exit 1; asking for help is not an error.
inline void print_tool_help(const char* tool, absl::string_view usage) {
  absl::ConsumeSuffix(&usage, "; see --help");
  std::printf("%s: %s\nusage: %s --flag=value ... (flags only; --flagfile=FILE reads them from FILE)\n\nflags:\n",
              tool, std::string(usage).c_str(), tool);
  std::vector<const absl::CommandLineFlag*> own;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (absl::StrContains(flag->Filename(), "tools/")) own.push_back(flag);
  }
  std::sort(own.begin(), own.end(), [](const auto* a, const auto* b) { return a->Name() < b->Name(); });
  for (const absl::CommandLineFlag* flag : own) {
    std::printf("  --%s  %s (default: %s)\n", std::string(flag->Name()).c_str(), flag->Help().c_str(),
                flag->DefaultValue().empty() ? "none" : flag->DefaultValue().c_str());
  }
}

// Parses the flags; false (after saying why) when positional arguments were given. --help prints the tool's help
// (print_tool_help) and exits 0.
inline bool parse_tool_flags(const char* tool, const char* usage, int argc, char** argv) {
  if (asks_for_help(argc, argv)) {
    print_tool_help(tool, usage);
    std::exit(0);
  }
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
