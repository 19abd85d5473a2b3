// MPI collectives with a start-up watchdog and per-collective timeouts (communicator_mpi.h).
#include "train/communicator_mpi.h"

#include <mpi.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "train/startup_watchdog.h"

namespace bertforge {
namespace {

std::string mpi_error_string(int error) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(error, text, &length) != MPI_SUCCESS) return absl::StrCat("MPI error ", error);
  return std::string(text, length);
}

}  // namespace
}  // namespace bertforge

// BF_MPI_CHECK(call): throws bertforge::Error "file:line: <call> failed: <MPI's error string>".
#define BF_MPI_CHECK(call)                                                                                \
  do {                                                                                                    \
    const int bf_mpi_error_ = (call);                                                                     \
    if (bf_mpi_error_ != MPI_SUCCESS) {                                                                   \
      ::bertforge::ThrowError(__FILE__, __LINE__,                                                         \
                              ::absl::StrCat(#call, " failed: ", ::bertforge::mpi_error_string(bf_mpi_error_))); \
    }                                                                                                     \
  } while (0)

namespace bertforge {
namespace {

using Clock = std::chrono::steady_clock;

MPI_Datatype mpi_datatype(const Tensor& tensor) { return tensor.dtype() == DType::kF32 ? MPI_FLOAT : MPI_INT64_T; }

// Completes `request`, polling so that a collective some rank never joins ends in an error, not a hang.
void wait_for(MPI_Request* request, const char* what, int rank, double timeout_seconds) {
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(timeout_seconds));
  for (int64_t polls = 0;; ++polls) {
    int done = 0;
    BF_MPI_CHECK(MPI_Test(request, &done, MPI_STATUS_IGNORE));
    if (done) return;
    if (polls % 1024 == 1023) {
      if (Clock::now() > deadline) {
        BF_FAIL("rank ", rank, ": MPI ", what, " did not complete within ", timeout_seconds,
                " s: another rank failed, is stuck, or is not running the same steps");
      }
      std::this_thread::yield();
    }
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<MpiCommunicator>> MpiCommunicator::create(const LaunchEnvironment& launch,
                                                                          const CommunicatorOptions& options) {
  const StartupWatchdog watchdog(launch, options.timeout_seconds, "data-parallel start-up");
  int provided = 0;
  // FUNNELED: OpenMP threads exist, but only the main thread calls MPI.
  const int init_error = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
  if (init_error != MPI_SUCCESS) {
    return absl::InternalError(absl::StrCat("MPI_Init_thread failed: ", mpi_error_string(init_error)));
  }
  BF_MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  int rank = 0, world_size = 0;
  BF_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
  BF_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &world_size));
  std::unique_ptr<MpiCommunicator> communicator(
      new MpiCommunicator(rank, world_size, launch.local_rank, options.timeout_seconds));
  if (launch.world_size > 0 && launch.world_size != world_size) {
    return absl::FailedPreconditionError(absl::StrCat("rank ", rank, ": ", launch.launcher, " announced ",
                                                      launch.world_size, " ranks but MPI has ", world_size));
  }
  if (launch.requested_world_size > 0 && launch.requested_world_size != world_size) {
    return absl::FailedPreconditionError(absl::StrCat(
        "rank ", rank, ": mismatched world size: WORLD_SIZE=", launch.requested_world_size,
        " in the environment, but ", launch.launcher, " started ", world_size, " ranks"));
  }
  communicator->barrier();  // every rank is up
  return communicator;
}

MpiCommunicator::~MpiCommunicator() { MPI_Finalize(); }

namespace {

// An MPI_Iallreduce on `buffer` (host memory) in flight; wait() completes it, averages, and copies the result into
// `target` when that is another tensor (on a GPU).
class MpiPendingAllReduce final : public PendingCollective {
 public:
  MpiPendingAllReduce(Tensor target, Tensor buffer, ReduceOp op, int rank, int world_size, double timeout_seconds)
      : target_(std::move(target)), buffer_(std::move(buffer)), op_(op), rank_(rank), world_size_(world_size),
        timeout_seconds_(timeout_seconds) {
    BF_MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, buffer_.raw_data(), static_cast<int>(buffer_.numel()),
                                mpi_datatype(buffer_), MPI_SUM, MPI_COMM_WORLD, &request_));
  }

  void wait() override {
    wait_for(&request_, "all_reduce", rank_, timeout_seconds_);
    if (op_ == ReduceOp::kAverage) {
      float* values = buffer_.data<float>();
      const float inverse = 1.0f / static_cast<float>(world_size_);
      for (int64_t i = 0; i < buffer_.numel(); ++i) values[i] *= inverse;
    }
    if (!target_.device().is_cpu()) target_.copy_(buffer_);
  }

 private:
  Tensor target_, buffer_;
  ReduceOp op_;
  int rank_, world_size_;
  double timeout_seconds_;
  MPI_Request request_;
};

}  // namespace

void MpiCommunicator::all_reduce(Tensor& tensor, ReduceOp op) { all_reduce_async(tensor, op)->wait(); }

std::unique_ptr<PendingCollective> MpiCommunicator::all_reduce_async(Tensor& tensor, ReduceOp op) {
  check_reduce_tensor(tensor, op, "MPI all_reduce");
  BF_CHECK(tensor.numel() <= INT32_MAX, "MPI all_reduce: ", tensor.numel(), " elements exceed MPI's int count");
  // A GPU tensor goes through host memory.
  Tensor buffer = tensor.device().is_cpu() ? tensor : tensor.to(Device::cpu());
  return std::make_unique<MpiPendingAllReduce>(tensor, std::move(buffer), op, rank_, world_size_, timeout_seconds_);
}

void MpiCommunicator::broadcast(Tensor& tensor, int root) {
  if (!tensor.device().is_cpu()) {  // a GPU tensor goes through host memory
    Tensor host = tensor.to(Device::cpu());
    broadcast(host, root);
    tensor.copy_(host);
    return;
  }
  check_collective_tensor(tensor, "MPI broadcast");
  BF_CHECK(root >= 0 && root < world_size_, "MPI broadcast: root ", root, " outside [0, ", world_size_, ")");
  BF_CHECK(tensor.numel() <= INT32_MAX, "MPI broadcast: ", tensor.numel(), " elements exceed MPI's int count");
  MPI_Request request;
  BF_MPI_CHECK(MPI_Ibcast(tensor.raw_data(), static_cast<int>(tensor.numel()), mpi_datatype(tensor), root,
                          MPI_COMM_WORLD, &request));
  wait_for(&request, "broadcast", rank_, timeout_seconds_);
}

void MpiCommunicator::barrier() {
  MPI_Request request;
  BF_MPI_CHECK(MPI_Ibarrier(MPI_COMM_WORLD, &request));
  wait_for(&request, "barrier", rank_, timeout_seconds_);
}

void MpiCommunicator::abort(int exit_code) {
  std::fflush(stdout);
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::_Exit(exit_code);  // MPI_Abort does not return; this keeps [[noreturn]] true if it ever did
}

}  // namespace bertforge
