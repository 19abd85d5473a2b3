// examples/tiny_bert/main.cpp — bertforge as a library: builds a BertForMaskedLM from the "tiny" preset (random
// weights, seed 0), runs one forward pass in eval mode on a sentence of token ids and prints the shape of the
// logits, (batch, tokens, vocabulary). On a CUDA build with a GPU present it runs on the GPU.
#include <cstdint>
#include <cstdio>
#include <vector>

#include "autograd/grad_mode.h"
#include "core/tensor.h"
#include "models/bert.h"
#include "models/bert_config.h"
#ifdef BERTFORGE_CUDA  // defined by bertforge::bertforge when bertforge was built with its CUDA backend
#include "cuda/device.h"
#endif

using namespace bertforge;

int main() {
  Device device = Device::cpu();
#ifdef BERTFORGE_CUDA
  cuda::register_cuda_backend();
  if (cuda::device_count() > 0) device = Device::cuda(0);
#endif

  const BertConfig config = BertConfig::tiny();  // 2 layers, hidden 128, the bert-base-uncased vocabulary
  BertForMaskedLM model(config, /*init_seed=*/0);
  model.to(device);
  model.eval();  // no dropout
  autograd::NoGradGuard no_grad;  // inference: record no graph

  // "[CLS] the cat sat [MASK] [SEP]" in bert-base-uncased ids; shape (batch 1, 6 tokens).
  const std::vector<int64_t> ids = {101, 1996, 4937, 2938, 103, 102};
  const Tensor input_ids = Tensor::from_vector(ids, {1, static_cast<int64_t>(ids.size())}).to(device);

  const BertOutput out = model.forward(input_ids);
  std::printf("BertForMaskedLM (tiny, %lld parameters) on %s\n", static_cast<long long>(model.num_parameters()),
              device.str().c_str());
  std::printf("logits %s\n", out.logits.shape_str().c_str());  // [1, 6, 30522]
  return 0;
}
