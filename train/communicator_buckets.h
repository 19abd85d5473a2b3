// Gradient all-reduce and parameter broadcast in buckets: the parameters are
// grouped into flat f32 buffers of about `bucket_bytes` (25 MB by default, as
// PyTorch DDP), so that a 110M-parameter BERT needs ~18 collectives per step
// instead of ~200 small ones, each far from the network's bandwidth.
//
// Buckets follow the parameters in reverse registration order: backward
// produces the gradients of the last layers first, so a bucket's all-reduce
// can start as soon as its gradients are final, while backward goes on with
// the earlier layers (start_overlapped_reduction). Every backend shares this
// plan; only the collective call on a bucket differs. The overlap is real
// where the backend's collectives run beside computation (NCCL on its own
// stream); MPI on CPU ranks progresses mostly inside wait().
//
// Every rank must hold the same parameters (names, shapes, order).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "autograd/engine.h"
#include "core/tensor.h"
#include "train/communicator.h"

namespace bertforge {

inline constexpr int64_t kDefaultBucketBytes = 25 << 20;

// Consecutive runs of tensors, in the given order, of at most bucket_bytes of f32 each; a tensor larger than
// that is a bucket alone. Returns the index ranges [begin, end) of the buckets.
std::vector<std::pair<size_t, size_t>> plan_buckets(const std::vector<int64_t>& numels, int64_t bucket_bytes);

class BucketedReducer {
 public:
  // parameters: (name, f32 leaf tensor) as Module::named_parameters() gives them; the tensors are shared, not
  // copied. The communicator must outlive the reducer.
  BucketedReducer(Communicator& communicator, std::vector<std::pair<std::string, Tensor>> parameters,
                  int64_t bucket_bytes = kDefaultBucketBytes);

  // Replaces every parameter's gradient by its sum (kSum) or mean (kAverage) over the ranks. A parameter that
  // has no gradient on this rank counts as zeros, and has one afterwards, so every rank ends identical.
  void all_reduce_gradients(ReduceOp op);

  // The same reduction, overlapped with the step's last backward pass:
  //   autograd::backward(loss, seed, false, reducer.start_overlapped_reduction(ReduceOp::kSum));
  //   reducer.finish_overlapped_reduction();
  // The returned hook starts a bucket's all-reduce once the gradients of all its parameters are final and every
  // bucket before it has started: every rank starts them in the same order, whatever order backward finishes
  // them in. finish starts the rest (buckets whose parameters backward did not reach), waits for all of them and
  // writes the results back into the gradients. The hook must not outlive the reducer.
  autograd::LeafGradientReadyFn start_overlapped_reduction(ReduceOp op);
  void finish_overlapped_reduction();
  // Copies the parameter values of rank `root` to every rank (identical initial weights).
  void broadcast_parameters(int root);

  size_t bucket_count() const { return buckets_.size(); }

 private:
  // Calls fn(parameter, slot) for each parameter of `bucket`, slot being its span of the bucket's buffer viewed
  // in the parameter's shape.
  void for_each_slot(size_t bucket, const std::function<void(Tensor&, Tensor&)>& fn);

  // Copies the bucket's gradients (zeros where a parameter has none) into its buffer and starts its all-reduce.
  void start_bucket(size_t bucket);
  // Starts, in order, the buckets from next_bucket_ on whose parameters are all ready.
  void start_ready_buckets();

  Communicator& communicator_;
  std::vector<std::pair<std::string, Tensor>> parameters_;
  std::vector<size_t> order_;                          // reverse registration order
  std::vector<std::pair<size_t, size_t>> buckets_;     // ranges of order_
  std::vector<Tensor> buffers_;                        // one flat f32 buffer per bucket
  std::unordered_map<const AutogradMeta*, size_t> bucket_of_;  // a parameter's bucket

  // The reduction in progress (between start_ and finish_overlapped_reduction).
  ReduceOp op_ = ReduceOp::kSum;
  std::vector<size_t> unready_;                        // per bucket: parameters whose gradient is not final yet
  size_t next_bucket_ = 0;                             // the next bucket to start
  std::vector<std::unique_ptr<PendingCollective>> in_flight_;  // per bucket, once started
  bool reducing_ = false;
};

}  // namespace bertforge
