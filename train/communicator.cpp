// The single-process communicator, launcher detection and the backend choice (communicator.h).
#include "train/communicator.h"

#include <cstdio>
#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/check.h"
#if BERTFORGE_MPI
#include "train/communicator_mpi.h"
#endif
#if BERTFORGE_NCCL
#include "train/communicator_nccl.h"
#endif

namespace bertforge {
namespace {

// The integer value of variable `name`, or `fallback` when unset; an error when set but not an integer.
absl::StatusOr<int> int_variable(const std::function<const char*(const char*)>& getenv, const char* name,
                                 int fallback) {
  const char* value = getenv(name);
  if (value == nullptr) return fallback;
  int parsed = 0;
  if (!absl::SimpleAtoi(value, &parsed)) {
    return absl::InvalidArgumentError(absl::StrCat("environment variable ", name, "=\"", value,
                                                   "\" is not an integer"));
  }
  return parsed;
}

}  // namespace

void check_collective_tensor(const Tensor& tensor, const char* what) {
  BF_CHECK(tensor.defined(), what, ": undefined tensor");
  BF_CHECK(tensor.is_contiguous(), what, ": the tensor must be contiguous, got ", tensor.str());
  BF_CHECK(tensor.dtype() == DType::kF32 || tensor.dtype() == DType::kI64, what, ": f32 or i64 tensors only, got ",
           tensor.str());
}

void check_reduce_tensor(const Tensor& tensor, ReduceOp op, const char* what) {
  check_collective_tensor(tensor, what);
  BF_CHECK(op != ReduceOp::kAverage || tensor.dtype() == DType::kF32, what,
           ": averaging needs an f32 tensor, got ", tensor.str());
}

std::unique_ptr<PendingCollective> Communicator::all_reduce_async(Tensor& tensor, ReduceOp op) {
  struct Finished final : PendingCollective {
    void wait() override {}
  };
  all_reduce(tensor, op);
  return std::make_unique<Finished>();
}

// ---- SingleProcessCommunicator ----------------------------------------------------------------

void SingleProcessCommunicator::all_reduce(Tensor& tensor, ReduceOp op) {
  check_reduce_tensor(tensor, op, "all_reduce");
}

void SingleProcessCommunicator::broadcast(Tensor& tensor, int root) {
  check_collective_tensor(tensor, "broadcast");
  BF_CHECK(root == 0, "broadcast: root ", root, " outside a world of one rank");
}

void SingleProcessCommunicator::abort(int exit_code) {
  std::fflush(stdout);
  std::exit(exit_code);
}

// ---- Launcher detection -----------------------------------------------------------------------

absl::StatusOr<LaunchEnvironment> detect_launch_environment(
    const std::function<const char*(const char*)>& getenv) {
  LaunchEnvironment launch;
  BF_ASSIGN_OR_RETURN(launch.requested_world_size, int_variable(getenv, "WORLD_SIZE", -1));
  if (getenv("OMPI_COMM_WORLD_SIZE") != nullptr) {
    launch.kind = LaunchEnvironment::Kind::kMpi;
    launch.launcher = "mpirun (Open MPI)";
    BF_ASSIGN_OR_RETURN(launch.world_size, int_variable(getenv, "OMPI_COMM_WORLD_SIZE", -1));
    BF_ASSIGN_OR_RETURN(launch.rank, int_variable(getenv, "OMPI_COMM_WORLD_RANK", -1));
    BF_ASSIGN_OR_RETURN(launch.local_rank, int_variable(getenv, "OMPI_COMM_WORLD_LOCAL_RANK", 0));
    return launch;
  }
  if (getenv("PMI_RANK") != nullptr || getenv("PMIX_RANK") != nullptr) {
    // MPICH's Hydra, or srun --mpi=pmi2/pmix: MPI_Init finds the others through PMI.
    launch.kind = LaunchEnvironment::Kind::kMpi;
    launch.launcher = "PMI (MPICH or srun --mpi)";
    BF_ASSIGN_OR_RETURN(launch.world_size, int_variable(getenv, "PMI_SIZE", -1));
    BF_ASSIGN_OR_RETURN(launch.rank, int_variable(getenv, getenv("PMI_RANK") ? "PMI_RANK" : "PMIX_RANK", -1));
    BF_ASSIGN_OR_RETURN(launch.local_rank, int_variable(getenv, "SLURM_LOCALID", 0));
    BF_ASSIGN_OR_RETURN(launch.local_rank, int_variable(getenv, "MPI_LOCALRANKID", launch.local_rank));
    return launch;
  }
  // A launcher without MPI: srun without --mpi (SLURM_STEP_ID marks a job step), or torchrun-style variables.
  BF_ASSIGN_OR_RETURN(const int slurm_tasks, int_variable(getenv, "SLURM_NTASKS", 1));
  if (slurm_tasks > 1 && getenv("SLURM_STEP_ID") != nullptr) {
    launch.launcher = "srun";
    launch.world_size = slurm_tasks;
    BF_ASSIGN_OR_RETURN(launch.rank, int_variable(getenv, "SLURM_PROCID", -1));
    BF_ASSIGN_OR_RETURN(launch.local_rank, int_variable(getenv, "SLURM_LOCALID", 0));
    if (getenv("SLURM_JOB_ID") != nullptr) {
      launch.job_id = absl::StrCat(getenv("SLURM_JOB_ID"), ".", getenv("SLURM_STEP_ID"));
    }
  } else if (launch.requested_world_size > 1) {
    launch.launcher = "RANK / WORLD_SIZE";
    launch.world_size = launch.requested_world_size;
    BF_ASSIGN_OR_RETURN(launch.rank, int_variable(getenv, "RANK", -1));
    BF_ASSIGN_OR_RETURN(launch.local_rank, int_variable(getenv, "LOCAL_RANK", 0));
    if (getenv("TORCHELASTIC_RUN_ID") != nullptr) launch.job_id = getenv("TORCHELASTIC_RUN_ID");
  } else {
    return launch;
  }
  launch.kind = LaunchEnvironment::Kind::kRendezvous;
  if (launch.rank < 0 || launch.rank >= launch.world_size) {
    return absl::InvalidArgumentError(absl::StrCat("started by ", launch.launcher, " as one of ", launch.world_size,
                                                   " ranks, but the rank (", launch.rank, ") is missing or outside "
                                                   "that range"));
  }
  if (getenv("BERTFORGE_RENDEZVOUS_FILE") == nullptr || *getenv("BERTFORGE_RENDEZVOUS_FILE") == '\0') {
    return absl::InvalidArgumentError(absl::StrCat(
        "started by ", launch.launcher, " as rank ", launch.rank, " of ", launch.world_size, " without MPI: set "
        "BERTFORGE_RENDEZVOUS_FILE to a path that every rank sees (a shared file system across nodes), through which "
        "the ranks meet; or launch with `mpirun -np ", launch.world_size, " bert_train ...` (or srun --mpi=pmix)"));
  }
  launch.rendezvous_file = getenv("BERTFORGE_RENDEZVOUS_FILE");
  return launch;
}

absl::StatusOr<std::unique_ptr<Communicator>> make_communicator(const LaunchEnvironment& launch,
                                                                const CommunicatorOptions& options) {
  if (!(options.timeout_seconds > 0)) {
    return absl::InvalidArgumentError(absl::StrCat("communicator timeout must be positive, got ",
                                                   options.timeout_seconds, " s"));
  }
  if (launch.kind == LaunchEnvironment::Kind::kSingleProcess) return std::make_unique<SingleProcessCommunicator>();
  const bool on_gpu = !options.device.is_cpu();
#if BERTFORGE_NCCL
  if (on_gpu) return NcclCommunicator::create(launch, options);
#endif
  if (launch.kind == LaunchEnvironment::Kind::kRendezvous) {
    return absl::FailedPreconditionError(absl::StrCat(
        "started by ", launch.launcher, " without MPI as rank ", launch.rank, " of ", launch.world_size, ": ",
        on_gpu ? "GPU ranks without MPI need NCCL, and this build has none (BERTFORGE_NCCL)"
               : "CPU ranks exchange gradients over MPI; launch with `mpirun -np N bert_train ...`"));
  }
#if BERTFORGE_MPI
  BF_ASSIGN_OR_RETURN(std::unique_ptr<MpiCommunicator> mpi, MpiCommunicator::create(launch, options));
  return std::unique_ptr<Communicator>(std::move(mpi));
#else
  return absl::FailedPreconditionError(absl::StrCat(
      "started by ", launch.launcher, " as rank ", launch.rank, " of ", launch.world_size,
      ", but this build has no MPI (configure with libopenmpi-dev installed, BERTFORGE_MPI=ON)"));
#endif
}

}  // namespace bertforge
