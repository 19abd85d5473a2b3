// Collective communication between the processes (ranks) of a data-parallel
// run: all-reduce (sum, average), broadcast, barrier, and abort.
//
// Backends:
//   SingleProcessCommunicator  world of one; every collective is the identity
//   MpiCommunicator            CPU tensors over MPI (train/communicator_mpi.h), when built with BERTFORGE_MPI
//   NcclCommunicator           GPU tensors over NCCL (train/communicator_nccl.h), when built with BERTFORGE_NCCL
//
// make_communicator() picks one from the launcher's environment and the
// training device: a single process without a launcher; under mpirun (or
// another MPI launcher) MPI for CPU ranks, and NCCL for GPU ranks, whose
// unique id rank 0 sends the others over MPI. A launcher without MPI that sets
// RANK / WORLD_SIZE / LOCAL_RANK (torchrun style) or SLURM_PROCID / SLURM_NTASKS
// (srun without --mpi) can start GPU ranks: they meet through the file that
// BERTFORGE_RENDEZVOUS_FILE names (train/rendezvous.h).
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

// A collective that all_reduce_async started and nobody has waited for yet.
class PendingCollective {
 public:
  virtual ~PendingCollective() = default;
  // Returns once the collective is complete on this rank and its tensor holds the result; throws as the
  // blocking call would (a failure, or the timeout). Call it once.
  virtual void wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;        // in [0, world_size)
  virtual int world_size() const = 0;  // number of ranks
  virtual int local_rank() const = 0;  // rank among those on this node: picks the GPU
  virtual const char* backend_name() const = 0;

  // tensor: contiguous, f32 or i64 (kAverage: f32 only); every rank ends with the sum (or mean) over ranks.
  virtual void all_reduce(Tensor& tensor, ReduceOp op) = 0;
  // all_reduce, started without waiting for it where the backend can (MPI, NCCL), so that computation goes on
  // meanwhile: the tensor must stay alive and unused until wait(). Every rank starts the same collectives in the
  // same order. This default runs the blocking all_reduce and returns a finished collective.
  virtual std::unique_ptr<PendingCollective> all_reduce_async(Tensor& tensor, ReduceOp op);
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
  // Where the gradients live: a CUDA device picks NCCL (where built) and is the GPU its collectives run on.
  Device device = Device::cpu();
};

// Who started this process, read from the environment.
struct LaunchEnvironment {
  // kRendezvous: a launcher without MPI; the ranks meet through `rendezvous_file`.
  enum class Kind { kSingleProcess, kMpi, kRendezvous };
  Kind kind = Kind::kSingleProcess;
  std::string launcher;  // "mpirun (Open MPI)", "PMI", ... for messages
  int world_size = 1;    // from the launcher; -1 when only MPI_Init will tell
  int rank = 0;          // -1 when unknown before MPI_Init
  int local_rank = 0;
  int requested_world_size = -1;  // WORLD_SIZE when the environment sets it too, else -1
  std::string rendezvous_file;    // kRendezvous: BERTFORGE_RENDEZVOUS_FILE
  std::string job_id;             // kRendezvous: SLURM_JOB_ID.SLURM_STEP_ID or TORCHELASTIC_RUN_ID, if set
};

// Reads the launcher's variables through `getenv` (std::getenv in bert_train; a map in tests).
absl::StatusOr<LaunchEnvironment> detect_launch_environment(
    const std::function<const char*(const char*)>& getenv);

// The communicator for this process, as described at the top (an error when the build lacks the backend that
// the launch and device need). Call once per process.
absl::StatusOr<std::unique_ptr<Communicator>> make_communicator(const LaunchEnvironment& launch,
                                                                const CommunicatorOptions& options);

// Checks what every collective requires of a tensor (defined, contiguous, f32 or i64); throws naming `what`
// (e.g. "MPI broadcast").
void check_collective_tensor(const Tensor& tensor, const char* what);
// The same, plus: kAverage needs f32.
void check_reduce_tensor(const Tensor& tensor, ReduceOp op, const char* what);

}  // namespace bertforge
