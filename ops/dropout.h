// Differentiable dropout and head dropout (DropHead) with masks drawn from a
// counter-based Philox stream, so CPU and CUDA draw the same masks and the
// backward pass regenerates the mask from its key instead of storing it.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace bertforge {

// Names the Philox stream (core/philox.h) a mask is drawn from. Two masks
// with the same key are identical; every dropout site in a step needs its own.
struct DropoutKey {
  uint64_t seed = 0;    // the run's seed
  uint64_t offset = 0;  // the stream within the seed
};

// The key of dropout site `tensor_id` at optimizer step `step` on data-parallel
// rank `rank` (micro_step: the micro-batch under gradient accumulation):
// offset = philox_stream_offset(step, rank, tensor_id, micro_step).
DropoutKey dropout_key(uint64_t seed, uint64_t step, uint64_t rank, uint64_t tensor_id, uint64_t micro_step = 0);

// Element i of x (row-major) is kept iff philox_uniform(key.seed, key.offset, i) >= p,
// and kept elements are scaled by 1 / (1 - p). Returns x itself when !training or
// p == 0; p == 1 gives zeros; p outside [0, 1] is an error.
Tensor dropout(const Tensor& x, float p, const DropoutKey& key, bool training);

// x (B, H, ...): per sample b and head h, the whole slice x[b, h] is kept with
// probability 1 - p, and kept heads are scaled by H / (number kept in sample b);
// a sample that would drop every head is redrawn (ops/head_dropout_mask.h
// documents the stream layout and the fallback). Returns x itself when !training
// or p == 0; p must be in [0, 1) and H at most 64.
Tensor head_dropout(const Tensor& x, float p, const DropoutKey& key, bool training);

}  // namespace bertforge
