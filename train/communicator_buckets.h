// Gradient all-reduce and parameter broadcast in buckets: the parameters are
// grouped into flat f32 buffers of about `bucket_bytes` (25 MB by default, as
// PyTorch DDP), so that a 110M-parameter BERT needs ~18 collectives per step
// instead of ~200 small ones, each far from the network's bandwidth.
//
// Buckets follow the parameters in reverse registration order: backward
// produces the gradients of the last layers first, so a backend that overlaps
// communication with backward (NCCL) can reduce a bucket as soon as its
// gradients are ready. Every backend shares this plan; only the collective
// call on a bucket differs.
//
// Every rank must hold the same parameters (names, shapes, order).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

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
  // Copies the parameter values of rank `root` to every rank (identical initial weights).
  void broadcast_parameters(int root);

  size_t bucket_count() const { return buckets_.size(); }

 private:
  // Calls fn(parameter, slot) for each parameter of `bucket`, slot being its span of the bucket's buffer viewed
  // in the parameter's shape.
  void for_each_slot(size_t bucket, const std::function<void(Tensor&, Tensor&)>& fn);

  Communicator& communicator_;
  std::vector<std::pair<std::string, Tensor>> parameters_;
  std::vector<size_t> order_;                          // reverse registration order
  std::vector<std::pair<size_t, size_t>> buckets_;     // ranges of order_
  std::vector<Tensor> buffers_;                        // one flat f32 buffer per bucket
};

}  // namespace bertforge
