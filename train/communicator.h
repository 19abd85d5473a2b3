// Collective communication between the processes (ranks) of a data-parallel
// run: all-reduce (sum, average), broadcast, barrier, and abort.
//
// Backends:
//   SingleProcessCommunicator  world of one; every collective is the identity
//   MpiCommunicator            CPU tensors over MPI (train/communicator_mpi.h), when built with BERTFORGE_MPI
//
// make_communicator() picks one from the launcher's environment: under mpirun
// (or another MPI launcher) MPI, otherwise a single process. A launcher that
// sets RANK / WORLD_SIZE without MPI (torchrun style, or srun without --mpi)
// is refused with a message: its rendezvous is not implemented.
//
// Collectives are blocking, in place, called by every rank in the same order
// with tensors of the same shape and dtype. A failure or a collective that
// does not complete within the timeout throws bertforge::Error naming the
// rank and the call; the caller then calls abort(), which ends every rank of
// the job instead of leaving the others waiting.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/tensor.h"

namespace bertforge {

enum class ReduceOp { kSum, kAverage };

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;        // in [0, world_size)
  virtual int world_size() const = 0;  // number of ranks
  virtual int local_rank() const = 0;  // rank among those on this node: picks the GPU
  virtual const char* backend_name() const = 0;

  // tensor: contiguous, f32 or i64 (kAverage: f32 only); every rank ends with the sum (or mean) over ranks.
  virtual void all_reduce(Tensor& tensor, ReduceOp op) = 0;
  // Every rank ends with root's values.
  virtual void broadcast(Tensor& tensor, int root) = 0;
  virtual void barrier() = 0;
  // Ends every rank of the job with `exit_code`; for a rank that cannot go on.
  [[noreturn]] virtual void abort(int exit_code) = 0;
};

class SingleProcessCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  int local_rank() const override { return 0; }
  const char* backend_name() const override { return "single process"; }
  void all_reduce(Tensor& tensor, ReduceOp op) override;
  void broadcast(Tensor& tensor, int root) override;
  void barrier() override {}
  [[noreturn]] void abort(int exit_code) override;
};

struct CommunicatorOptions {
  // The longest a rank waits for the others: at start-up (a rank that fails to start) and in any one collective
  // (a rank that died or hangs). Rank 0 evaluates alone while the others wait, so it must exceed an evaluation.
  double timeout_seconds = 1800;
};

// Who started this process, read from the environment.
struct LaunchEnvironment {
  enum class Kind { kSingleProcess, kMpi };
  Kind kind = Kind::kSingleProcess;
  std::string launcher;  // "mpirun (Open MPI)", "PMI", ... for messages
  int world_size = 1;    // from the launcher; -1 when only MPI_Init will tell
  int rank = 0;          // -1 when unknown before MPI_Init
  int local_rank = 0;
  int requested_world_size = -1;  // WORLD_SIZE when the environment sets it too, else -1
};

// Reads the launcher's variables through `getenv` (std::getenv in bert_train; a map in tests).
absl::StatusOr<LaunchEnvironment> detect_launch_environment(
    const std::function<const char*(const char*)>& getenv);

// The communicator for this process: MPI under an MPI launcher (an error when built without MPI), a single
// process otherwise. Call once per process.
absl::StatusOr<std::unique_ptr<Communicator>> make_communicator(const LaunchEnvironment& launch,
                                                                const CommunicatorOptions& options);

// Checks what every collective requires of a tensor (defined, contiguous, f32 or i64); throws naming `what`
// (e.g. "MPI broadcast").
void check_collective_tensor(const Tensor& tensor, const char* what);
// The same, plus: kAverage needs f32.
void check_reduce_tensor(const Tensor& tensor, ReduceOp op, const char* what);

}  // namespace bertforge
