// tests/bench/bench_cuda_kernels.cpp — the CUDA kernels at BERT-base sizes on GPU 0: each kernel's achieved
// bandwidth against the device's copy bandwidth (a device-to-device cudaMemcpy, bytes read + written), and the
// cuBLAS GEMMs' FLOP/s in each precision, and with 16-bit operands (mixed precision). Needs a GPU (built with the
// CUDA backend; exits 2 without one).
//
// Usage: bench_cuda_kernels
// The optimizer step of BERT-base is timed twice: one AdamW launch per parameter tensor, and the multi-tensor
// kernel; and the global norm's per-chunk sums of squares.
// Output: per kernel, microseconds per call (median of 20 after 3 warm-up, CUDA events), the bytes it must move
// at least (each input read once, each output written once), GB/s, and that as a fraction of the copy bandwidth.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "core/philox.h"
#include "core/tensor.h"
#include "cuda/cuda_check.h"
#include "cuda/device.h"
#include "cuda/gemm.h"
#include "ops/cpu/gemm.h"
#include "ops/kernels.h"
#include "tests/support/cpu_kernels.h"

// K(name): the CUDA kernel `name`, of its CPU twin's type (tests/support/cpu_kernels.h, ops/cpu/gemm.h).
#define K(name) BF_KERNEL(Device::cuda(0), name)

namespace {

using bertforge::Device;
using bertforge::DType;
using bertforge::Tensor;

constexpr int kWarmup = 3, kRepeats = 20;
constexpr int64_t kTokens = 32 * 128, kHidden = 768, kFfn = 3072, kHeads = 12, kSeq = 128, kVocab = 30522;

// Median seconds of `fn` on the GPU, measured with events around each call.
double median_gpu_seconds(const std::function<void()>& fn) {
  cudaEvent_t start, stop;
  BF_CUDA_CHECK(cudaEventCreate(&start));
  BF_CUDA_CHECK(cudaEventCreate(&stop));
  for (int i = 0; i < kWarmup; ++i) fn();
  std::vector<double> seconds;
  for (int i = 0; i < kRepeats; ++i) {
    BF_CUDA_CHECK(cudaEventRecord(start));
    fn();
    BF_CUDA_CHECK(cudaEventRecord(stop));
    BF_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    BF_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    seconds.push_back(ms * 1e-3);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(seconds.begin(), seconds.end());
  return seconds[seconds.size() / 2];
}

Tensor gpu_random(const bertforge::Shape& shape, float lo, float hi, uint64_t seed) {
  Tensor t = Tensor::empty(shape);
  bertforge::fill_uniform(t, seed, 0, lo, hi);
  return t.to(Device::cuda(0));
}

float* f(const Tensor& t) { return static_cast<float*>(t.raw_data()); }

// The element counts of BertForMaskedLM's parameters at the base preset, in model order.
std::vector<int64_t> bert_base_parameter_sizes() {
  std::vector<int64_t> sizes = {kVocab * kHidden, 512 * kHidden, 2 * kHidden, kHidden, kHidden};  // embeddings, LN
  for (int layer = 0; layer < 12; ++layer) {
    for (int i = 0; i < 4; ++i) sizes.insert(sizes.end(), {kHidden * kHidden, kHidden});  // Q, K, V, output
    sizes.insert(sizes.end(), {kHidden, kHidden, kFfn * kHidden, kFfn, kHidden * kFfn, kHidden, kHidden, kHidden});
  }
  sizes.insert(sizes.end(), {kHidden * kHidden, kHidden, kHidden, kHidden, kVocab});  // MLM head (decoder tied)
  return sizes;
}

}  // namespace

int main() {
  bertforge::cuda::register_cuda_backend();
  if (bertforge::cuda::device_count() == 0) {
    std::fprintf(stderr, "bench_cuda_kernels: no CUDA device\n");
    return 2;
  }
  cudaDeviceProp properties{};
  BF_CUDA_CHECK(cudaGetDeviceProperties(&properties, 0));

  // The yardstick: copying 1 GiB device to device.
  const int64_t copy_floats = int64_t{1} << 28;
  const Tensor copy_src = Tensor::zeros({copy_floats}, DType::kF32, Device::cuda(0));
  const Tensor copy_dst = Tensor::empty({copy_floats}, DType::kF32, Device::cuda(0));
  const double copy_bytes = 2.0 * 4 * copy_floats;
  const double copy_seconds = median_gpu_seconds([&] {
    BF_CUDA_CHECK(cudaMemcpy(copy_dst.raw_data(), copy_src.raw_data(), 4 * copy_floats, cudaMemcpyDeviceToDevice));
  });
  const double peak = copy_bytes / copy_seconds;
  std::printf("bench_cuda_kernels: %s, %d SMs; device-to-device copy %.0f GB/s (read + write)\n", properties.name,
              properties.multiProcessorCount, peak * 1e-9);
  std::printf("%-34s %10s %10s %9s %8s\n", "kernel (BERT-base sizes)", "us/call", "MB moved", "GB/s", "of copy");

  auto report = [&](const std::string& name, double bytes, const std::function<void()>& fn) {
    const double seconds = median_gpu_seconds(fn);
    std::printf("%-34s %10.1f %10.1f %9.0f %7.0f%%\n", name.c_str(), seconds * 1e6, bytes * 1e-6,
                bytes / seconds * 1e-9, 100.0 * bytes / seconds / peak);
  };

  const int64_t ffn_n = kTokens * kFfn, hidden_n = kTokens * kHidden;
  const Tensor ffn_x = gpu_random({kTokens, kFfn}, -3, 3, 1), ffn_y = gpu_random({kTokens, kFfn}, -1, 1, 2);
  const Tensor ffn_out = Tensor::empty({kTokens, kFfn}, DType::kF32, Device::cuda(0));
  report("gelu forward (4096x3072)", 8.0 * ffn_n, [&] { K(gelu_forward)(f(ffn_out), f(ffn_x), ffn_n); });
  report("gelu backward", 12.0 * ffn_n, [&] { K(gelu_backward)(f(ffn_out), f(ffn_x), f(ffn_y), ffn_n); });
  report("add_bias (4096x3072)", 8.0 * ffn_n, [&] { K(add_bias)(f(ffn_out), f(ffn_x), f(ffn_y), kTokens, kFfn); });
  report("sum_rows / bias grad (4096x3072)", 4.0 * ffn_n, [&] { K(sum_rows)(f(ffn_out), f(ffn_x), kTokens, kFfn); });
  report("dropout forward p=0.1", 8.0 * ffn_n, [&] { K(dropout_forward)(f(ffn_out), f(ffn_x), ffn_n, 0.1f, 1, 2); });

  const Tensor h = gpu_random({kTokens, kHidden}, -3, 3, 3), h_out = Tensor::empty_like(h);
  const Tensor dh = gpu_random({kTokens, kHidden}, -1, 1, 4), dh_out = Tensor::empty_like(h);
  const Tensor gamma = gpu_random({kHidden}, 0.5f, 1.5f, 5), beta = gpu_random({kHidden}, -1, 1, 6);
  const Tensor mean = Tensor::empty({kTokens}, DType::kF32, Device::cuda(0)), rstd = Tensor::empty_like(mean);
  const Tensor dgamma = Tensor::empty_like(gamma), dbeta = Tensor::empty_like(beta);
  report("layernorm forward (4096x768)", 8.0 * hidden_n,
         [&] { K(layernorm_forward)(f(h_out), f(mean), f(rstd), f(h), f(gamma), f(beta), kTokens, kHidden, 1e-12f); });
  report("layernorm backward", 12.0 * hidden_n, [&] {
    K(layernorm_backward)(f(dh_out), f(dgamma), f(dbeta), f(dh), f(h), f(gamma), f(mean), f(rstd), kTokens, kHidden);
  });

  const int64_t score_rows = 32 * kHeads * kSeq, score_n = score_rows * kSeq;
  const Tensor scores = gpu_random({score_rows, kSeq}, -5, 5, 7), probs = Tensor::empty_like(scores);
  const Tensor clipped = Tensor::empty_like(scores), dprobs = gpu_random({score_rows, kSeq}, -1, 1, 8);
  const Tensor mask = Tensor::zeros({32, kSeq}, DType::kF32, Device::cuda(0));
  report("softmax forward (32x12x128x128)", 8.0 * score_n,
         [&] { K(softmax_forward)(f(probs), f(scores), f(mask), score_rows, kSeq, kHeads * kSeq); });
  report("softmax backward", 12.0 * score_n,
         [&] { K(softmax_backward)(f(clipped), f(dprobs), f(probs), score_rows, kSeq); });
  report("clipped softmax forward", 12.0 * score_n, [&] {
    K(clipped_softmax_forward)(f(clipped), f(probs), f(scores), f(mask), score_rows, kSeq, kHeads * kSeq, -0.03f, 1.0f);
  });
  report("head dropout forward p=0.1", 8.0 * score_n,
         [&] { K(head_dropout_forward)(f(clipped), f(probs), 32, kHeads, kSeq * kSeq, 0.1f, 1, 2); });

  const int64_t labelled = 640;
  const Tensor logits = gpu_random({labelled, kVocab}, -8, 8, 9), dlogits = Tensor::empty_like(logits);
  std::vector<int64_t> target_values(labelled);
  for (int64_t i = 0; i < labelled; ++i) target_values[i] = (i * 7919) % kVocab;
  const Tensor targets = Tensor::from_vector(target_values, {labelled}).to(Device::cuda(0));
  const Tensor loss = Tensor::empty({labelled}, DType::kF32, Device::cuda(0)), lse = Tensor::empty_like(loss);
  const int64_t* target_ptr = static_cast<const int64_t*>(targets.raw_data());
  report("cross-entropy forward (640x30522)", 4.0 * labelled * kVocab,
         [&] { K(cross_entropy_forward)(f(loss), f(lse), f(logits), target_ptr, labelled, kVocab, -100); });
  report("cross-entropy backward", 8.0 * labelled * kVocab, [&] {
    K(cross_entropy_backward)(f(dlogits), f(logits), f(lse), target_ptr, labelled, kVocab, -100, 1.0f / labelled);
  });

  const Tensor table = gpu_random({kVocab, kHidden}, -1, 1, 10);
  std::vector<int64_t> id_values(kTokens);
  for (int64_t i = 0; i < kTokens; ++i) id_values[i] = (i * 104729) % kVocab;
  const Tensor ids = Tensor::from_vector(id_values, {kTokens}).to(Device::cuda(0));
  const int64_t* id_ptr = static_cast<const int64_t*>(ids.raw_data());
  report("embedding forward (4096 of 30522x768)", 8.0 * hidden_n,
         [&] { K(embedding_forward)(f(h_out), id_ptr, f(table), kTokens, kHidden); });
  report("embedding backward (scatter-add)", 12.0 * hidden_n,
         [&] { K(embedding_backward)(f(table), id_ptr, f(dh), kTokens, kHidden); });

  const int64_t param_n = kFfn * kHidden;
  const Tensor param = gpu_random({param_n}, -1, 1, 11), grad = gpu_random({param_n}, -1, 1, 12);
  const Tensor m = gpu_random({param_n}, -0.1f, 0.1f, 13), v = gpu_random({param_n}, 0, 0.01f, 14);
  report("adamw update (3072x768)", 28.0 * param_n, [&] {
    K(adamw_update)(f(param), f(grad), f(m), f(v), param_n, 1e-4f, 0.9f, 0.999f, 1e-6f, 0.01f, 10);
  });
  // The optimizer step of BERT-base (its ~200 parameter tensors): one launch per tensor against the multi-tensor
  // kernels (one launch per kMultiTensorGroup tensors); the same bytes either way.
  const std::vector<int64_t> sizes = bert_base_parameter_sizes();
  std::vector<Tensor> params, grads, ms, vs;
  std::vector<float*> param_ptrs, m_ptrs, v_ptrs;
  std::vector<const float*> grad_ptrs;
  std::vector<float> decays;
  int64_t total = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    params.push_back(gpu_random({sizes[i]}, -1, 1, 100 + i));
    grads.push_back(gpu_random({sizes[i]}, -1, 1, 400 + i));
    ms.push_back(gpu_random({sizes[i]}, -0.1f, 0.1f, 700 + i));
    vs.push_back(gpu_random({sizes[i]}, 0, 0.01f, 1000 + i));
    param_ptrs.push_back(f(params.back()));
    grad_ptrs.push_back(f(grads.back()));
    m_ptrs.push_back(f(ms.back()));
    v_ptrs.push_back(f(vs.back()));
    decays.push_back(0.01f);
    total += sizes[i];
  }
  const std::string tensors = std::to_string(sizes.size()) + " tensors";
  report("adamw, BERT-base, per tensor (" + tensors + ")", 28.0 * total, [&] {
    for (size_t i = 0; i < sizes.size(); ++i) {
      K(adamw_update)(param_ptrs[i], grad_ptrs[i], m_ptrs[i], v_ptrs[i], sizes[i], 1e-4f, 0.9f, 0.999f, 1e-6f, 0.01f,
                     10);
    }
  });
  report("adamw, BERT-base, multi-tensor", 28.0 * total, [&] {
    K(adamw_update_many)(param_ptrs.data(), grad_ptrs.data(), m_ptrs.data(), v_ptrs.data(), sizes.data(),
                        decays.data(), static_cast<int64_t>(sizes.size()), 1.0f, 1e-4f, 0.9f, 0.999f, 1e-6f, 10);
  });
  const Tensor partials = Tensor::empty({bertforge::multi_tensor_chunks(sizes.data(), sizes.size())}, DType::kF32,
                                        Device::cuda(0));
  report("sum of squares, BERT-base grads, chunks", 4.0 * total, [&] {
    K(sum_of_squares_chunks)(f(partials), grad_ptrs.data(), sizes.data(), static_cast<int64_t>(sizes.size()));
  });

  const Tensor heads_in = gpu_random({32, kSeq, kHeads, kHidden / kHeads}, -1, 1, 15);
  report("strided copy (B,T,H,D)->(B,H,T,D)", 8.0 * hidden_n,
         [&] { heads_in.permute({0, 2, 1, 3}).contiguous(); });

  // GEMMs: the FFN's first linear, (4096 x 768) x (768 x 3072).
  std::printf("\n%-34s %10s %10s\n", "GEMM 4096x3072x768 (cuBLAS)", "us/call", "TFLOP/s");
  const Tensor w = gpu_random({kFfn, kHidden}, -1, 1, 16);
  for (auto precision : {bertforge::cuda::GemmPrecision::kFp32, bertforge::cuda::GemmPrecision::kTf32,
                         bertforge::cuda::GemmPrecision::kBf16, bertforge::cuda::GemmPrecision::kFp16}) {
    bertforge::cuda::set_gemm_precision(precision);
    const double seconds = median_gpu_seconds([&] {
      K(gemm_strided_batched)(false, true, kTokens, kFfn, kHidden, 1.0f, f(h), kHidden, 0, f(w), kHidden, 0, 0.0f,
                             f(ffn_out), kFfn, 0, 1);
    });
    std::printf("%-34s %10.1f %10.1f\n", bertforge::cuda::gemm_precision_name(precision).c_str(), seconds * 1e6,
                2.0 * kTokens * kFfn * kHidden / seconds * 1e-12);
  }
  bertforge::cuda::set_gemm_precision(bertforge::cuda::GemmPrecision::kFp32);
  // Mixed precision (ops/autocast.h): operands stored in 16 bits, FP32 output.
  for (DType type : {DType::kBF16, DType::kF16}) {
    const Tensor h16 = h.to(type), w16 = w.to(type);
    const double seconds = median_gpu_seconds([&] {
      K(gemm_strided_batched_16)(type, false, true, kTokens, kFfn, kHidden, 1.0f, h16.raw_data(), kHidden, 0,
                                w16.raw_data(), kHidden, 0, 0.0f, f(ffn_out), kFfn, 0, 1);
    });
    std::printf("%-34s %10.1f %10.1f\n", (std::string(bertforge::dtype_name(type)) + " operands, f32 out").c_str(),
                seconds * 1e6, 2.0 * kTokens * kFfn * kHidden / seconds * 1e-12);
  }
  return 0;
}
