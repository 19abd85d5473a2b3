// Activation observers: streaming estimators of the range [a_min, a_max] that asymmetric activation
// quantization (quant/activation_quant.h) maps onto its 2^b codes. Calibration feeds one observer per tap
// point with batch after batch; an observer's memory does not grow with the number of batches.
//
//   MinMax         [min, max] over everything observed, exactly.
//   RunningMinMax  per batch m_t = min(batch t), M_t = max(batch t); the first batch sets r_1 = (m_1, M_1),
//                  then r_t = momentum r_{t-1} + (1 - momentum) (m_t, M_t)  (momentum 0.9 by default).
//   Percentile     [quantile(1 - p/100), quantile(p/100)] of everything observed, read from a streaming
//                  histogram (below); within one bin width of the exact sample quantiles.
//   Mse            the range that minimises the expected fake-quantization MSE at `bits`, searched over a grid of
//                  shrink factors of the observed range, with the error read from the streaming histogram.
//
// Non-finite values (NaN, +-inf) are ignored by every observer. Observed tensors may have any shape, dtype
// and device (non-f32 or device tensors are copied to host f32 first).
//
// Streaming histogram. `bins` (even) equal bins over [lo, lo + bins w). The first batch sets lo = its min and
// w = (max - min) / bins. A later value outside the histogram doubles w, merging bin pairs, anchored at the
// end that does not move (lo when growing upwards, lo + bins w when growing downwards), until every value
// fits; merging pairs keeps every count exact. Resolution: the width W = bins w stays below 4 (max - min) of
// the data seen (W = max - min until the first growth; each doubling was forced by data beyond the old
// histogram, and the opposite end lies within a quarter of W of data), so a quantile is exact to
// bin_width() < 4 (max - min) / bins (2048 bins by default: better than (max - min) / 512).
//
// MSE search. Candidates shrink the observed range towards an anchor a = clamp(0, min, max) (0 when the range
// straddles it, else its end nearest 0): [a - i/G (a - min), a + j/G (max - a)] for i, j = G..1 (G = mse_grid).
// The error of a candidate (scale s, grid ends g_lo, g_hi) is estimated from the histogram with each bin's
// count spread evenly over the bin, in two steps:
//   quick     O(1) per candidate from prefix sums: bins whose centre lies in [g_lo, g_hi] cost s^2/12 (uniform
//             rounding noise), the others (x - g)^2 + w^2/12 (clamped to the nearest end g); every candidate
//             is ranked by it;
//   per bin   the squared error integrated exactly over each bin (clamping outside the grid, the rounding
//             sawtooth inside), O(bins); it picks the winner among the 32 best of the quick ranking. It matters
//             where the density is far from flat at the scale of s (a spike at 0, a 1/sqrt(x) edge).
// Ties keep the earlier (wider) candidate.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/tensor.h"
#include "quant/activation_quant.h"

namespace bertforge {

enum class ObserverKind { kMinMax, kRunningMinMax, kPercentile, kMse };

// "minmax", "running_minmax", "percentile", "mse".
const char* observer_kind_name(ObserverKind kind);
absl::StatusOr<ObserverKind> parse_observer_kind(absl::string_view name);

struct ObserverOptions {
  ObserverKind kind = ObserverKind::kMinMax;
  double momentum = 0.9;      // RunningMinMax, in [0, 1)
  double percentile = 99.99;  // Percentile, in (50, 100]
  int bits = 8;               // Mse: the bit width the range is chosen for
  int64_t bins = 2048;        // Percentile, Mse: histogram bins, even, >= 2
  int64_t mse_grid = 100;     // Mse: G, steps of each shrink factor

  absl::Status validate() const;
};

// The finite min and max of n floats (OpenMP); min > max when none is finite.
ActivationRange finite_min_max(const float* data, int64_t n);

// ---- Streaming histogram ------------------------------------------------------------------------------------

class StreamingHistogram {
 public:
  explicit StreamingHistogram(int64_t bins = 2048);

  // Adds n values (non-finite ones are skipped), growing the histogram first if they fall outside.
  void add(const float* data, int64_t n);

  bool empty() const { return total_ == 0; }
  double total() const { return total_; }                     // finite values added
  float data_min() const { return data_min_; }                // exact extremes of the values added
  float data_max() const { return data_max_; }
  double lo() const { return lo_; }                           // the histogram covers [lo, lo + bins w)
  double bin_width() const { return width_; }                 // w
  const std::vector<double>& counts() const { return counts_; }

  // The q-quantile, q in [0, 1], of the values added: the value of rank q * total, linearly interpolated
  // inside its bin and clamped to [data_min, data_max]; within bin_width() of the exact order statistic.
  double quantile(double q) const;

 private:
  void grow_to_cover(double min, double max);

  std::vector<double> counts_;
  double lo_ = 0.0, width_ = 0.0, total_ = 0.0;
  float data_min_ = 0.0f, data_max_ = 0.0f;
};

// The candidate ranges of the MSE search for an observed range, in search order (file comment).
std::vector<ActivationRange> mse_candidate_ranges(const ActivationRange& observed, int64_t grid);
// The expected fake-quantization MSE of the histogram's data under `range` at `bits`: the per-bin model.
double histogram_quantization_mse(const StreamingHistogram& histogram, const ActivationRange& range, int bits);
// The candidate chosen by the two-step search (file comment).
ActivationRange mse_search(const StreamingHistogram& histogram, int bits, int64_t grid);

// ---- Observers ----------------------------------------------------------------------------------------------

class Observer {
 public:
  virtual ~Observer() = default;
  // x: one batch of the activation, any shape.
  void observe(const Tensor& x);
  // n contiguous floats: one batch.
  virtual void observe(const float* data, int64_t n) = 0;
  // Whether a finite value has been observed.
  virtual bool has_data() const = 0;
  // The calibrated range; needs has_data().
  virtual ActivationRange range() const = 0;
};

class MinMaxObserver : public Observer {
 public:
  using Observer::observe;
  void observe(const float* data, int64_t n) override;
  bool has_data() const override { return seen_; }
  ActivationRange range() const override;

 private:
  bool seen_ = false;
  ActivationRange range_;
};

class RunningMinMaxObserver : public Observer {
 public:
  explicit RunningMinMaxObserver(double momentum = 0.9);
  using Observer::observe;
  // A batch with no finite value leaves the running range unchanged.
  void observe(const float* data, int64_t n) override;
  bool has_data() const override { return seen_; }
  ActivationRange range() const override;

 private:
  double momentum_;
  bool seen_ = false;
  double min_ = 0.0, max_ = 0.0;
};

class PercentileObserver : public Observer {
 public:
  explicit PercentileObserver(double percentile = 99.99, int64_t bins = 2048);
  using Observer::observe;
  void observe(const float* data, int64_t n) override { histogram_.add(data, n); }
  bool has_data() const override { return !histogram_.empty(); }
  ActivationRange range() const override;
  const StreamingHistogram& histogram() const { return histogram_; }

 private:
  double percentile_;
  StreamingHistogram histogram_;
};

class MseObserver : public Observer {
 public:
  explicit MseObserver(int bits = 8, int64_t bins = 2048, int64_t grid = 100);
  using Observer::observe;
  void observe(const float* data, int64_t n) override { histogram_.add(data, n); }
  bool has_data() const override { return !histogram_.empty(); }
  ActivationRange range() const override;  // runs the search
  const StreamingHistogram& histogram() const { return histogram_; }

 private:
  int bits_;
  int64_t grid_;
  StreamingHistogram histogram_;
};

// A fresh observer of options.kind; options must be valid (validate()).
std::unique_ptr<Observer> make_observer(const ObserverOptions& options);

}  // namespace bertforge
