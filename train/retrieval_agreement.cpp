// Retrieval agreement: top-k cosine-neighbour overlap and mean cosine of two embeddings (retrieval_agreement.h).
#include "train/retrieval_agreement.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/check.h"

namespace bertforge {
namespace {

// Rows of x (N,D) scaled to unit length in double; a zero row stays zero. InvalidArgument for a non-finite value.
absl::StatusOr<std::vector<double>> unit_rows(const Tensor& x, const char* name) {
  const int64_t N = x.size(0), D = x.size(1);
  const std::vector<float> values = x.to(Device::cpu()).to_float_vector();
  std::vector<double> unit(values.begin(), values.end());
  for (int64_t i = 0; i < N; ++i) {
    double* row = &unit[i * D];
    double norm = 0;
    for (int64_t d = 0; d < D; ++d) {
      if (!std::isfinite(row[d])) {
        return absl::InvalidArgumentError(
            absl::StrCat("retrieval_agreement: ", name, "[", i, ", ", d, "] is ", row[d], " (not finite)"));
      }
      norm += row[d] * row[d];
    }
    if (norm == 0) continue;
    norm = std::sqrt(norm);
    for (int64_t d = 0; d < D; ++d) row[d] /= norm;
  }
  return unit;
}

// x.y in a fixed summation order (16 lanes by d mod 16, then a fixed tree), so equal rows give equal dot products
// wherever they lie in memory: ties are exact ties. (16 lanes: two independent chains of 8-wide FMAs.)
double dot(const double* x, const double* y, int64_t D) {
  constexpr int kLanes = 16;
  double lanes[kLanes] = {};
  int64_t d = 0;
  for (; d + kLanes <= D; d += kLanes) {
    for (int l = 0; l < kLanes; ++l) lanes[l] += x[d + l] * y[d + l];
  }
  for (; d < D; ++d) lanes[d % kLanes] += x[d] * y[d];
  for (int width = kLanes / 2; width >= 1; width /= 2) {
    for (int l = 0; l < width; ++l) lanes[l] += lanes[l + width];
  }
  return lanes[0];
}

// The cosines of rows [begin, end) of `unit` (N,D) with every row: (end - begin, N) into `out`. Each row j is
// read once for the whole block, so the block's rows stay in cache and the matrix streams through once.
void cosine_block(const std::vector<double>& unit, int64_t N, int64_t D, int64_t begin, int64_t end,
                  std::vector<double>& out) {
  out.resize(static_cast<size_t>((end - begin) * N));
  for (int64_t j = 0; j < N; ++j) {
    for (int64_t i = begin; i < end; ++i) out[(i - begin) * N + j] = dot(&unit[i * D], &unit[j * D], D);
  }
}

// The k sentences j != i with the highest cosines (N of them, row i's), ties to the lower j, sorted by index.
// `candidates` is scratch space.
std::vector<int64_t> top_k_neighbours(const double* cosines, int64_t N, int64_t i, int64_t k,
                                      std::vector<std::pair<double, int64_t>>& candidates) {
  candidates.clear();
  for (int64_t j = 0; j < N; ++j) {
    if (j != i) candidates.emplace_back(cosines[j], j);
  }
  // A strict total order (cosine descending, then index ascending), so the first k are one well-defined set.
  const auto ranks_before = [](const std::pair<double, int64_t>& x, const std::pair<double, int64_t>& y) {
    return x.first != y.first ? x.first > y.first : x.second < y.second;
  };
  std::nth_element(candidates.begin(), candidates.begin() + (k - 1), candidates.end(), ranks_before);
  std::vector<int64_t> neighbours;
  neighbours.reserve(static_cast<size_t>(k));
  for (int64_t n = 0; n < k; ++n) neighbours.push_back(candidates[n].second);
  std::sort(neighbours.begin(), neighbours.end());
  return neighbours;
}

constexpr int64_t kBlockRows = 32;  // rows whose cosines are computed together (cosine_block)

}  // namespace

absl::StatusOr<RetrievalAgreement> retrieval_agreement(const Tensor& a, const Tensor& b, int64_t top_k) {
  if (a.dim() != 2 || a.shape() != b.shape() || a.dtype() != DType::kF32 || b.dtype() != DType::kF32) {
    return absl::InvalidArgumentError(absl::StrCat("retrieval_agreement: embeddings must be F32 (N,D) of one shape, "
                                                   "got ", a.str(), " and ", b.str()));
  }
  const int64_t N = a.size(0), D = a.size(1);
  if (N < 2) {
    return absl::InvalidArgumentError(absl::StrCat("retrieval_agreement: needs at least 2 sentences, got ", N));
  }
  if (top_k < 1) return absl::InvalidArgumentError(absl::StrCat("retrieval_agreement: top_k ", top_k, " < 1"));
  BF_ASSIGN_OR_RETURN(const std::vector<double> unit_a, unit_rows(a, "A"));
  BF_ASSIGN_OR_RETURN(const std::vector<double> unit_b, unit_rows(b, "B"));

  RetrievalAgreement result;
  result.k = std::min(top_k, N - 1);
  result.sentences = N;
  std::vector<double> overlap(static_cast<size_t>(N)), cosine(static_cast<size_t>(N));
#pragma omp parallel
  {
    std::vector<double> cosines_a, cosines_b;
    std::vector<std::pair<double, int64_t>> candidates;
    candidates.reserve(static_cast<size_t>(N));
#pragma omp for schedule(dynamic)
    for (int64_t begin = 0; begin < N; begin += kBlockRows) {
      const int64_t end = std::min(N, begin + kBlockRows);
      cosine_block(unit_a, N, D, begin, end, cosines_a);
      cosine_block(unit_b, N, D, begin, end, cosines_b);
      for (int64_t i = begin; i < end; ++i) {
        const std::vector<int64_t> near_a = top_k_neighbours(&cosines_a[(i - begin) * N], N, i, result.k, candidates);
        const std::vector<int64_t> near_b = top_k_neighbours(&cosines_b[(i - begin) * N], N, i, result.k, candidates);
        std::vector<int64_t> shared;
        std::set_intersection(near_a.begin(), near_a.end(), near_b.begin(), near_b.end(),
                              std::back_inserter(shared));
        overlap[i] = static_cast<double>(shared.size()) / static_cast<double>(result.k);
        const double norms = dot(&unit_a[i * D], &unit_a[i * D], D) + dot(&unit_b[i * D], &unit_b[i * D], D);
        cosine[i] = norms == 0 ? 1.0 : dot(&unit_a[i * D], &unit_b[i * D], D);
      }
    }
  }
  // Summed in index order, so the result does not depend on the thread count.
  for (int64_t i = 0; i < N; ++i) {
    result.top_k_overlap += overlap[i];
    result.mean_cosine += cosine[i];
  }
  result.top_k_overlap /= static_cast<double>(N);
  result.mean_cosine /= static_cast<double>(N);
  return result;
}

}  // namespace bertforge
