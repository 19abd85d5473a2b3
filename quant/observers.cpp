// Activation observers (min-max, running min-max, percentile, MSE search) and their streaming histogram
// (see observers.h).
#include "quant/observers.h"

#include <omp.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/check.h"

namespace bertforge {

const char* observer_kind_name(ObserverKind kind) {
  switch (kind) {
    case ObserverKind::kMinMax: return "minmax";
    case ObserverKind::kRunningMinMax: return "running_minmax";
    case ObserverKind::kPercentile: return "percentile";
    case ObserverKind::kMse: return "mse";
  }
  return "unknown";
}

absl::StatusOr<ObserverKind> parse_observer_kind(absl::string_view name) {
  for (ObserverKind kind :
       {ObserverKind::kMinMax, ObserverKind::kRunningMinMax, ObserverKind::kPercentile, ObserverKind::kMse}) {
    if (name == observer_kind_name(kind)) return kind;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown observer '", name, "' (minmax, running_minmax, percentile, mse)"));
}

absl::Status ObserverOptions::validate() const {
  if (!(momentum >= 0.0 && momentum < 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat("observer momentum must be in [0, 1), got ", momentum));
  }
  if (!(percentile > 50.0 && percentile <= 100.0)) {
    return absl::InvalidArgumentError(absl::StrCat("observer percentile must be in (50, 100], got ", percentile));
  }
  if (bits < 2 || bits > 16) return absl::InvalidArgumentError(absl::StrCat("bits must be in [2, 16], got ", bits));
  if (bins < 2 || bins % 2 != 0) {
    return absl::InvalidArgumentError(absl::StrCat("histogram bins must be even and >= 2, got ", bins));
  }
  if (mse_grid < 1) return absl::InvalidArgumentError(absl::StrCat("mse_grid must be >= 1, got ", mse_grid));
  return absl::OkStatus();
}

ActivationRange finite_min_max(const float* data, int64_t n) {
  float lo = std::numeric_limits<float>::infinity();
  float hi = -std::numeric_limits<float>::infinity();
#pragma omp parallel for simd reduction(min : lo) reduction(max : hi) if (n > (1 << 17))
  for (int64_t i = 0; i < n; ++i) {
    const float v = data[i];
    const bool finite = std::fabs(v) <= FLT_MAX;  // false for NaN and +-inf
    lo = finite && v < lo ? v : lo;
    hi = finite && v > hi ? v : hi;
  }
  return {lo, hi};
}

// ---- Streaming histogram ------------------------------------------------------------------------------------

StreamingHistogram::StreamingHistogram(int64_t bins) : counts_(bins, 0.0) {
  BF_CHECK(bins >= 2 && bins % 2 == 0, "StreamingHistogram: bins must be even and >= 2, got ", bins);
}

void StreamingHistogram::grow_to_cover(double min, double max) {
  const auto bins = static_cast<int64_t>(counts_.size());
  const int64_t half = bins / 2;
  while (min < lo_ || max > lo_ + static_cast<double>(bins) * width_) {
    std::vector<double> merged(bins, 0.0);
    // Upwards: lo stays and old bins 2j, 2j+1 become bin j. Downwards: the top end stays, they become half + j.
    const int64_t first = max > lo_ + static_cast<double>(bins) * width_ ? 0 : half;
    for (int64_t j = 0; j < half; ++j) merged[first + j] = counts_[2 * j] + counts_[2 * j + 1];
    if (first == half) lo_ -= static_cast<double>(bins) * width_;
    width_ *= 2.0;
    counts_.swap(merged);
  }
}

void StreamingHistogram::add(const float* data, int64_t n) {
  const ActivationRange batch = finite_min_max(data, n);
  if (batch.min > batch.max) return;  // nothing finite
  const auto bins = static_cast<int64_t>(counts_.size());
  if (total_ == 0) {
    lo_ = batch.min;
    width_ = (static_cast<double>(batch.max) - batch.min) / static_cast<double>(bins);
    // A constant first batch: a narrow histogram around it, which later batches grow.
    if (width_ == 0.0) width_ = std::max(std::fabs(static_cast<double>(batch.min)), 1e-30) * 0x1p-20 / bins;
    data_min_ = batch.min;
    data_max_ = batch.max;
  } else {
    grow_to_cover(batch.min, batch.max);
    data_min_ = std::min(data_min_, batch.min);
    data_max_ = std::max(data_max_, batch.max);
  }
  // Per-thread histograms, summed at the end.
  const double lo = lo_, inv_width = 1.0 / width_;
  const bool parallel = n > (1 << 16);
  const int threads = parallel ? omp_get_max_threads() : 1;
  std::vector<int64_t> local(static_cast<size_t>(threads) * bins, 0);
#pragma omp parallel num_threads(threads) if (parallel)
  {
    int64_t* h = local.data() + static_cast<int64_t>(omp_get_thread_num()) * bins;
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const float v = data[i];
      if (!(std::fabs(v) <= FLT_MAX)) continue;
      const auto b = static_cast<int64_t>((static_cast<double>(v) - lo) * inv_width);
      ++h[std::min(std::max(b, int64_t{0}), bins - 1)];
    }
  }
  for (int t = 0; t < threads; ++t) {
    const int64_t* h = local.data() + static_cast<int64_t>(t) * bins;
    for (int64_t b = 0; b < bins; ++b) {
      counts_[b] += static_cast<double>(h[b]);
      total_ += static_cast<double>(h[b]);
    }
  }
}

double StreamingHistogram::quantile(double q) const {
  BF_CHECK(!empty(), "StreamingHistogram::quantile of an empty histogram");
  BF_CHECK(q >= 0.0 && q <= 1.0, "StreamingHistogram::quantile: q must be in [0, 1], got ", q);
  const double target = q * total_;
  double cumulative = 0.0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    const double c = counts_[i];
    if (c > 0.0 && cumulative + c >= target) {
      const double x = lo_ + (static_cast<double>(i) + (target - cumulative) / c) * width_;
      return std::min(std::max(x, static_cast<double>(data_min_)), static_cast<double>(data_max_));
    }
    cumulative += c;
  }
  return data_max_;
}

// ---- MSE search ---------------------------------------------------------------------------------------------

namespace {

// The candidate's grid: scale s and its ends; every grid point is a multiple of s.
struct Grid {
  double s, lo, hi;
  Grid(const ActivationRange& range, int bits) {
    const ActivationQuantParams p = ActivationQuantParams::from_range(range, bits);
    s = p.scale;
    lo = p.grid_min();
    hi = p.grid_max();
  }
};

// The quick error model, O(1) per candidate from prefix sums over the bins of count, count u and count u^2
// (u = i + 0.5, the bin centre in bin units): uniform rounding noise s^2/12 for the bins whose centre lies on
// the grid's span, clamping error (x - g)^2 + w^2/12 for the others.
class QuickMse {
 public:
  explicit QuickMse(const StreamingHistogram& h) : h_(h) {
    const std::vector<double>& c = h.counts();
    p0_.assign(c.size() + 1, 0.0);
    p1_.assign(c.size() + 1, 0.0);
    p2_.assign(c.size() + 1, 0.0);
    for (size_t i = 0; i < c.size(); ++i) {
      const double u = static_cast<double>(i) + 0.5;
      p0_[i + 1] = p0_[i] + c[i];
      p1_[i + 1] = p1_[i] + c[i] * u;
      p2_[i + 1] = p2_[i] + c[i] * u * u;
    }
  }

  double mse(const Grid& g) const {
    const size_t n = h_.counts().size();
    const double w = h_.bin_width();
    const double a = (g.lo - h_.lo()) / w, b = (g.hi - h_.lo()) / w;  // the grid's ends in bin units
    // Bins [0, k_lo) have their centre below a, bins [k_hi, n) above b.
    const auto k_lo = static_cast<size_t>(std::min(std::max(std::ceil(a - 0.5), 0.0), static_cast<double>(n)));
    const auto k_hi =
        static_cast<size_t>(std::min(std::max(std::floor(b - 0.5) + 1.0, 0.0), static_cast<double>(n)));
    const double below = p2_[k_lo] - 2.0 * a * p1_[k_lo] + a * a * p0_[k_lo] + p0_[k_lo] / 12.0;
    const double c_above = p0_[n] - p0_[k_hi];
    const double above = (p2_[n] - p2_[k_hi]) - 2.0 * b * (p1_[n] - p1_[k_hi]) + b * b * c_above + c_above / 12.0;
    const double inside = k_hi > k_lo ? p0_[k_hi] - p0_[k_lo] : 0.0;
    return ((below + above) * w * w + inside * g.s * g.s / 12.0) / h_.total();
  }

 private:
  const StreamingHistogram& h_;
  std::vector<double> p0_, p1_, p2_;
};

// The integral over [0, x] of e(t)^2, e(t) = t - round(t / s) s the rounding error on the grid s Z: whole
// periods give s^3/12 each; inside a period, r^3/3 up to s/2, then s^3/24 + ((r - s)^3 + s^3/8) / 3.
double rounding_error_integral(double x, double s) {
  const double k = std::floor(x / s);
  const double r = x - k * s;
  const double part =
      r <= 0.5 * s ? r * r * r / 3.0 : s * s * s / 24.0 + ((r - s) * (r - s) * (r - s) + s * s * s / 8.0) / 3.0;
  return k * s * s * s / 12.0 + part;
}

// The per-bin error model: each bin's count spread evenly over the bin, the squared error of fake quantization
// (clamping to the grid's ends outside them, the rounding sawtooth between) integrated exactly. O(bins).
double per_bin_mse(const StreamingHistogram& h, const Grid& g) {
  const std::vector<double>& counts = h.counts();
  const double w = h.bin_width();
  double sum = 0.0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] == 0.0) continue;
    const double a = h.lo() + static_cast<double>(i) * w, b = a + w;
    double integral = 0.0;
    if (a < g.lo) {  // (t - g.lo)^2 below the grid
      const double top = std::min(b, g.lo);
      integral += ((top - g.lo) * (top - g.lo) * (top - g.lo) - (a - g.lo) * (a - g.lo) * (a - g.lo)) / 3.0;
    }
    if (b > g.hi) {  // (t - g.hi)^2 above it
      const double bottom = std::max(a, g.hi);
      integral += ((b - g.hi) * (b - g.hi) * (b - g.hi) - (bottom - g.hi) * (bottom - g.hi) * (bottom - g.hi)) / 3.0;
    }
    const double in_lo = std::max(a, g.lo), in_hi = std::min(b, g.hi);
    if (in_hi > in_lo) integral += rounding_error_integral(in_hi, g.s) - rounding_error_integral(in_lo, g.s);
    sum += counts[i] * integral / w;
  }
  return sum / h.total();
}

constexpr size_t kRerankedCandidates = 32;

}  // namespace

std::vector<ActivationRange> mse_candidate_ranges(const ActivationRange& observed, int64_t grid) {
  BF_CHECK(grid >= 1 && observed.min <= observed.max, "mse_candidate_ranges: grid ", grid, ", range [",
           observed.min, ", ", observed.max, "]");
  const double lo = observed.min, hi = observed.max;
  const double anchor = std::min(std::max(0.0, lo), hi);
  // A side with nothing to shrink has one candidate.
  const int64_t lo_steps = anchor > lo ? grid : 1, hi_steps = hi > anchor ? grid : 1;
  std::vector<ActivationRange> candidates;
  candidates.reserve(lo_steps * hi_steps);
  for (int64_t i = lo_steps; i >= 1; --i) {
    const float c_lo = i == lo_steps ? observed.min
                                     : static_cast<float>(anchor - static_cast<double>(i) / grid * (anchor - lo));
    for (int64_t j = hi_steps; j >= 1; --j) {
      const float c_hi = j == hi_steps ? observed.max
                                       : static_cast<float>(anchor + static_cast<double>(j) / grid * (hi - anchor));
      candidates.push_back({c_lo, c_hi});
    }
  }
  return candidates;
}

double histogram_quantization_mse(const StreamingHistogram& histogram, const ActivationRange& range, int bits) {
  BF_CHECK(!histogram.empty(), "histogram_quantization_mse of an empty histogram");
  return per_bin_mse(histogram, Grid(range, bits));
}

ActivationRange mse_search(const StreamingHistogram& histogram, int bits, int64_t grid) {
  BF_CHECK(!histogram.empty(), "mse_search on an empty histogram");
  const std::vector<ActivationRange> candidates =
      mse_candidate_ranges({histogram.data_min(), histogram.data_max()}, grid);
  // Rank every candidate by the quick model, then decide among the best few with the per-bin model.
  const QuickMse quick(histogram);
  std::vector<std::pair<double, size_t>> ranked(candidates.size());
  for (size_t c = 0; c < candidates.size(); ++c) ranked[c] = {quick.mse(Grid(candidates[c], bits)), c};
  const size_t kept = std::min(kRerankedCandidates, ranked.size());
  std::partial_sort(ranked.begin(), ranked.begin() + kept, ranked.end());
  size_t best = ranked[0].second;
  double best_mse = std::numeric_limits<double>::infinity();
  for (size_t k = 0; k < kept; ++k) {
    const size_t c = ranked[k].second;
    const double e = per_bin_mse(histogram, Grid(candidates[c], bits));
    if (e < best_mse || (e == best_mse && c < best)) best_mse = e, best = c;
  }
  return candidates[best];
}

// ---- Observers ----------------------------------------------------------------------------------------------

void Observer::observe(const Tensor& x) {
  const Tensor host = x.detach().to(Device::cpu()).to(DType::kF32).contiguous();
  observe(host.data<float>(), host.numel());
}

void MinMaxObserver::observe(const float* data, int64_t n) {
  const ActivationRange batch = finite_min_max(data, n);
  if (batch.min > batch.max) return;
  range_ = seen_ ? ActivationRange{std::min(range_.min, batch.min), std::max(range_.max, batch.max)} : batch;
  seen_ = true;
}

ActivationRange MinMaxObserver::range() const {
  BF_CHECK(seen_, "MinMaxObserver: nothing observed");
  return range_;
}

RunningMinMaxObserver::RunningMinMaxObserver(double momentum) : momentum_(momentum) {
  BF_CHECK(momentum >= 0.0 && momentum < 1.0, "RunningMinMaxObserver: momentum must be in [0, 1), got ",
           momentum);
}

void RunningMinMaxObserver::observe(const float* data, int64_t n) {
  const ActivationRange batch = finite_min_max(data, n);
  if (batch.min > batch.max) return;
  if (!seen_) {
    min_ = batch.min;
    max_ = batch.max;
    seen_ = true;
    return;
  }
  const double m = momentum_;
  min_ = m * min_ + (1.0 - m) * batch.min;
  max_ = m * max_ + (1.0 - m) * batch.max;
}

ActivationRange RunningMinMaxObserver::range() const {
  BF_CHECK(seen_, "RunningMinMaxObserver: nothing observed");
  return {static_cast<float>(min_), static_cast<float>(max_)};
}

PercentileObserver::PercentileObserver(double percentile, int64_t bins) : percentile_(percentile), histogram_(bins) {
  BF_CHECK(percentile > 50.0 && percentile <= 100.0, "PercentileObserver: percentile must be in (50, 100], got ",
           percentile);
}

ActivationRange PercentileObserver::range() const {
  BF_CHECK(has_data(), "PercentileObserver: nothing observed");
  const double q = percentile_ / 100.0;
  return {static_cast<float>(histogram_.quantile(1.0 - q)), static_cast<float>(histogram_.quantile(q))};
}

MseObserver::MseObserver(int bits, int64_t bins, int64_t grid) : bits_(bits), grid_(grid), histogram_(bins) {
  BF_CHECK(bits >= 2 && bits <= 16 && grid >= 1, "MseObserver: bits ", bits, ", grid ", grid);
}

ActivationRange MseObserver::range() const {
  BF_CHECK(has_data(), "MseObserver: nothing observed");
  return mse_search(histogram_, bits_, grid_);
}

std::unique_ptr<Observer> make_observer(const ObserverOptions& options) {
  const absl::Status status = options.validate();
  BF_CHECK(status.ok(), "make_observer: ", status.message());
  switch (options.kind) {
    case ObserverKind::kMinMax: return std::make_unique<MinMaxObserver>();
    case ObserverKind::kRunningMinMax: return std::make_unique<RunningMinMaxObserver>(options.momentum);
    case ObserverKind::kPercentile: return std::make_unique<PercentileObserver>(options.percentile, options.bins);
    case ObserverKind::kMse: return std::make_unique<MseObserver>(options.bits, options.bins, options.mse_grid);
  }
  BF_FAIL("make_observer: unknown observer kind");
}

}  // namespace bertforge
