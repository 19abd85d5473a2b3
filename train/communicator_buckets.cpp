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
  for (size_t b = 0; b < buckets_.size(); ++b) {
    const auto [begin, end] = buckets_[b];
    int64_t total = 0;
    for (size_t k = begin; k < end; ++k) {
      total += numels[k];
      const Tensor& parameter = parameters_[order_[k]].second;
      if (parameter.requires_grad()) bucket_of_[parameter.autograd_meta()] = b;
    }
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
  start_overlapped_reduction(op);
  finish_overlapped_reduction();
}

autograd::LeafGradientReadyFn BucketedReducer::start_overlapped_reduction(ReduceOp op) {
  BF_CHECK(!reducing_, "BucketedReducer: a reduction is already in progress");
  reducing_ = true;
  op_ = op;
  next_bucket_ = 0;
  in_flight_.clear();
  in_flight_.resize(buckets_.size());
  unready_.clear();
  for (const auto& [begin, end] : buckets_) unready_.push_back(end - begin);
  return [this](const AutogradMeta& leaf) {
    const auto it = bucket_of_.find(&leaf);
    if (it == bucket_of_.end()) return;  // not one of this reducer's parameters
    --unready_[it->second];
    start_ready_buckets();
  };
}

void BucketedReducer::start_ready_buckets() {
  while (next_bucket_ < buckets_.size() && unready_[next_bucket_] == 0) start_bucket(next_bucket_++);
}

void BucketedReducer::start_bucket(size_t bucket) {
  for_each_slot(bucket, [](Tensor& parameter, Tensor& slot) {
    const Tensor grad = parameter.grad();
    if (grad.defined()) {
      slot.copy_(grad);
    } else {
      slot.fill_(0.0f);
    }
  });
  in_flight_[bucket] = communicator_.all_reduce_async(buffers_[bucket], op_);
}

void BucketedReducer::finish_overlapped_reduction() {
  BF_CHECK(reducing_, "BucketedReducer: finish_overlapped_reduction without a reduction in progress");
  while (next_bucket_ < buckets_.size()) start_bucket(next_bucket_++);
  for (size_t b = 0; b < buckets_.size(); ++b) {
    in_flight_[b]->wait();
    for_each_slot(b, [](Tensor& parameter, Tensor& slot) { parameter.set_grad(slot.clone()); });
  }
  in_flight_.clear();
  reducing_ = false;
}

void BucketedReducer::broadcast_parameters(int root) {
  for (size_t b = 0; b < buckets_.size(); ++b) {
    for_each_slot(b, [](Tensor& parameter, Tensor& slot) { slot.copy_(parameter); });
    communicator_.broadcast(buffers_[b], root);
    for_each_slot(b, [](Tensor& parameter, Tensor& slot) { parameter.copy_(slot); });
  }
}

}  // namespace bertforge
