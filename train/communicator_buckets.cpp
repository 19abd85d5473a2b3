// Bucketed gradient all-reduce and parameter broadcast (communicator_buckets.h).
#include "train/communicator_buckets.h"

#include <functional>

#include "core/check.h"

namespace bertforge {

std::vector<std::pair<size_t, size_t>> plan_buckets(const std::vector<int64_t>& numels, int64_t bucket_bytes) {
  BF_CHECK(bucket_bytes > 0, "plan_buckets: bucket_bytes must be positive, got ", bucket_bytes);
  const int64_t capacity = bucket_bytes / static_cast<int64_t>(sizeof(float));
  std::vector<std::pair<size_t, size_t>> buckets;
  size_t begin = 0;
  int64_t filled = 0;
  for (size_t i = 0; i < numels.size(); ++i) {
    if (i > begin && filled + numels[i] > capacity) {
      buckets.emplace_back(begin, i);
      begin = i;
      filled = 0;
    }
    filled += numels[i];
  }
  if (begin < numels.size()) buckets.emplace_back(begin, numels.size());
  return buckets;
}

BucketedReducer::BucketedReducer(Communicator& communicator, std::vector<std::pair<std::string, Tensor>> parameters,
                                 int64_t bucket_bytes)
    : communicator_(communicator), parameters_(std::move(parameters)) {
  std::vector<int64_t> numels;
  for (size_t i = parameters_.size(); i-- > 0;) {
    const auto& [name, parameter] = parameters_[i];
    BF_CHECK(parameter.dtype() == DType::kF32, "BucketedReducer: parameter ", name, " is ", parameter.str(),
             "; f32 only");
    order_.push_back(i);
    numels.push_back(parameter.numel());
  }
  buckets_ = plan_buckets(numels, bucket_bytes);
  for (const auto& [begin, end] : buckets_) {
    int64_t total = 0;
    for (size_t k = begin; k < end; ++k) total += numels[k];
    buffers_.push_back(Tensor::empty({total}, DType::kF32, parameters_[order_[begin]].second.device()));
  }
}

void BucketedReducer::for_each_slot(size_t bucket, const std::function<void(Tensor&, Tensor&)>& fn) {
  int64_t offset = 0;
  for (size_t k = buckets_[bucket].first; k < buckets_[bucket].second; ++k) {
    Tensor parameter = parameters_[order_[k]].second;
    Tensor slot = buffers_[bucket].slice(0, offset, offset + parameter.numel()).view(parameter.shape());
    fn(parameter, slot);
    offset += parameter.numel();
  }
}

void BucketedReducer::all_reduce_gradients(ReduceOp op) {
  for (size_t b = 0; b < buckets_.size(); ++b) {
    for_each_slot(b, [](Tensor& parameter, Tensor& slot) {
      const Tensor grad = parameter.grad();
      if (grad.defined()) {
        slot.copy_(grad);
      } else {
        slot.fill_(0.0f);
      }
    });
    communicator_.all_reduce(buffers_[b], op);
    for_each_slot(b, [](Tensor& parameter, Tensor& slot) { parameter.set_grad(slot.clone()); });
  }
}

void BucketedReducer::broadcast_parameters(int root) {
  for (size_t b = 0; b < buckets_.size(); ++b) {
    for_each_slot(b, [](Tensor& parameter, Tensor& slot) { slot.copy_(parameter); });
    communicator_.broadcast(buffers_[b], root);
    for_each_slot(b, [](Tensor& parameter, Tensor& slot) { parameter.copy_(slot); });
  }
}

}  // namespace bertforge
