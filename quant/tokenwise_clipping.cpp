// quant/tokenwise_clipping.cpp — Token-Wise Clipping: per-token extremes, the coarse quantile grid, the fine
// lattice search, and the output error they minimise (see tokenwise_clipping.h for the algorithm).
#include "quant/tokenwise_clipping.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "autograd/grad_mode.h"
#include "core/check.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "ops/reduce.h"
#include "quant/awq_statistics.h"

namespace bertforge::quant {
namespace {

bool all_finite(const std::vector<float>& v) {
  return std::all_of(v.begin(), v.end(), [](float x) { return std::isfinite(x); });
}

ActivationRange containing_zero(double lo, double hi) {
  return {static_cast<float>(std::min(lo, 0.0)), static_cast<float>(std::max(hi, 0.0))};
}

// Checks X (n,K) and W (N,K) (file comment of the header); `what` names the caller.
absl::Status validate_operands(const Tensor& X, const Tensor& W, const char* what) {
  if (!X.defined() || !W.defined()) return absl::InvalidArgumentError(absl::StrCat(what, ": X and W must be defined"));
  if (X.dtype() != DType::kF32 || W.dtype() != DType::kF32 || X.dim() != 2 || W.dim() != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": X must be f32 (n,K) and W f32 (N,K), got X ", X.str(), ", W ", W.str()));
  }
  if (X.size(0) < 1 || X.size(1) < 1 || W.size(0) < 1) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": X ", X.shape_str(), " and W ", W.shape_str(),
                                                   " must not be empty"));
  }
  if (W.size(1) != X.size(1)) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": W ", W.shape_str(), " does not take the ", X.size(1),
                                                   " input channels of X ", X.shape_str()));
  }
  if (!(X.device() == W.device())) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": X is on ", X.device().str(), ", W on ", W.device().str()));
  }
  if (!all_finite(X.to_float_vector())) return absl::InvalidArgumentError(absl::StrCat(what, ": X holds NaN or inf"));
  if (!all_finite(W.to_float_vector())) return absl::InvalidArgumentError(absl::StrCat(what, ": W holds NaN or inf"));
  return absl::OkStatus();
}

absl::Status validate_bits(int bits) {
  if (bits < 2 || bits > 8) {
    return absl::InvalidArgumentError(absl::StrCat("token-wise clipping: bits must be in [2, 8], got ", bits));
  }
  return absl::OkStatus();
}

// F with F^T F = W^T W and min(N, K) rows: when N > K and W^T W is positive definite beyond rounding, its
// upper-triangular Cholesky factor U (U^T U = W^T W; in double, then f32), else W. Then ||D F^T||_F = ||D W^T||_F
// for every D (n,K): both squared are tr(D W^T W D^T).
Tensor error_factor(const Tensor& W) {
  const int64_t N = W.size(0), K = W.size(1);
  if (N <= K) return W;
  const std::vector<float> w = W.to_float_vector();
  const size_t k_size = static_cast<size_t>(K);
  std::vector<double> g(k_size * k_size, 0.0);  // upper triangle of G = W^T W, row-major
  for (int64_t r = 0; r < N; ++r) {
    const float* row = w.data() + static_cast<size_t>(r) * k_size;
    for (size_t i = 0; i < k_size; ++i) {
      const double wi = row[i];
      double* gi = g.data() + i * k_size;
      for (size_t j = i; j < k_size; ++j) gi[j] += wi * row[j];
    }
  }
  // Row i of U (upper triangular, U^T U = G) in place of G's row i: U_ii = sqrt(G_ii - sum_{k<i} U_ki^2),
  // U_ij = (G_ij - sum_{k<i} U_ki U_kj) / U_ii, as right-looking updates of the rows below.
  double max_diagonal = 0.0;
  for (size_t i = 0; i < k_size; ++i) max_diagonal = std::max(max_diagonal, g[i * k_size + i]);
  const double tiny = static_cast<double>(K) * std::numeric_limits<double>::epsilon() * max_diagonal;
  for (size_t i = 0; i < k_size; ++i) {
    double* ui = g.data() + i * k_size;
    if (!(ui[i] > tiny)) return W;  // singular (rank < K) or indefinite by rounding
    const double pivot = std::sqrt(ui[i]);
    for (size_t j = i; j < k_size; ++j) ui[j] /= pivot;
    for (size_t k = i + 1; k < k_size; ++k) {
      double* gk = g.data() + k * k_size;
      const double uik = ui[k];
      for (size_t j = k; j < k_size; ++j) gk[j] -= uik * ui[j];
    }
  }
  std::vector<float> f(k_size * k_size, 0.0f);  // F = U: F^T F = G
  for (size_t i = 0; i < k_size; ++i) {
    for (size_t j = i; j < k_size; ++j) f[i * k_size + j] = static_cast<float>(g[i * k_size + j]);
  }
  return Tensor::from_vector(f, {K, K}).to(W.device());
}

// E(range) on X for the factor F of W (error_factor), counting its evaluations.
class OutputError {
 public:
  OutputError(const Tensor& X, const Tensor& W, int bits) : X_(X.contiguous()), F_(error_factor(W)), bits_(bits) {}

  double operator()(const ActivationRange& range) {
    ++evaluations_;
    const Tensor D = sub(fake_quantize_activation(X_, ActivationQuantParams::from_range(range, bits_)), X_);
    return static_cast<double>(sum_of_squares({matmul(D, F_, /*trans_a=*/false, /*trans_b=*/true)}).item<float>());
  }
  int64_t evaluations() const { return evaluations_; }

 private:
  Tensor X_, F_;
  int bits_;
  int64_t evaluations_ = 0;
};

// One end's lattice in a round: clamp(centre e^{k l}, lo, hi) for k = -S..S; index S is the centre itself.
std::vector<float> lattice(float centre, double l, int S, double lo, double hi) {
  std::vector<float> values;
  for (int k = -S; k <= S; ++k) {
    values.push_back(k == 0 ? centre : static_cast<float>(std::clamp(centre * std::exp(k * l), lo, hi)));
  }
  return values;
}

// The fine stage (header, step 2): the best range and its error, starting from the coarse ones.
std::pair<ActivationRange, double> fine_search(OutputError& error, ActivationRange range, double best,
                                               const ActivationRange& limits, const TokenwiseClippingOptions& o) {
  const int S = o.fine_steps;
  double l = std::log1p(o.fine_span) / S;
  for (int round = 0; round < o.fine_rounds; ++round, l *= 2.0 / S) {
    const std::vector<float> los = lattice(range.min, l, S, limits.min, 0.0);
    const std::vector<float> his = lattice(range.max, l, S, 0.0, limits.max);
    int i = S, j = S;  // the current point (los[i], his[j])
    // Moves one end to its best lattice value at the other's current one if that lowers E; true when it moved.
    // The lattices are monotone, so clamped duplicates are adjacent and evaluated once.
    const auto scan = [&](bool high) {
      const std::vector<float>& values = high ? his : los;
      int& at = high ? j : i;
      int best_at = at;
      for (int k = 0; k <= 2 * S; ++k) {
        if (values[k] == values[at] || (k > 0 && values[k] == values[k - 1])) continue;
        const double e = error(high ? ActivationRange{los[i], values[k]} : ActivationRange{values[k], his[j]});
        if (e < best) {
          best = e;
          best_at = k;
        }
      }
      const bool moved = best_at != at;
      at = best_at;
      return moved;
    };
    // hi, lo, hi, ... until a scan after the first does not move: the other end was scanned at this point last.
    bool high = true;
    for (int scans = 0;; ++scans, high = !high) {
      if (!scan(high) && scans > 0) break;
    }
    range = {los[i], his[j]};
  }
  return {range, best};
}

}  // namespace

TokenExtremes::TokenExtremes(int64_t channels) : channels_(channels) {
  BF_CHECK(channels >= 1, "TokenExtremes: channels must be >= 1, got ", channels);
}

void TokenExtremes::observe(const Tensor& x, const Tensor& mask) {
  for_each_real_token(x, mask, channels_, "TokenExtremes", [&](const float* row) {
    if (std::any_of(row, row + channels_, [](float v) { return std::isnan(v); })) {
      maxima_.push_back(std::numeric_limits<float>::quiet_NaN());
      minima_.push_back(std::numeric_limits<float>::quiet_NaN());
      return;
    }
    const auto [lo, hi] = std::minmax_element(row, row + channels_);
    maxima_.push_back(*hi);
    minima_.push_back(*lo);
  });
}

absl::Status TokenwiseClippingOptions::validate() const {
  BF_RETURN_IF_ERROR(validate_bits(bits));
  for (double q : quantiles) {
    if (!(q > 0.0 && q <= 1.0)) {
      return absl::InvalidArgumentError(absl::StrCat("token-wise clipping: quantiles must be in (0, 1], got ", q));
    }
  }
  if (fine_rounds < 0) {
    return absl::InvalidArgumentError(absl::StrCat("token-wise clipping: fine_rounds must be >= 0, got ", fine_rounds));
  }
  if (fine_steps < 1) {
    return absl::InvalidArgumentError(absl::StrCat("token-wise clipping: fine_steps must be >= 1, got ", fine_steps));
  }
  if (!(fine_span > 0.0 && std::isfinite(fine_span))) {
    return absl::InvalidArgumentError(absl::StrCat("token-wise clipping: fine_span must be > 0, got ", fine_span));
  }
  return absl::OkStatus();
}

std::vector<double> default_clipping_quantiles(int bits) {
  BF_CHECK(bits >= 2 && bits <= 8, "default_clipping_quantiles: bits must be in [2, 8], got ", bits);
  const int count = bits >= 8 ? 10 : bits >= 6 ? 30 : 90;
  std::vector<double> grid = {1.0, 0.9999, 0.999};
  for (int k = 1; k < count; ++k) grid.push_back(1.0 - 0.01 * k);
  return grid;
}

double sorted_quantile(const std::vector<float>& sorted, double q) {
  BF_CHECK(!sorted.empty() && q >= 0.0 && q <= 1.0, "sorted_quantile: needs values and q in [0, 1], got ",
           sorted.size(), " values, q ", q);
  const double position = q * static_cast<double>(sorted.size() - 1);
  const size_t i = std::min(static_cast<size_t>(position), sorted.size() - 1);
  if (i + 1 == sorted.size()) return sorted[i];
  return sorted[i] + (position - static_cast<double>(i)) * (static_cast<double>(sorted[i + 1]) - sorted[i]);
}

absl::StatusOr<TokenwiseClippingResult> tokenwise_clipping(const Tensor& X, const Tensor& W,
                                                           const TokenExtremes& extremes,
                                                           const TokenwiseClippingOptions& options) {
  BF_RETURN_IF_ERROR(options.validate());
  BF_RETURN_IF_ERROR(validate_operands(X, W, "token-wise clipping"));
  if (extremes.channels() != X.size(1) || extremes.tokens() < 1) {
    return absl::InvalidArgumentError(absl::StrCat("token-wise clipping: the token extremes (", extremes.tokens(),
                                                   " tokens of ", extremes.channels(), " channels) do not fit X ",
                                                   X.shape_str()));
  }
  if (!all_finite(extremes.maxima()) || !all_finite(extremes.minima())) {
    return absl::InvalidArgumentError("token-wise clipping: the token extremes hold NaN or inf (a calibration "
                                      "activation was not finite)");
  }
  autograd::NoGradGuard no_grad;
  TokenwiseClippingResult result;
  result.quantiles = options.quantiles.empty() ? default_clipping_quantiles(options.bits) : options.quantiles;
  result.sample_tokens = X.size(0);
  result.calibration_tokens = extremes.tokens();
  OutputError error(X.detach(), W.detach(), options.bits);

  std::vector<float> maxima = extremes.maxima(), minima = extremes.minima();
  std::sort(maxima.begin(), maxima.end());
  std::sort(minima.begin(), minima.end());
  result.minmax_range = containing_zero(minima.front(), maxima.back());
  result.minmax_error = error(result.minmax_range);

  // Coarse stage: the quantile grid, the first least error wins.
  for (double alpha : result.quantiles) {
    const ActivationRange candidate =
        containing_zero(sorted_quantile(minima, 1.0 - alpha), sorted_quantile(maxima, alpha));
    const double e = error(candidate);
    result.coarse_errors.push_back(e);
    if (result.coarse_errors.size() == 1 || e < result.coarse_error) {
      result.coarse_error = e;
      result.coarse_range = candidate;
      result.coarse_quantile = alpha;
    }
  }

  // Fine stage: the lattice search inside the min-max range.
  std::tie(result.range, result.fine_error) =
      fine_search(error, result.coarse_range, result.coarse_error, result.minmax_range, options);
  result.params = ActivationQuantParams::from_range(result.range, options.bits);
  result.evaluations = error.evaluations();
  return result;
}

absl::StatusOr<TokenwiseClippingResult> tokenwise_clipping(const Tensor& X, const Tensor& W,
                                                           const TokenwiseClippingOptions& options) {
  BF_RETURN_IF_ERROR(validate_operands(X, W, "token-wise clipping"));
  TokenExtremes extremes(X.size(1));
  extremes.observe(X);
  return tokenwise_clipping(X, W, extremes, options);
}

absl::StatusOr<double> clipping_output_error(const Tensor& X, const Tensor& W, const ActivationRange& range, int bits) {
  BF_RETURN_IF_ERROR(validate_bits(bits));
  BF_RETURN_IF_ERROR(validate_operands(X, W, "clipping_output_error"));
  if (!(std::isfinite(range.min) && std::isfinite(range.max) && range.min <= range.max)) {
    return absl::InvalidArgumentError(absl::StrCat("clipping_output_error: the range [", range.min, ", ", range.max,
                                                   "] must be finite with min <= max"));
  }
  autograd::NoGradGuard no_grad;
  OutputError error(X.detach(), W.detach(), bits);
  return error(range);
}

}  // namespace bertforge::quant
