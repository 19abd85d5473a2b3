// CPU tensor fillers over the Philox stream (see core/philox.h for the stream).
#include "core/philox.h"

#include "core/tensor.h"

namespace bertforge {
namespace {

// Calls value(block_words, j) for element k = 4 * block + j of the stream and
// stores the result in t's element k. Each loop iteration computes one Philox
// block and fills up to four elements, so threads never share a block.
template <typename ValueFn>
void fill_from_blocks(Tensor& t, const char* what, uint64_t seed, uint64_t offset, ValueFn value) {
  BF_CHECK(t.dtype() == DType::kF32, what, ": needs an f32 tensor, got ", dtype_name(t.dtype()));
  BF_CHECK(t.device().is_cpu(), what, ": needs a CPU tensor, got ", t.device().str());
  BF_CHECK(t.is_contiguous(), what, ": needs a contiguous tensor, got strides ", shape_to_string(t.strides()),
           " for shape ", t.shape_str());
  float* out = t.data<float>();
  const int64_t n = t.numel();
  const int64_t num_blocks = (n + 3) / 4;
#pragma omp parallel for schedule(static)
  for (int64_t block = 0; block < num_blocks; ++block) {
    const Uint32x4 words = philox_block(seed, offset, static_cast<uint64_t>(block));
    const int64_t first = 4 * block;
    const int count = static_cast<int>(n - first < 4 ? n - first : 4);
    for (int j = 0; j < count; ++j) out[first + j] = value(words, j);
  }
}

}  // namespace

void fill_uniform(Tensor& t, uint64_t seed, uint64_t offset, float low, float high) {
  const float range = high - low;
  fill_from_blocks(t, "fill_uniform", seed, offset, [=](const Uint32x4& w, int j) {
    return low + range * philox_word_to_uniform(w.x[j]);
  });
}

void fill_normal(Tensor& t, uint64_t seed, uint64_t offset, float mean, float stddev) {
  fill_from_blocks(t, "fill_normal", seed, offset,
                   [=](const Uint32x4& w, int j) { return mean + stddev * philox_block_normal(w, j); });
}

void fill_bernoulli(Tensor& t, uint64_t seed, uint64_t offset, float p) {
  fill_from_blocks(t, "fill_bernoulli", seed, offset,
                   [=](const Uint32x4& w, int j) { return philox_word_to_uniform(w.x[j]) < p ? 1.0f : 0.0f; });
}

}  // namespace bertforge
