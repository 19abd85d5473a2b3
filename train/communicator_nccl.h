// The NCCL communicator: collectives on GPU tensors between ranks that each drive one GPU. Compiled when
// BERTFORGE_NCCL is on (a CUDA build that found NCCL).
//
// Start-up: rank 0 makes an ncclUniqueId and hands it to the others, over MPI under an MPI launcher (the MPI
// communicator is kept for that, and for ending every rank on abort()), or through the rendezvous file of a
// launcher without MPI (train/rendezvous.h); then every rank joins the NCCL communicator on its GPU. A watchdog
// ends a rank whose start-up outlasts the timeout.
//
// Collectives run on a stream of their own, after the work the compute stream had queued when they were started
// (an event orders them), so the gradient all-reduce of a bucket overlaps the rest of backward
// (BucketedReducer::start_overlapped_reduction). wait() polls the collective against the timeout and NCCL's
// asynchronous errors, so a rank that died is an error, not a hang. Host tensors (the step's loss and token
// counts) go through the GPU.
//
// Everything but these collective calls (bucketing, the trainer, launch detection, time-outs) is shared with
// the MPI backend.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "train/communicator.h"

namespace bertforge {

class NcclCommunicator final : public Communicator {
 public:
  // options.device: this rank's GPU. Errors: a CPU device, a world size that the bootstrap contradicts, a
  // rendezvous that fails (train/rendezvous.h), an NCCL error.
  static absl::StatusOr<std::unique_ptr<Communicator>> create(const LaunchEnvironment& launch,
                                                              const CommunicatorOptions& options);
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return rank_; }
  int world_size() const override { return world_size_; }
  int local_rank() const override { return local_rank_; }
  const char* backend_name() const override { return "NCCL"; }
  void all_reduce(Tensor& tensor, ReduceOp op) override;
  std::unique_ptr<PendingCollective> all_reduce_async(Tensor& tensor, ReduceOp op) override;
  void broadcast(Tensor& tensor, int root) override;
  void barrier() override;
  [[noreturn]] void abort(int exit_code) override;

 private:
  struct State;  // NCCL and CUDA handles (communicator_nccl.cpp)
  NcclCommunicator(int rank, int world_size, int local_rank, double timeout_seconds, Device device,
                   std::unique_ptr<Communicator> bootstrap);
  // Starts `call` (an NCCL collective on `buffer`, on the collective stream) after the compute stream's queued
  // work; the pending collective copies the result into `target` when that is another tensor (host memory).
  template <typename Call>
  std::unique_ptr<PendingCollective> start(const Tensor& target, Tensor buffer, const char* what, Call&& call);

  // The tensor itself when it is on this rank's GPU, a copy there when it is in host memory.
  Tensor on_device(const Tensor& tensor, const char* what) const;

  int rank_;
  int world_size_;
  int local_rank_;
  double timeout_seconds_;
  Device device_;
  std::unique_ptr<Communicator> bootstrap_;  // MPI under an MPI launcher, else null
  std::unique_ptr<State> state_;
};

}  // namespace bertforge
