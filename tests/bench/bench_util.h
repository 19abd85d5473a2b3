// tests/bench/bench_util.h — what the benchmarks in tests/bench share (header-only): timing a call as the median
// (and best) of repeats after warm-up calls, running a benchmark's PyTorch peer script (peer_python()), and naming
// the CPU the figures come from.
//
// A peer script prints one line per figure, "key value [value ...]"; run_torch_peer returns those values by key.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#ifndef BENCH_SOURCE_DIR
#error "BENCH_SOURCE_DIR must name tests/bench (tests/CMakeLists.txt defines it for benchmark targets)"
#endif

namespace bertforge::bench {

// The CPU from /proc/cpuinfo: "model name (family F, model M)", e.g. "AMD EPYC (family 25, model 17)" (Zen 4; a
// virtual machine may hide the full name), or "unknown CPU".
inline std::string cpu_model() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string name, family, model;
  for (std::string line; std::getline(cpuinfo, line) && (name.empty() || family.empty() || model.empty());) {
    const size_t colon = line.find(':');
    if (colon == std::string::npos || colon + 2 > line.size()) continue;
    const std::string value = line.substr(colon + 2);
    if (line.rfind("model name", 0) == 0) name = value;
    if (line.rfind("cpu family", 0) == 0) family = value;
    if (line.rfind("model\t", 0) == 0) model = value;
  }
  if (name.empty()) return "unknown CPU";
  return family.empty() || model.empty() ? name : name + " (family " + family + ", model " + model + ")";
}

struct Timing {
  double median = 0.0, best = 0.0;  // seconds
};

// `warmup` untimed calls of run(), then `repeats` (>= 1) timed ones: the median (the upper one for an even count)
// and the best time.
template <typename Fn>
Timing time_runs(Fn&& run, int warmup, int repeats) {
  for (int i = 0; i < warmup; ++i) run();
  std::vector<double> seconds;
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    run();
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(seconds.begin(), seconds.end());
  return {seconds[repeats / 2], seconds[0]};
}

// The Python of the peer scripts: $BERTFORGE_BENCH_PYTHON, else /usr/bin/python3 (Debian's, with python3-torch).
inline std::string peer_python() {
  const char* chosen = std::getenv("BERTFORGE_BENCH_PYTHON");
  return chosen != nullptr && *chosen != '\0' ? chosen : "/usr/bin/python3";
}

// Whether that Python can import torch (the peer scripts need it).
inline bool torch_available() {
  return std::system((peer_python() + " -c 'import torch' >/dev/null 2>&1").c_str()) == 0;
}

// Runs `peer_python() tests/bench/<script> <args...>` and reads its "key value [value ...]" lines; returns the
// values by key, or nothing if torch is not available or the script cannot be started.
inline std::map<std::string, std::vector<double>> run_torch_peer(const std::string& script,
                                                                 const std::vector<std::string>& args) {
  std::map<std::string, std::vector<double>> result;
  if (!torch_available()) return result;
  std::string command = peer_python() + " " BENCH_SOURCE_DIR "/" + script;
  for (const std::string& arg : args) command += " " + arg;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  std::string output;
  char buffer[4096];
  for (size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) output.append(buffer, n);
  pclose(pipe);
  std::istringstream lines(output);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string key;
    std::vector<double> values;
    double value;
    if (!(fields >> key)) continue;
    while (fields >> value) values.push_back(value);
    if (!values.empty()) result[key] = values;
  }
  return result;
}

}  // namespace bertforge::bench
