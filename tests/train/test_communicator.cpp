// The communicator without MPI: single-process semantics, launcher detection from the environment, and the
// bucketed gradient all-reduce and parameter broadcast against a fake two-rank world. The real MPI collectives
// run in tests/e2e/data_parallel.sh under mpirun.
#include "train/communicator.h"

#include <functional>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "autograd/engine.h"
#include "core/check.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "train/communicator_buckets.h"

namespace bertforge {
namespace {

std::vector<float> values(const Tensor& t) { return t.to_float_vector(); }

TEST(SingleProcessCommunicator, CollectivesAreTheIdentity) {
  SingleProcessCommunicator single;
  EXPECT_EQ(single.rank(), 0);
  EXPECT_EQ(single.world_size(), 1);
  EXPECT_EQ(single.local_rank(), 0);
  Tensor f = Tensor::from_vector(std::vector<float>{1.5f, -2.0f, 3.0f}, {3});
  single.all_reduce(f, ReduceOp::kSum);
  EXPECT_EQ(values(f), (std::vector<float>{1.5f, -2.0f, 3.0f}));
  single.all_reduce(f, ReduceOp::kAverage);
  EXPECT_EQ(values(f), (std::vector<float>{1.5f, -2.0f, 3.0f}));
  Tensor i = Tensor::from_vector(std::vector<int64_t>{7, 9}, {2});
  single.all_reduce(i, ReduceOp::kSum);
  single.broadcast(i, 0);
  EXPECT_EQ(i.data<int64_t>()[0], 7);
  EXPECT_EQ(i.data<int64_t>()[1], 9);
  single.barrier();
}

TEST(SingleProcessCommunicator, RejectsWhatNoBackendCanDo) {
  SingleProcessCommunicator single;
  Tensor i = Tensor::from_vector(std::vector<int64_t>{7}, {1});
  EXPECT_THROW(single.all_reduce(i, ReduceOp::kAverage), Error);  // an integer mean
  Tensor strided = Tensor::zeros({4, 4}).transpose(0, 1);
  EXPECT_THROW(single.all_reduce(strided, ReduceOp::kSum), Error);
  Tensor f = Tensor::zeros({2});
  EXPECT_THROW(single.broadcast(f, 1), Error);  // no rank 1
  Tensor undefined;
  EXPECT_THROW(single.all_reduce(undefined, ReduceOp::kSum), Error);
}

// ---- Launcher detection -----------------------------------------------------------------------

absl::StatusOr<LaunchEnvironment> detect(const std::map<std::string, std::string>& environment) {
  return detect_launch_environment([&](const char* name) -> const char* {
    auto it = environment.find(name);
    return it == environment.end() ? nullptr : it->second.c_str();
  });
}

TEST(LaunchEnvironment, NoLauncherIsASingleProcess) {
  const absl::StatusOr<LaunchEnvironment> launch = detect({});
  ASSERT_TRUE(launch.ok()) << launch.status();
  EXPECT_EQ(launch->kind, LaunchEnvironment::Kind::kSingleProcess);
  EXPECT_EQ(launch->world_size, 1);
  // WORLD_SIZE=1 alone is a single process too.
  EXPECT_EQ(detect({{"WORLD_SIZE", "1"}, {"RANK", "0"}})->kind, LaunchEnvironment::Kind::kSingleProcess);
}

TEST(LaunchEnvironment, ReadsOpenMpisVariables) {
  const absl::StatusOr<LaunchEnvironment> launch = detect(
      {{"OMPI_COMM_WORLD_SIZE", "4"}, {"OMPI_COMM_WORLD_RANK", "3"}, {"OMPI_COMM_WORLD_LOCAL_RANK", "1"}});
  ASSERT_TRUE(launch.ok()) << launch.status();
  EXPECT_EQ(launch->kind, LaunchEnvironment::Kind::kMpi);
  EXPECT_EQ(launch->world_size, 4);
  EXPECT_EQ(launch->rank, 3);
  EXPECT_EQ(launch->local_rank, 1);
  EXPECT_EQ(launch->requested_world_size, -1);
  EXPECT_EQ(detect({{"OMPI_COMM_WORLD_SIZE", "4"}, {"WORLD_SIZE", "2"}})->requested_world_size, 2);
}

TEST(LaunchEnvironment, ReadsPmiVariables) {
  const absl::StatusOr<LaunchEnvironment> launch =
      detect({{"PMI_RANK", "2"}, {"PMI_SIZE", "8"}, {"SLURM_LOCALID", "2"}, {"SLURM_NTASKS", "8"}});
  ASSERT_TRUE(launch.ok()) << launch.status();
  EXPECT_EQ(launch->kind, LaunchEnvironment::Kind::kMpi);
  EXPECT_EQ(launch->world_size, 8);
  EXPECT_EQ(launch->rank, 2);
  EXPECT_EQ(launch->local_rank, 2);
}

TEST(LaunchEnvironment, ReadsTorchrunStyleVariablesWithARendezvousFile) {
  const absl::StatusOr<LaunchEnvironment> launch =
      detect({{"RANK", "3"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "1"}, {"TORCHELASTIC_RUN_ID", "run9"},
              {"BERTFORGE_RENDEZVOUS_FILE", "/shared/job.id"}});
  ASSERT_TRUE(launch.ok()) << launch.status();
  EXPECT_EQ(launch->kind, LaunchEnvironment::Kind::kRendezvous);
  EXPECT_EQ(launch->world_size, 4);
  EXPECT_EQ(launch->rank, 3);
  EXPECT_EQ(launch->local_rank, 1);
  EXPECT_EQ(launch->rendezvous_file, "/shared/job.id");
  EXPECT_EQ(launch->job_id, "run9");
}

TEST(LaunchEnvironment, ReadsSrunVariablesWithoutMpi) {
  const absl::StatusOr<LaunchEnvironment> launch =
      detect({{"SLURM_NTASKS", "8"}, {"SLURM_STEP_ID", "0"}, {"SLURM_PROCID", "5"}, {"SLURM_LOCALID", "1"},
              {"SLURM_JOB_ID", "4242"}, {"BERTFORGE_RENDEZVOUS_FILE", "/shared/job.id"}});
  ASSERT_TRUE(launch.ok()) << launch.status();
  EXPECT_EQ(launch->kind, LaunchEnvironment::Kind::kRendezvous);
  EXPECT_EQ(launch->world_size, 8);
  EXPECT_EQ(launch->rank, 5);
  EXPECT_EQ(launch->local_rank, 1);
  EXPECT_EQ(launch->job_id, "4242.0");
}

TEST(LaunchEnvironment, RefusesLaunchersWithoutMpiOrARendezvousFile) {
  absl::StatusOr<LaunchEnvironment> launch = detect({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "1"}});
  ASSERT_FALSE(launch.ok());
  EXPECT_NE(launch.status().message().find("BERTFORGE_RENDEZVOUS_FILE"), absl::string_view::npos)
      << launch.status();
  EXPECT_NE(launch.status().message().find("mpirun -np 2"), absl::string_view::npos) << launch.status();
  launch = detect({{"SLURM_NTASKS", "4"}, {"SLURM_STEP_ID", "0"}, {"SLURM_PROCID", "1"}});
  ASSERT_FALSE(launch.ok());
  EXPECT_NE(launch.status().message().find("srun --mpi=pmix"), absl::string_view::npos) << launch.status();
  launch = detect({{"WORLD_SIZE", "2"}, {"BERTFORGE_RENDEZVOUS_FILE", "/shared/job.id"}});  // no RANK
  ASSERT_FALSE(launch.ok());
  EXPECT_NE(launch.status().message().find("the rank (-1) is missing"), absl::string_view::npos)
      << launch.status();
  launch = detect({{"OMPI_COMM_WORLD_SIZE", "two"}});
  ASSERT_FALSE(launch.ok());
  EXPECT_NE(launch.status().message().find("OMPI_COMM_WORLD_SIZE"), absl::string_view::npos) << launch.status();
}

TEST(MakeCommunicator, SingleProcessAndABadTimeout) {
  CommunicatorOptions options;
  absl::StatusOr<std::unique_ptr<Communicator>> made = make_communicator(LaunchEnvironment{}, options);
  ASSERT_TRUE(made.ok()) << made.status();
  EXPECT_EQ((*made)->world_size(), 1);
  options.timeout_seconds = 0;
  EXPECT_FALSE(make_communicator(LaunchEnvironment{}, options).ok());
}

TEST(MakeCommunicator, CpuRanksWithoutMpiAreRefused) {
  LaunchEnvironment launch;
  launch.kind = LaunchEnvironment::Kind::kRendezvous;
  launch.launcher = "RANK / WORLD_SIZE";
  launch.world_size = 2;
  launch.rendezvous_file = "/shared/job.id";
  const absl::StatusOr<std::unique_ptr<Communicator>> made = make_communicator(launch, CommunicatorOptions{});
  ASSERT_FALSE(made.ok());
  EXPECT_NE(made.status().message().find("CPU ranks exchange gradients over MPI"), absl::string_view::npos)
      << made.status();
}

// ---- Buckets ----------------------------------------------------------------------------------

TEST(PlanBuckets, FillsBucketsInOrderAndIsolatesLargeTensors) {
  using Ranges = std::vector<std::pair<size_t, size_t>>;
  // Capacity 10 floats (40 bytes).
  EXPECT_EQ(plan_buckets({4, 4, 2, 3, 20, 1}, 40), (Ranges{{0, 3}, {3, 4}, {4, 5}, {5, 6}}));
  EXPECT_EQ(plan_buckets({1, 1, 1}, 1 << 20), (Ranges{{0, 3}}));
  EXPECT_EQ(plan_buckets({}, 40), Ranges{});
  EXPECT_THROW(plan_buckets({1}, 0), Error);
}

// A second rank that holds the same tensors as this one (all_reduce doubles a sum), whose root broadcast
// sends `broadcast_value` everywhere, and that records the size of every collective.
class MirroredPairCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 2; }
  int local_rank() const override { return 0; }
  const char* backend_name() const override { return "mirrored pair"; }
  void all_reduce(Tensor& tensor, ReduceOp op) override {
    check_reduce_tensor(tensor, op, "all_reduce");
    if (on_all_reduce) on_all_reduce(tensor);
    sizes.push_back(tensor.numel());
    if (op == ReduceOp::kSum) {
      float* data = tensor.data<float>();
      for (int64_t i = 0; i < tensor.numel(); ++i) data[i] *= 2.0f;
    }
  }
  void broadcast(Tensor& tensor, int root) override {
    check_collective_tensor(tensor, "broadcast");
    sizes.push_back(tensor.numel());
    tensor.fill_(broadcast_value);
  }
  void barrier() override {}
  [[noreturn]] void abort(int exit_code) override { BF_FAIL("abort(", exit_code, ")"); }

  std::vector<int64_t> sizes;
  float broadcast_value = 0.5f;
  std::function<void(const Tensor&)> on_all_reduce;  // sees each all-reduce's tensor before it is reduced
};

std::vector<std::pair<std::string, Tensor>> make_parameters() {
  std::vector<std::pair<std::string, Tensor>> parameters;
  int64_t seed = 0;
  for (const auto& [name, shape] : std::vector<std::pair<std::string, Shape>>{
           {"a.weight", {4, 3}}, {"a.bias", {3}}, {"b.weight", {2, 5}}, {"b.bias", {5}}}) {
    Tensor p = Tensor::zeros(shape);
    p.set_requires_grad(true);
    std::vector<float> grad(p.numel());
    for (float& g : grad) g = static_cast<float>(++seed);
    p.set_grad(Tensor::from_vector(grad, shape));
    parameters.emplace_back(name, p);
  }
  return parameters;
}

TEST(BucketedReducer, SumsEveryGradientInReverseOrderBuckets) {
  MirroredPairCommunicator pair;
  auto parameters = make_parameters();
  std::vector<std::vector<float>> before;
  for (const auto& [name, p] : parameters) before.push_back(values(p.grad()));
  Tensor no_grad = parameters[1].second;
  no_grad.set_grad(Tensor());  // a.bias has no gradient on this rank: it counts as zeros
  BucketedReducer reducer(pair, parameters, /*bucket_bytes=*/16 * sizeof(float));
  reducer.all_reduce_gradients(ReduceOp::kSum);
  // Reverse order: b.bias (5) + b.weight (10) = 15 <= 16, then a.bias (3) + a.weight (12) = 15.
  EXPECT_EQ(reducer.bucket_count(), 2u);
  EXPECT_EQ(pair.sizes, (std::vector<int64_t>{15, 15}));
  for (size_t i = 0; i < parameters.size(); ++i) {
    const Tensor grad = parameters[i].second.grad();
    ASSERT_TRUE(grad.defined()) << parameters[i].first;
    EXPECT_EQ(grad.shape(), parameters[i].second.shape());
    std::vector<float> want = before[i];
    for (float& w : want) w = i == 1 ? 0.0f : 2.0f * w;
    EXPECT_EQ(values(grad), want) << parameters[i].first;
  }
  // An average over two identical ranks leaves the gradients as they are.
  reducer.all_reduce_gradients(ReduceOp::kAverage);
  EXPECT_EQ(values(parameters[0].second.grad())[0], 2.0f * before[0][0]);
}

TEST(BucketedReducer, BroadcastCopiesTheRootsParameters) {
  MirroredPairCommunicator pair;
  auto parameters = make_parameters();
  BucketedReducer reducer(pair, parameters);
  EXPECT_EQ(reducer.bucket_count(), 1u);
  reducer.broadcast_parameters(0);
  EXPECT_EQ(pair.sizes, (std::vector<int64_t>{12 + 3 + 10 + 5}));
  for (const auto& [name, p] : parameters) {
    EXPECT_EQ(values(p), std::vector<float>(p.numel(), 0.5f)) << name;
  }
}

// The step's last backward with the reducer's hook: the bucket of the last layer starts while backward has not
// reached the first layer yet, every bucket starts with final gradients, and the result is the blocking one's.
TEST(BucketedReducer, OverlappedReductionStartsBucketsDuringBackward) {
  MirroredPairCommunicator pair;
  std::vector<std::pair<std::string, Tensor>> parameters;
  for (const char* name : {"a.weight", "a.bias", "b.weight", "b.bias"}) {
    Tensor p = Tensor::from_vector(std::vector<float>{0.5f, -1.0f, 2.0f}, {3});
    p.set_requires_grad(true);
    parameters.emplace_back(name, p);
  }
  const Tensor &aw = parameters[0].second, &ab = parameters[1].second, &bw = parameters[2].second,
               &bb = parameters[3].second;
  // Two buckets of 6 floats: {b.bias, b.weight}, then {a.bias, a.weight}.
  BucketedReducer reducer(pair, parameters, /*bucket_bytes=*/6 * sizeof(float));
  ASSERT_EQ(reducer.bucket_count(), 2u);
  const Tensor x = Tensor::from_vector(std::vector<float>{1.0f, 2.0f, 3.0f}, {3});
  const Tensor loss = sum(add(mul(add(mul(x, aw), ab), bw), bb));  // L = sum((x aw + ab) bw + bb)

  std::vector<bool> first_layer_done_at_start;  // per bucket start: whether a.weight already had its gradient
  pair.on_all_reduce = [&](const Tensor& buffer) {
    first_layer_done_at_start.push_back(aw.grad().defined());
    // Final gradients: dL/dbb = 1, dL/dbw = x aw + ab = (1, -3, 8), dL/dab = bw, dL/daw = x bw = (0.5, -2, 6).
    const std::vector<float> got = values(buffer);
    if (first_layer_done_at_start.size() == 1) {
      EXPECT_EQ(got, (std::vector<float>{1, 1, 1, 1, -3, 8}));  // b.bias, b.weight
    } else {
      EXPECT_EQ(got, (std::vector<float>{0.5f, -1, 2, 0.5f, -2, 6}));  // a.bias, a.weight
    }
  };
  autograd::backward(loss, Tensor(), false, reducer.start_overlapped_reduction(ReduceOp::kSum));
  EXPECT_EQ(first_layer_done_at_start, (std::vector<bool>{false, true}));
  reducer.finish_overlapped_reduction();
  EXPECT_EQ(pair.sizes, (std::vector<int64_t>{6, 6}));
  EXPECT_EQ(values(bb.grad()), (std::vector<float>{2, 2, 2}));  // doubled by the mirrored rank
  EXPECT_EQ(values(aw.grad()), (std::vector<float>{1, -4, 12}));
  // A second reduction may start once the first has finished, not before.
  reducer.start_overlapped_reduction(ReduceOp::kSum);
  EXPECT_THROW(reducer.start_overlapped_reduction(ReduceOp::kSum), Error);
}

// Buckets whose parameters backward never reached start in finish, in order.
TEST(BucketedReducer, FinishStartsBucketsThatBackwardDidNotReach) {
  MirroredPairCommunicator pair;
  auto parameters = make_parameters();
  const std::vector<float> b_bias = values(parameters[3].second.grad());
  BucketedReducer reducer(pair, parameters, /*bucket_bytes=*/16 * sizeof(float));
  reducer.start_overlapped_reduction(ReduceOp::kSum);  // and no backward at all
  EXPECT_TRUE(pair.sizes.empty());
  reducer.finish_overlapped_reduction();
  EXPECT_EQ(pair.sizes, (std::vector<int64_t>{15, 15}));
  EXPECT_EQ(values(parameters[3].second.grad())[0], 2.0f * b_bias[0]);
}

}  // namespace
}  // namespace bertforge
