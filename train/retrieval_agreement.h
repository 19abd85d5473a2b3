// Retrieval agreement of two embeddings of the same sentences (e.g. an FP model's and its quantized version's):
// would a nearest-neighbour search over them return the same sentences?
//
// For A and B (N,D), row i of each embedding sentence i:
//   top_k_X(i)    = the k sentences j != i with the highest cos(X_i, X_j)
//   top_k_overlap = mean over i of |top_k_A(i) ∩ top_k_B(i)| / k     (1: the same neighbours for every sentence)
//   mean_cosine   = mean over i of cos(A_i, B_i)                     (1: the same directions)
// with k = min(top_k, N - 1). Ties are broken by sentence index: among equal cosines the lower j ranks first, so
// top_k is always exactly k sentences and the result does not depend on sort internals. cos(x, y) = x.y /
// (|x| |y|) in double precision, summed in a fixed order so that equal rows tie exactly; for a zero row it is 0
// against any other row (mean_cosine counts two zero rows as 1, as train/evaluation.h's HiddenStateAgreement does).
//
// Cost: N^2 D multiply-adds per matrix, in blocks of 32 rows that share each pass over the matrix; memory: both
// matrices in double, plus 2 x 32 x N cosines per thread. Measured with D = 384 on 2 cores shared with other jobs:
// 0.6 s for N = 1000, 9 s for N = 4000.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "core/tensor.h"

namespace bertforge {

inline constexpr int64_t kDefaultRetrievalTopK = 10;

struct RetrievalAgreement {
  double top_k_overlap = 0;  // in [0, 1]
  double mean_cosine = 0;    // in [-1, 1]
  int64_t k = 0;             // the k used: min(top_k, N - 1)
  int64_t sentences = 0;     // N
};

// a, b: F32 (N,D) of one shape, on any device, every value finite; N >= 2, top_k >= 1. InvalidArgument otherwise.
absl::StatusOr<RetrievalAgreement> retrieval_agreement(const Tensor& a, const Tensor& b,
                                                       int64_t top_k = kDefaultRetrievalTopK);

}  // namespace bertforge
