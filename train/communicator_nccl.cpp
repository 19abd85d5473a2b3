// NCCL collectives on a stream of their own, started after the compute stream's work and polled against the
// timeout (communicator_nccl.h).
#include "train/communicator_nccl.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "cuda/cuda_check.h"
#include "cuda/stream.h"
#include "train/rendezvous.h"
#include "train/startup_watchdog.h"
#if BERTFORGE_MPI
#include "train/communicator_mpi.h"
#endif

// BF_NCCL_CHECK(call): throws bertforge::Error "file:line: <call> failed: <NCCL's error string> (<last error>)".
#define BF_NCCL_CHECK(call)                                                                              \
  do {                                                                                                   \
    const ncclResult_t bf_nccl_result_ = (call);                                                         \
    if (bf_nccl_result_ != ncclSuccess) {                                                                \
      ::bertforge::ThrowError(__FILE__, __LINE__,                                                        \
                              ::absl::StrCat(#call, " failed: ", ncclGetErrorString(bf_nccl_result_),    \
                                             " (", ncclGetLastError(nullptr), ")"));                     \
    }                                                                                                    \
  } while (0)

namespace bertforge {

struct NcclCommunicator::State {
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;  // the collectives' stream
  ~State() {
    if (comm != nullptr) ncclCommDestroy(comm);
    if (stream != nullptr) cudaStreamDestroy(stream);
  }
};

namespace {

using Clock = std::chrono::steady_clock;

ncclDataType_t nccl_datatype(const Tensor& tensor) {
  return tensor.dtype() == DType::kF32 ? ncclFloat32 : ncclInt64;
}

// Rank 0's ncclUniqueId on every rank: over MPI when `mpi` is given, else through the launcher's rendezvous file.
absl::StatusOr<ncclUniqueId> share_unique_id(const LaunchEnvironment& launch, Communicator* mpi, int rank,
                                             int world_size, double timeout_seconds) {
  ncclUniqueId id;
  std::memset(&id, 0, sizeof id);
  if (rank == 0) BF_NCCL_CHECK(ncclGetUniqueId(&id));
  if (mpi != nullptr) {
    static_assert(sizeof(ncclUniqueId) % sizeof(int64_t) == 0, "the id travels as an i64 tensor");
    Tensor bytes = Tensor::zeros({static_cast<int64_t>(sizeof id / sizeof(int64_t))}, DType::kI64);
    std::memcpy(bytes.raw_data(), &id, sizeof id);
    mpi->broadcast(bytes, 0);
    std::memcpy(&id, bytes.raw_data(), sizeof id);
    return id;
  }
  const FileRendezvousOptions options{launch.rendezvous_file, rank, world_size, launch.job_id, timeout_seconds};
  BF_ASSIGN_OR_RETURN(const std::string payload,
                      file_rendezvous(options, std::string(reinterpret_cast<const char*>(&id), sizeof id)));
  if (payload.size() != sizeof id) {
    return absl::DataLossError(absl::StrCat("rendezvous through ", launch.rendezvous_file, ": rank 0 sent ",
                                            payload.size(), " bytes, not an NCCL unique id (", sizeof id, ")"));
  }
  std::memcpy(&id, payload.data(), sizeof id);
  return id;
}

// A collective queued on the collectives' stream, `done` recorded after it. wait() polls `done`, NCCL's
// asynchronous error and the clock, then copies the result to `target` when that is host memory.
class NcclPendingCollective final : public PendingCollective {
 public:
  NcclPendingCollective(Tensor target, Tensor buffer, cudaEvent_t done, ncclComm_t comm, const char* what, int rank,
                        double timeout_seconds)
      : target_(std::move(target)), buffer_(std::move(buffer)), done_(done), comm_(comm), what_(what), rank_(rank),
        timeout_seconds_(timeout_seconds) {}
  ~NcclPendingCollective() override { cudaEventDestroy(done_); }

  void wait() override {
    const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                             std::chrono::duration<double>(timeout_seconds_));
    for (;;) {
      const cudaError_t state = cudaEventQuery(done_);
      if (state == cudaSuccess) break;
      if (state != cudaErrorNotReady) BF_CUDA_CHECK(state);
      ncclResult_t async_error = ncclSuccess;
      BF_NCCL_CHECK(ncclCommGetAsyncError(comm_, &async_error));
      if (async_error != ncclSuccess && async_error != ncclInProgress) {
        BF_FAIL("rank ", rank_, ": NCCL ", what_, " failed: ", ncclGetErrorString(async_error), " (",
                ncclGetLastError(comm_), ")");
      }
      if (Clock::now() > deadline) {
        BF_FAIL("rank ", rank_, ": NCCL ", what_, " did not complete within ", timeout_seconds_,
                " s: another rank failed, is stuck, or is not running the same steps");
      }
      std::this_thread::yield();
    }
    if (target_.device() != buffer_.device()) target_.copy_(buffer_);
  }

 private:
  Tensor target_, buffer_;
  cudaEvent_t done_;
  ncclComm_t comm_;
  const char* what_;
  int rank_;
  double timeout_seconds_;
};

}  // namespace

NcclCommunicator::NcclCommunicator(int rank, int world_size, int local_rank, double timeout_seconds, Device device,
                                   std::unique_ptr<Communicator> bootstrap)
    : rank_(rank), world_size_(world_size), local_rank_(local_rank), timeout_seconds_(timeout_seconds),
      device_(device), bootstrap_(std::move(bootstrap)), state_(std::make_unique<State>()) {}

NcclCommunicator::~NcclCommunicator() = default;

absl::StatusOr<std::unique_ptr<Communicator>> NcclCommunicator::create(const LaunchEnvironment& launch,
                                                                       const CommunicatorOptions& options) {
  if (options.device.is_cpu()) return absl::InvalidArgumentError("NCCL collectives need a GPU device, got cpu");
  std::unique_ptr<Communicator> bootstrap;
  int rank = launch.rank, world_size = launch.world_size, local_rank = launch.local_rank;
  if (launch.kind == LaunchEnvironment::Kind::kMpi) {
#if BERTFORGE_MPI
    BF_ASSIGN_OR_RETURN(std::unique_ptr<MpiCommunicator> mpi, MpiCommunicator::create(launch, options));
    rank = mpi->rank();
    world_size = mpi->world_size();
    local_rank = mpi->local_rank();
    bootstrap = std::move(mpi);
#else
    return absl::FailedPreconditionError(absl::StrCat("started by ", launch.launcher, ", but this build has no MPI "
                                                      "to hand NCCL's unique id to the ranks"));
#endif
  }
  BF_CUDA_CHECK(cudaSetDevice(options.device.index));
  BF_ASSIGN_OR_RETURN(const ncclUniqueId id,
                      share_unique_id(launch, bootstrap.get(), rank, world_size, options.timeout_seconds));
  std::unique_ptr<NcclCommunicator> communicator(new NcclCommunicator(
      rank, world_size, local_rank, options.timeout_seconds, options.device, std::move(bootstrap)));
  {
    const StartupWatchdog watchdog(launch, options.timeout_seconds, "NCCL start-up");
    BF_NCCL_CHECK(ncclCommInitRank(&communicator->state_->comm, world_size, id, rank));
  }
  BF_CUDA_CHECK(cudaStreamCreateWithFlags(&communicator->state_->stream, cudaStreamNonBlocking));
  communicator->barrier();  // every rank is up
  return std::unique_ptr<Communicator>(std::move(communicator));
}

template <typename Call>
std::unique_ptr<PendingCollective> NcclCommunicator::start(const Tensor& target, Tensor buffer, const char* what,
                                                           Call&& call) {
  BF_CUDA_CHECK(cudaSetDevice(device_.index));
  cudaEvent_t queued = nullptr, done = nullptr;
  BF_CUDA_CHECK(cudaEventCreateWithFlags(&queued, cudaEventDisableTiming));
  BF_CUDA_CHECK(cudaEventRecord(queued, cuda::compute_stream()));  // the bucket's packing, and all before it
  BF_CUDA_CHECK(cudaStreamWaitEvent(state_->stream, queued, 0));
  BF_CUDA_CHECK(cudaEventDestroy(queued));  // released once the wait is done
  BF_NCCL_CHECK(call(buffer.raw_data(), static_cast<size_t>(buffer.numel()), nccl_datatype(buffer)));
  BF_CUDA_CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
  BF_CUDA_CHECK(cudaEventRecord(done, state_->stream));
  return std::make_unique<NcclPendingCollective>(target, std::move(buffer), done, state_->comm, what, rank_,
                                                 timeout_seconds_);
}

// The tensor itself when it is on this rank's GPU, a copy there when it is in host memory.
Tensor NcclCommunicator::on_device(const Tensor& tensor, const char* what) const {
  if (tensor.device() == device_) return tensor;
  BF_CHECK(tensor.device().is_cpu(), what, ": a tensor on ", tensor.device().str(), ", but this rank's GPU is ",
           device_.str());
  return tensor.to(device_);
}

void NcclCommunicator::all_reduce(Tensor& tensor, ReduceOp op) { all_reduce_async(tensor, op)->wait(); }

std::unique_ptr<PendingCollective> NcclCommunicator::all_reduce_async(Tensor& tensor, ReduceOp op) {
  check_reduce_tensor(tensor, op, "NCCL all_reduce");
  const ncclRedOp_t nccl_op = op == ReduceOp::kAverage ? ncclAvg : ncclSum;
  return start(tensor, on_device(tensor, "NCCL all_reduce"), "all_reduce",
               [&](void* data, size_t count, ncclDataType_t type) {
                 return ncclAllReduce(data, data, count, type, nccl_op, state_->comm, state_->stream);
               });
}

void NcclCommunicator::broadcast(Tensor& tensor, int root) {
  check_collective_tensor(tensor, "NCCL broadcast");
  BF_CHECK(root >= 0 && root < world_size_, "NCCL broadcast: root ", root, " outside [0, ", world_size_, ")");
  start(tensor, on_device(tensor, "NCCL broadcast"), "broadcast", [&](void* data, size_t count, ncclDataType_t type) {
    return ncclBroadcast(data, data, count, type, root, state_->comm, state_->stream);
  })->wait();
}

void NcclCommunicator::barrier() {
  Tensor token = Tensor::zeros({1}, DType::kF32, device_);
  all_reduce(token, ReduceOp::kSum);
}

void NcclCommunicator::abort(int exit_code) {
  std::fflush(stdout);
  std::fflush(stderr);
  if (state_->comm != nullptr) ncclCommAbort(state_->comm);  // unblocks this rank's collectives
  state_->comm = nullptr;
  if (bootstrap_ != nullptr) bootstrap_->abort(exit_code);  // MPI_Abort ends every rank
  std::_Exit(exit_code);
}

}  // namespace bertforge
