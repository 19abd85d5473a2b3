// quant/tokenwise_clipping.h — Token-Wise Clipping (Outlier Suppression, Wei et al. 2022, seed 003: Sec. 4.2 and
// Algorithm 1): the range [lo, hi] of a Linear's per-tensor asymmetric input quantization, chosen coarse to fine to
// minimise the Linear's output error on calibration tokens.
//
// Setting. y = x W^T + b with W (N,K); the input x (K) is fake-quantized at b bits with
// fq = ActivationQuantParams::from_range([lo, hi], b) (quant/activation_quant.h). On a sample of calibration
// tokens X (n,K) a range costs the output error (the paper's eq. 6; the bias cancels)
//   E(lo, hi) = || (fq(X) - X) W^T ||_F^2 = sum_{t < n, j < N} ((fq(X) - X) W^T)[t][j]^2.
// W may stack the weights of several Linears that read the same input (query, key and value: W = [Wq; Wk; Wv],
// (3C, C)); E is then the sum of their output errors. Every candidate range contains 0.
//
// 1. Coarse stage (eqs. 7-8). Per-token extremes over the calibration tokens t = 0 .. T-1:
//    m_t = max_k x_t[k], n_t = min_k x_t[k] (a TokenExtremes over ALL calibration tokens, or else the rows of X).
//    For each alpha of the quantile grid, in order:
//      [lo, hi](alpha) = [min(Q_{1-alpha}(n), 0), max(Q_alpha(m), 0)]
//    with Q_a(v) the linearly interpolated quantile of v sorted ascending: p = a (T - 1), i = floor(p),
//    Q_a = v[i] + (p - i) (v[i+1] - v[i]) (numpy's and torch.quantile's default). The alpha of least E is kept
//    (the first on ties). alpha = 1 is the min-max range, so with 1 in the grid coarse_error <= minmax_error.
//    Default grid: 1 - 0.01 k for k < 10 at 8 bits, k < 30 at 6-7 bits, k < 90 at 2-5 bits (the reference
//    implementation, wimh966/outlier_suppression token_wise_clipping.py: ratios 1 - 0.01 k, k < 0.1 / 0.3 / 0.9
//    divided by 0.01, at 8 / 6 / 4 bits; widths in between take the next lower width's, longer grid), plus 0.9999
//    and 0.999, in descending order. The reference takes its quantiles per batch of 32 x 128 tokens, so its first
//    step (0.99) clips ~41 tokens per batch; ours are over all calibration tokens, where 0.9999 and 0.999 let the
//    search clip only the rarest outlier tokens too. (It also snaps the quantile down to the nearest token
//    extreme and quantiles |m|, |n|: the same as here when m_t > 0 > n_t, up to the snap.)
// 2. Fine stage. The paper learns the step size from the coarse one by gradient descent (LSQ+, Adam, 3 epochs);
//    here a deterministic search on both ends instead: E is piecewise smooth with jumps where a value changes its
//    rounding, so its gradient needs a straight-through estimate and a learning rate, while a lattice search needs
//    neither, is reproducible, and cannot end worse than it starts. From the coarse range (lo_c, hi_c), round
//    r = 0 .. fine_rounds-1 searches the lattice (S = fine_steps, l_0 = ln(1 + fine_span) / S)
//      lo_i = clamp(lo_c e^{i l_r}, min_t n_t, 0),  hi_j = clamp(hi_c e^{j l_r}, 0, max_t m_t),  i, j = -S..S
//    by coordinate descent from (0, 0): E at the 2S other hi_j (lo fixed), move to the best if it lowers E; then
//    the lo_i likewise; alternating until a scan after the first does not move. The next round recentres
//    (lo_c, hi_c) on the best point with l_{r+1} = l_r 2 / S (its lattice spans +-2 old steps). Defaults S = 4,
//    fine_span 0.5, 4 rounds: each end scaled by up to 1.5 or 1/1.5 in steps of 10%, then 5%, 2.5%, 1.3%.
//    Only strict improvements are taken, so fine_error <= coarse_error; the lattice never leaves the min-max
//    range, and an end at 0 stays at 0 (it is scaled, not shifted). Each lattice is finite and every move
//    lowers E, so a round ends. Against a brute force over every quantizer (z = 0..Q, s on a dense grid): within
//    1.5% at 4 bits and 0.1% at 6 bits on 1024 x 64 activations with outlier tokens and channels (4 seeds); on
//    tiny samples (64 x 16, 12 seeds) E is noisy and the search, being local, can miss a distant basin: worst
//    15% at 4 bits, 2% at 6 and 8 bits (mean 2.9%, 0.5%, 0.0%); tests/quant/test_tokenwise_clipping.cpp checks
//    1.02x on one 64 x 16 case.
//
// Cost: one E per candidate, i.e. fake quantization of X and one GEMM (n,K) x (K,r), r = min(N, K): when N > K,
// E = ||D R^T||_F^2 with D = fq(X) - X and R (K,K) the Cholesky factor of W^T W (R^T R = W^T W, computed in
// double once), which is exactly ||D W^T||_F^2 (both are tr(D W^T W D^T)) for K/N of the work (a third for
// Q/K/V); W itself when N <= K or W^T W is not numerically positive definite. The sum of squares is ops/reduce.h's
// sum_of_squares (double within chunks, float across). Evaluations: 1 (min-max) + the grid + at most 2S per scan
// of the fine stage, 2-4 scans per round in practice. Memory: X, W (or R), and two (n,K) and one (n,r) f32
// temporaries. X and W may live on any device (both on the same one): the fake quantization, the GEMM and the sum
// run there (the validation and R are computed on the host; tested on the CPU).
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/tensor.h"
#include "quant/activation_quant.h"

namespace bertforge::quant {

// Per-token maximum and minimum over the input channels of every real token observed: the coarse stage's m_t and
// n_t over all calibration tokens, at 2 floats per token. A row holding a NaN records NaN for both;
// tokenwise_clipping rejects non-finite extremes.
class TokenExtremes {
 public:
  explicit TokenExtremes(int64_t channels);  // K >= 1

  // x F32 (..., K) (any device, any strides); mask of x's leading shape (B,T) with 0 and 1 (any dtype), or
  // undefined (every row counts). Padding rows (mask 0) are skipped.
  void observe(const Tensor& x, const Tensor& mask = Tensor());

  int64_t channels() const { return channels_; }
  int64_t tokens() const { return static_cast<int64_t>(maxima_.size()); }
  const std::vector<float>& maxima() const { return maxima_; }  // (tokens) m_t, in observation order
  const std::vector<float>& minima() const { return minima_; }  // (tokens) n_t

 private:
  int64_t channels_;
  std::vector<float> maxima_, minima_;
};

struct TokenwiseClippingOptions {
  int bits = 8;                    // activation bits, 2..8
  std::vector<double> quantiles;   // the coarse grid, each alpha in (0, 1]; empty: default_clipping_quantiles(bits)
  int fine_rounds = 4;             // >= 0; 0 = the coarse stage only (the paper's "Token-Wise Clipping (Coarse)")
  int fine_steps = 4;              // S >= 1: lattice points on each side of the centre, per end
  double fine_span = 0.5;          // > 0: the first round scales each end by 1 + fine_span or its inverse at most

  // InvalidArgument naming the bad field.
  absl::Status validate() const;
};

// Errors are E (file comment): sums of squares over the n x N outputs of the sample (divide by n N for an MSE).
struct TokenwiseClippingResult {
  ActivationRange range;                 // the fine stage's range: what to quantize with
  ActivationQuantParams params;          // from_range(range, bits)
  ActivationRange minmax_range;          // [min_t n_t, max_t m_t] widened to contain 0
  ActivationRange coarse_range;          // the coarse stage's range
  double coarse_quantile = 1.0;          // its alpha
  std::vector<double> quantiles;         // the grid evaluated, in order
  std::vector<double> coarse_errors;     // E of each grid candidate
  double minmax_error = 0, coarse_error = 0, fine_error = 0;
  int64_t sample_tokens = 0;             // n: the rows E is measured on
  int64_t calibration_tokens = 0;        // T: the tokens the quantiles come from
  int64_t evaluations = 0;               // of E, all stages
};

// The default coarse grid at `bits` (2..8), descending (file comment).
std::vector<double> default_clipping_quantiles(int bits);

// Q_q(sorted), q in [0, 1], sorted ascending and non-empty: the linearly interpolated quantile (file comment).
double sorted_quantile(const std::vector<float>& sorted, double q);

// X F32 (n,K): sampled calibration tokens (rows of real tokens: a uniform sample of the tokens `extremes`
// covers, such as AwqInputStatistics' reservoir, so that outlier tokens appear in proportion); W F32 (N,K), on
// X's device; extremes over all calibration tokens with K channels. InvalidArgument for bad options, shapes,
// dtypes, an empty X or extremes, or non-finite X, W or extremes.
absl::StatusOr<TokenwiseClippingResult> tokenwise_clipping(const Tensor& X, const Tensor& W,
                                                           const TokenExtremes& extremes,
                                                           const TokenwiseClippingOptions& options);
// The same with the extremes of X's own rows.
absl::StatusOr<TokenwiseClippingResult> tokenwise_clipping(const Tensor& X, const Tensor& W,
                                                           const TokenwiseClippingOptions& options);

// E of `range` (used as given: from_range(range, bits)) on X (n,K) for W (N,K), computed as tokenwise_clipping
// computes it. InvalidArgument as above, or for bits outside [2, 8] or a range that is not finite with min <= max.
absl::StatusOr<double> clipping_output_error(const Tensor& X, const Tensor& W, const ActivationRange& range, int bits);

}  // namespace bertforge::quant
