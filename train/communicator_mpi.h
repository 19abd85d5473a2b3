// The MPI communicator: collectives on CPU tensors between the processes that
// mpirun (or another MPI launcher) started. Compiled when BERTFORGE_MPI is on.
//
// Nothing waits forever. MPI_Init blocks until every rank has called it, so a
// watchdog thread ends this process with a message when start-up (MPI_Init and
// a barrier) takes longer than the timeout; the launcher then ends the others.
// Collectives are the non-blocking MPI ones, polled against the same timeout:
// a late one throws bertforge::Error, and the caller calls abort() (MPI_Abort).
// Errors come back as codes (MPI_ERRORS_RETURN) and are turned into
// bertforge::Error with file, line and MPI's error string by BF_MPI_CHECK.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "train/communicator.h"

namespace bertforge {

class MpiCommunicator final : public Communicator {
 public:
  // MPI_Init and a start-up barrier of every rank, within options.timeout_seconds. Errors: MPI's world size
  // differs from the launcher's or from WORLD_SIZE in the environment.
  static absl::StatusOr<std::unique_ptr<MpiCommunicator>> create(const LaunchEnvironment& launch,
                                                                 const CommunicatorOptions& options);
  ~MpiCommunicator() override;  // MPI_Finalize
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override { return rank_; }
  int world_size() const override { return world_size_; }
  int local_rank() const override { return local_rank_; }
  const char* backend_name() const override { return "MPI"; }
  void all_reduce(Tensor& tensor, ReduceOp op) override;
  // MPI_Iallreduce; a GPU tensor is copied to host memory first, and back in wait().
  std::unique_ptr<PendingCollective> all_reduce_async(Tensor& tensor, ReduceOp op) override;
  void broadcast(Tensor& tensor, int root) override;
  void barrier() override;
  [[noreturn]] void abort(int exit_code) override;

 private:
  MpiCommunicator(int rank, int world_size, int local_rank, double timeout_seconds)
      : rank_(rank), world_size_(world_size), local_rank_(local_rank), timeout_seconds_(timeout_seconds) {}

  int rank_;
  int world_size_;
  int local_rank_;
  double timeout_seconds_;
};

}  // namespace bertforge
