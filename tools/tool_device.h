// tools/tool_device.h — the --device flag of the tools (header-only): "cpu", "cuda" or "cuda:N", checked against
// this build and this machine. A plain "cuda" means the GPU of the process's local rank (GPU 0 for one process).
// The CUDA backend is registered on the way (tools that use it link bertforge_cuda and define BERTFORGE_CUDA).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "core/device.h"
#ifdef BERTFORGE_CUDA
#include "cuda/device.h"
#endif

namespace bertforge {

inline absl::StatusOr<Device> select_device(const std::string& flag, int local_rank = 0) {
  BF_ASSIGN_OR_RETURN(Device device, parse_device(flag));
  if (device.is_cpu()) return device;
#ifdef BERTFORGE_CUDA
  cuda::register_cuda_backend();
  const int gpus = cuda::device_count();
  if (gpus == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("--device ", flag, ": no CUDA device (or driver) on this machine"));
  }
  if (flag == "cuda") device.index = local_rank % gpus;
  if (device.index >= gpus) {
    return absl::InvalidArgumentError(absl::StrCat("--device ", device.str(), ": this machine has ", gpus, " GPU(s)"));
  }
  return device;
#else
  return absl::FailedPreconditionError(absl::StrCat(
      "--device ", flag, ": this tool was built without the CUDA backend (no nvcc, or -DBERTFORGE_CUDA=OFF)"));
#endif
}

}  // namespace bertforge
