// The NCCL communicator on a real GPU, as a world of one rank (NCCL refuses two ranks on one GPU, and the
// machines this runs on have one): start-up through the rendezvous path, every collective on device and host
// tensors, the overlapped bucket reduction of a backward pass, and the errors of bad input. A world of one sums
// nothing, but every call goes through NCCL, its stream, the events that order it and the host staging.
// Skips without a GPU (or a build without NCCL). Two or more GPUs: the README's torchrun-style launch.
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <unistd.h>
#include <vector>

#include "autograd/engine.h"
#include "core/check.h"
#include "cuda/device.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "train/communicator.h"
#include "train/communicator_buckets.h"
#if BERTFORGE_NCCL
#include "train/communicator_nccl.h"
#endif

namespace bertforge {
namespace {

#if BERTFORGE_NCCL

std::unique_ptr<Communicator> one_rank_nccl() {
  LaunchEnvironment launch;
  launch.kind = LaunchEnvironment::Kind::kRendezvous;
  launch.launcher = "test";
  launch.rendezvous_file =
      (std::filesystem::path(::testing::TempDir()) / ("nccl_" + std::to_string(::getpid()))).string();
  CommunicatorOptions options;
  options.timeout_seconds = 60;
  options.device = Device::cuda(0);
  absl::StatusOr<std::unique_ptr<Communicator>> made = NcclCommunicator::create(launch, options);
  BF_CHECK(made.ok(), made.status().ToString());
  return std::move(*made);
}

TEST(NcclCommunicator, CollectivesOnDeviceAndHostTensors) {
  cuda::register_cuda_backend();
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  const std::unique_ptr<Communicator> nccl = one_rank_nccl();
  EXPECT_STREQ(nccl->backend_name(), "NCCL");
  EXPECT_EQ(nccl->world_size(), 1);
  const std::vector<float> values = {1.5f, -2.0f, 3.25f, 1e-3f};
  Tensor on_gpu = Tensor::from_vector(values, {4}).to(Device::cuda(0));
  nccl->all_reduce(on_gpu, ReduceOp::kSum);
  EXPECT_EQ(on_gpu.to(Device::cpu()).to_float_vector(), values);
  nccl->all_reduce(on_gpu, ReduceOp::kAverage);
  EXPECT_EQ(on_gpu.to(Device::cpu()).to_float_vector(), values);
  Tensor on_host = Tensor::from_vector(std::vector<int64_t>{7, -9, int64_t{1} << 40}, {3});
  nccl->all_reduce(on_host, ReduceOp::kSum);  // through the GPU and back
  EXPECT_EQ(on_host.data<int64_t>()[2], int64_t{1} << 40);
  EXPECT_EQ(on_host.data<int64_t>()[1], -9);
  std::unique_ptr<PendingCollective> pending = nccl->all_reduce_async(on_gpu, ReduceOp::kSum);
  pending->wait();
  EXPECT_EQ(on_gpu.to(Device::cpu()).to_float_vector(), values);
  nccl->broadcast(on_host, 0);
  EXPECT_EQ(on_host.data<int64_t>()[0], 7);
  nccl->barrier();
  EXPECT_THROW(nccl->broadcast(on_host, 1), Error);  // no rank 1
  Tensor ints = Tensor::from_vector(std::vector<int64_t>{1}, {1});
  EXPECT_THROW(nccl->all_reduce(ints, ReduceOp::kAverage), Error);
}

TEST(NcclCommunicator, OverlappedBucketReductionKeepsTheGradients) {
  cuda::register_cuda_backend();
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  const std::unique_ptr<Communicator> nccl = one_rank_nccl();
  std::vector<std::pair<std::string, Tensor>> parameters;
  for (const auto& [name, value] : std::vector<std::pair<const char*, std::vector<float>>>{
           {"a.weight", {0.5f, -1.0f, 2.0f}}, {"b.weight", {2.0f, 1.0f, -1.0f}}}) {
    Tensor p = Tensor::from_vector(value, {3}).to(Device::cuda(0));
    p.set_requires_grad(true);
    parameters.emplace_back(name, p);
  }
  BucketedReducer reducer(*nccl, parameters, /*bucket_bytes=*/3 * sizeof(float));  // a bucket each
  const Tensor x = Tensor::from_vector(std::vector<float>{1.0f, 2.0f, 3.0f}, {3}).to(Device::cuda(0));
  const Tensor loss = sum(mul(mul(x, parameters[0].second), parameters[1].second));
  autograd::backward(loss, Tensor(), false, reducer.start_overlapped_reduction(ReduceOp::kAverage));
  reducer.finish_overlapped_reduction();
  // dL/da = x b, dL/db = x a.
  EXPECT_EQ(parameters[0].second.grad().to(Device::cpu()).to_float_vector(), (std::vector<float>{2, 2, -3}));
  EXPECT_EQ(parameters[1].second.grad().to(Device::cpu()).to_float_vector(), (std::vector<float>{0.5f, -2, 6}));
}

#else

TEST(NcclCommunicator, NotBuilt) { GTEST_SKIP() << "built without NCCL (BERTFORGE_NCCL)"; }

#endif

}  // namespace
}  // namespace bertforge
