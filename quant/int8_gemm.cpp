// quant/int8_gemm.cpp — the int8 GEMM driver: path selection, weight prepacking, cache blocking, threading, the
// dequantizing epilogue (per-tensor or per-row activation parameters), the portable scalar microkernel, and
// activation quantization (static per tensor, dynamic per row).
//
// Blocking (after ops/cpu/gemm.cpp, with B packed once at load instead of per call):
//   C is cut into tasks of MC rows x NC output channels, spread over OpenMP threads (dynamic schedule).
//   A task walks K in blocks of KC (per path): it packs its MC x KC block of A into MR-row panels (the 4-k groups
//   of int8_gemm_kernels.h), then for each NR-wide weight panel (one KC x NR block, read from the prepacked weight,
//   stays in L1) runs the microkernel down the MC rows. Partial sums of earlier K blocks wait in a per-thread
//   MC x NC int32 buffer; after the last block each tile is finished at once (row-sum correction, and for the f32
//   output the scales and the bias), so the int32 sums of C never travel to memory.
// A path with a block kernel (Int8Microkernel::run_block: VNNI) skips all of that inside a task: it reads A where
// it lies, runs each register tile over the whole of K and applies the epilogue to the registers
// (int8_gemm_avx512.cpp); the driver only cuts the tasks and spreads them over the threads.
// Activation quantization runs the AVX-512 row loops where the GEMM runs VNNI (same codes bit for bit).
//
// The epilogue's int32 value v = acc - corr is exact: |corr| = |(z_a - offset) rowsum_w| <= 255 * 127 * K (z_a in
// [0, 255], offset 0 or 128) fits int32 for K <= kInt8GemmMaxK, and so does |v| = |sum_k (a - z_a) w|.
#include "quant/int8_gemm.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <string>

#include "core/check.h"
#include "quant/activation_quant.h"
#include "quant/int8_gemm_kernels.h"

namespace bertforge::quant {
namespace detail {
namespace {

// ---- The portable path: the same packed layout and tile contract, in plain C++ (4 x 8 tile). ----------------------
constexpr int64_t kScalarMR = 4, kScalarNR = 8;

void microkernel_scalar(int64_t kq, const uint8_t* a, const int8_t* b, int32_t* tile) {
  int32_t acc[kScalarMR][kScalarNR] = {};
  for (int64_t g = 0; g < kq; ++g) {
    for (int64_t r = 0; r < kScalarMR; ++r) {
      for (int64_t c = 0; c < kScalarNR; ++c) {
        int32_t sum = 0;
        for (int64_t t = 0; t < 4; ++t) sum += int32_t{a[r * 4 + t]} * int32_t{b[c * 4 + t]};
        acc[r][c] += sum;
      }
    }
    a += kScalarMR * 4;
    b += kScalarNR * 4;
  }
  for (int64_t r = 0; r < kScalarMR; ++r) std::memcpy(tile + r * kScalarNR, acc[r], sizeof acc[r]);
}

bool always() { return true; }

constexpr Int8Microkernel kScalar{Int8GemmIsa::kScalar, kScalarMR, kScalarNR, 512, /*signed_a=*/false, /*max_a_bits=*/8,
                                  microkernel_scalar, always};

}  // namespace

const Int8Microkernel* scalar_microkernel() { return &kScalar; }

}  // namespace detail

namespace {

using detail::Int8Microkernel;

// Rows per task: an A block (MC x KC <= 72 KiB) stays in L2; a multiple of every MR (4, 6, 8).
constexpr int64_t kMC = 96;
constexpr int64_t kNC = 256;  // output channels per task: a multiple of every NR
// Below this many multiply-adds a second thread costs more than it saves.
constexpr int64_t kMinWorkPerThread = int64_t{64} * 64 * 64;
constexpr int64_t kMaxNR = 32;  // the widest tile of any path (VNNI)
static_assert(int64_t{255} * 127 * kInt8GemmMaxK <= std::numeric_limits<int32_t>::max(),
              "the epilogue's corrections must fit int32");

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

const Int8Microkernel* compiled_microkernel(Int8GemmIsa isa) {
  switch (isa) {
    case Int8GemmIsa::kScalar: return detail::scalar_microkernel();
    case Int8GemmIsa::kAvx2: return detail::avx2_microkernel();
    case Int8GemmIsa::kAvx512Vnni: return detail::avx512_vnni_microkernel();
  }
  return nullptr;
}

const Int8Microkernel& microkernel_for(Int8GemmIsa isa) {
  BF_CHECK(int8_gemm_isa_available(isa), "int8 GEMM path ", int8_gemm_isa_name(isa),
           " is not available on this CPU or in this build");
  return *compiled_microkernel(isa);
}

// The path's microkernel for activation codes of `a_bits` bits: AVX2 has a faster one for at most 7.
const Int8Microkernel& microkernel_for(Int8GemmIsa isa, int a_bits) {
  const Int8Microkernel& general = microkernel_for(isa);
  const Int8Microkernel* seven_bit = isa == Int8GemmIsa::kAvx2 ? detail::avx2_7bit_microkernel() : nullptr;
  return seven_bit != nullptr && a_bits <= seven_bit->max_a_bits ? *seven_bit : general;
}

// Checks the promise that every code of A (M,K) is below 2^a_bits; one pass over A, cheap beside the GEMM.
void check_activation_codes(int64_t M, const uint8_t* A, int64_t lda, int64_t K, int a_bits) {
  BF_CHECK(a_bits >= 1 && a_bits <= 8, "int8 GEMM: activation bits ", a_bits, " outside [1, 8]");
  if (a_bits == 8) return;
  uint8_t seen = 0;
  for (int64_t m = 0; m < M; ++m) {
    const uint8_t* row = A + m * lda;
    for (int64_t k = 0; k < K; ++k) seen |= row[k];
  }
  BF_CHECK(seen >> a_bits == 0, "int8 GEMM: an activation code is ", (1 << a_bits), " or more, outside the ",
           a_bits, "-bit range promised");
}

// A growable 64-byte aligned per-thread scratch buffer, reused across calls.
struct Scratch {
  void* data = nullptr;
  size_t capacity = 0;
  template <typename T>
  T* get(int64_t n) {
    const size_t bytes = static_cast<size_t>(round_up(std::max<int64_t>(n, 1) * int64_t{sizeof(T)}, 64));
    if (bytes > capacity) {
      std::free(data);
      data = std::aligned_alloc(64, bytes);
      if (data == nullptr) throw std::bad_alloc();
      capacity = bytes;
    }
    return static_cast<T*>(data);
  }
  ~Scratch() { std::free(data); }
};

// What happens to a finished tile: v = acc - corr[n] (an exact int32), then C = v, or Y = comb[n] * v + bias[n].
// Per tensor, corr and comb are computed once per call; per row, a row's are computed when its tile is finished,
// from the row's (s_a[m], z_a[m]), in the same operations (so equal parameters give equal floats).
struct Finish {
  const int32_t* corr = nullptr;  // (N): (z_a - offset) * rowsum_w[n]; per tensor only
  int32_t* C = nullptr;
  int64_t ldc = 0;
  float* Y = nullptr;
  int64_t ldy = 0;
  const float* comb = nullptr;  // (N): s_a * s_w[n]; per tensor only
  const float* bias = nullptr;  // (N)
  // Per row: the activation parameters (M), the weight scales (N, one per channel even for a per-tensor weight),
  // the weight's row sums (N) and the packed-A offset (128 for a signed-A microkernel, else 0).
  const float* a_scales = nullptr;
  const int32_t* a_zero_points = nullptr;
  const float* w_scales = nullptr;
  const int32_t* row_sums = nullptr;
  int32_t a_offset = 0;
};

void finish_tile(const Finish& f, const int32_t* tile, int64_t ld_tile, int64_t i, int64_t j, int64_t rows,
                 int64_t cols) {
  float row_comb[kMaxNR];
  int32_t row_corr[kMaxNR];
  for (int64_t r = 0; r < rows; ++r) {
    const int32_t* t = tile + r * ld_tile;
    if (f.C != nullptr) {
      int32_t* c = f.C + (i + r) * f.ldc + j;
      for (int64_t q = 0; q < cols; ++q) c[q] = static_cast<int32_t>(int64_t{t[q]} - f.corr[j + q]);
      continue;
    }
    const float* comb = f.comb + j;
    const int32_t* corr = f.corr + j;
    if (f.a_scales != nullptr) {
      const float a_scale = f.a_scales[i + r];
      const int32_t zero = f.a_zero_points[i + r] - f.a_offset;
      for (int64_t q = 0; q < cols; ++q) {
        row_comb[q] = a_scale * f.w_scales[j + q];
        row_corr[q] = zero * f.row_sums[j + q];
      }
      comb = row_comb, corr = row_corr;
    }
    float* y = f.Y + (i + r) * f.ldy + j;
    const float* bias = f.bias + j;
    for (int64_t q = 0; q < cols; ++q) {
      y[q] = comb[q] * static_cast<float>(static_cast<int32_t>(int64_t{t[q]} - corr[q])) + bias[q];
    }
  }
}

// Packs rows [0, mc) and k in [pc, pc + kcb) of A (leading dim lda, K valid columns) into MR-row panels:
// dst[panel * MR * kcb + g * MR * 4 + r * 4 + t] = A[panel * MR + r][pc + 4g + t], zero beyond mc rows or K;
// XOR 0x80 (a -> a - 128 as int8) for a signed-A microkernel.
void pack_a(const Int8Microkernel& uk, const uint8_t* A, int64_t lda, int64_t mc, int64_t K, int64_t pc, int64_t kcb,
            uint8_t* dst) {
  const int64_t MR = uk.mr;
  const uint8_t flip = uk.signed_a ? 0x80 : 0x00;
  const int64_t k_valid = std::max<int64_t>(0, std::min(kcb, K - pc));
  for (int64_t ir = 0; ir < mc; ir += MR) {
    uint8_t* panel = dst + ir * kcb;
    for (int64_t r = 0; r < MR; ++r) {
      uint8_t* d = panel + r * 4;
      if (ir + r >= mc) {
        for (int64_t k = 0; k < kcb; ++k) d[(k / 4) * MR * 4 + k % 4] = 0;
        continue;
      }
      const uint8_t* src = A + (ir + r) * lda + pc;
      int64_t k = 0;
      for (; k + 4 <= k_valid; k += 4) {
        uint32_t v;
        std::memcpy(&v, src + k, 4);
        v ^= flip * 0x01010101u;
        std::memcpy(d + (k / 4) * MR * 4, &v, 4);
      }
      for (; k < kcb; ++k) d[(k / 4) * MR * 4 + k % 4] = k < k_valid ? static_cast<uint8_t>(src[k] ^ flip) : 0;
    }
  }
}

// One task: rows [i0, i1) x output channels [j0, j1) of C.
void run_task(const Int8Microkernel& uk, const uint8_t* A, int64_t lda, const PackedInt8Weight& W, const Finish& f,
              int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
  thread_local Scratch a_buffer, acc_buffer, tile_buffer;
  const int64_t K = W.cols, Kp = W.padded_cols, MR = uk.mr, NR = uk.nr;
  const int64_t mc = i1 - i0;
  uint8_t* a_packed = a_buffer.get<uint8_t>(round_up(mc, MR) * std::min(uk.kc, Kp));
  int32_t* acc = Kp > uk.kc ? acc_buffer.get<int32_t>(kMC * kNC) : nullptr;  // partial sums across K blocks
  int32_t* tile = tile_buffer.get<int32_t>(MR * NR);
  for (int64_t pc = 0; pc < Kp; pc += uk.kc) {
    const int64_t kcb = std::min(uk.kc, Kp - pc);
    const bool first = pc == 0, last = pc + kcb == Kp;
    pack_a(uk, A + i0 * lda, lda, mc, K, pc, kcb, a_packed);
    for (int64_t jr = j0; jr < j1; jr += NR) {
      const int8_t* b_panel = W.data.get() + (jr / NR) * Kp * NR + pc * NR;
      const int64_t cols = std::min(NR, j1 - jr);
      for (int64_t ir = 0; ir < mc; ir += MR) {
        const int64_t rows = std::min(MR, mc - ir);
        uk.run(kcb / 4, a_packed + ir * kcb, b_panel, tile);
        int32_t* partial = acc == nullptr ? nullptr : acc + ir * kNC + (jr - j0);
        if (!first) {  // add the earlier K blocks
          for (int64_t r = 0; r < rows; ++r) {
            for (int64_t c = 0; c < cols; ++c) tile[r * NR + c] += partial[r * kNC + c];
          }
        }
        if (last) {
          finish_tile(f, tile, NR, i0 + ir, jr, rows, cols);
        } else {
          for (int64_t r = 0; r < rows; ++r) std::memcpy(partial + r * kNC, tile + r * NR, cols * sizeof(int32_t));
        }
      }
    }
  }
}

// Runs task(i0, i1, j0, j1) over the (M,N) output cut into kMC x kNC blocks, on OpenMP threads.
template <typename Task>
void for_each_block(int64_t M, int64_t N, int64_t K, const Task& task) {
  const int64_t m_tasks = ceil_div(M, kMC), n_tasks = ceil_div(N, kNC), tasks = m_tasks * n_tasks;
  const int64_t by_work = std::max<int64_t>(1, M * N * std::max<int64_t>(K, 1) / kMinWorkPerThread);
  const int threads =
      omp_in_parallel() ? 1 : static_cast<int>(std::min<int64_t>({omp_get_max_threads(), tasks, by_work}));
  // Task t: channel block t / m_tasks, row block t % m_tasks (consecutive tasks share a block of the weight).
#pragma omp parallel for schedule(dynamic) num_threads(threads)
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t i0 = (t % m_tasks) * kMC, j0 = (t / m_tasks) * kNC;
    task(i0, std::min(M, i0 + kMC), j0, std::min(N, j0 + kNC));
  }
}

void run_gemm(const Int8Microkernel& uk, int64_t M, const uint8_t* A, int64_t lda, const PackedInt8Weight& W,
              const Finish& f) {
  BF_CHECK(uk.nr <= kMaxNR, "int8 GEMM: tile width ", uk.nr, " exceeds ", kMaxNR);
  for_each_block(M, W.rows, W.cols, [&](int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
    run_task(uk, A, lda, W, f, i0, i1, j0, j1);
  });
}

// A path with a fused block kernel (Int8Microkernel::run_block): no packing of A, no partial sums, no tile buffer.
void run_gemm_blocks(const Int8Microkernel& uk, int64_t M, const detail::Int8BlockArgs& args) {
  const PackedInt8Weight& W = *args.W;
  for_each_block(M, W.rows, W.cols,
                 [&](int64_t i0, int64_t i1, int64_t j0, int64_t j1) { uk.run_block(args, i0, i1, j0, j1); });
}

// The value the packed A adds to each activation code: a signed-A microkernel sees a - 128.
int32_t a_offset(const Int8Microkernel& uk) { return uk.signed_a ? 128 : 0; }

// corr[n] such that acc - corr[n] = sum_k (a - zero_point) w: the packed-A offset (128 for signed_a) is folded in.
std::vector<int32_t> corrections(const Int8Microkernel& uk, const PackedInt8Weight& W, int32_t zero_point) {
  const int32_t zero = zero_point - a_offset(uk);
  std::vector<int32_t> corr(static_cast<size_t>(W.rows));
  for (int64_t n = 0; n < W.rows; ++n) corr[n] = zero * W.row_sums[n];
  return corr;
}

// Threads for an element-wise pass over M rows of K: one per 32 Ki elements, at most the OpenMP team's.
int elementwise_threads(int64_t M, int64_t K) {
  const int64_t by_work = std::max<int64_t>(1, M * K / (int64_t{1} << 15));
  return omp_in_parallel() ? 1 : static_cast<int>(std::min<int64_t>(omp_get_max_threads(), by_work));
}

// The row loops of the best path (bit for bit the portable ones below), or nullptr: AVX-512 where the GEMM runs
// VNNI (BERTFORGE_INT8_ISA=avx2 or scalar forces the portable loops too, to test them on an AVX-512 machine).
const detail::Int8RowKernels* fast_row_kernels() {
  static const detail::Int8RowKernels* kernels =
      int8_gemm_best_isa() == Int8GemmIsa::kAvx512Vnni ? detail::avx512_row_kernels() : nullptr;
  return kernels;
}

// q (K) = clamp(round(x / scale) + z, 0, q_max), x (K). Clamped in float (a NaN becomes 0: max(0, NaN) is 0), then
// converted: vectorises to divide, round, min, max, cvt.
void quantize_row(const float* x, int64_t K, float scale, float z, float q_max, uint8_t* q) {
  for (int64_t k = 0; k < K; ++k) {
    const float v = std::nearbyint(x[k] / scale) + z;
    q[k] = static_cast<uint8_t>(static_cast<int32_t>(std::min(std::max(0.0f, v), q_max)));
  }
}

// [lo, hi] = [min(0, min_k x[k]), max(0, max_k x[k])] over the non-NaN values of x (K); false if x holds an
// infinity. The vectorised pass also sums x - x, which is NaN exactly when some x is NaN or infinite: only such a
// row takes the scalar pass (vector min/max instructions do not order NaNs the way a scalar comparison does).
bool row_range(const float* x, int64_t K, float& lo, float& hi) {
  float lo_v = 0.0f, hi_v = 0.0f, not_finite = 0.0f;
#pragma omp simd reduction(min : lo_v) reduction(max : hi_v) reduction(+ : not_finite)
  for (int64_t k = 0; k < K; ++k) {  // no std::min / max: their references keep the loop from vectorising
    const float v = x[k];
    lo_v = v < lo_v ? v : lo_v;
    hi_v = v > hi_v ? v : hi_v;
    not_finite += v - v;
  }
  lo = lo_v, hi = hi_v;
  if (not_finite == 0.0f) return true;
  lo = hi = 0.0f;
  for (int64_t k = 0; k < K; ++k) {
    if (std::isnan(x[k])) continue;
    if (std::isinf(x[k])) return false;
    lo = std::min(lo, x[k]);
    hi = std::max(hi, x[k]);
  }
  return true;
}

}  // namespace

void PackedInt8Weight::Free::operator()(int8_t* p) const { std::free(p); }

const char* int8_gemm_isa_name(Int8GemmIsa isa) {
  switch (isa) {
    case Int8GemmIsa::kScalar: return "scalar";
    case Int8GemmIsa::kAvx2: return "avx2";
    case Int8GemmIsa::kAvx512Vnni: return "avx512-vnni";
  }
  return "?";
}

bool int8_gemm_isa_available(Int8GemmIsa isa) {
  const Int8Microkernel* uk = compiled_microkernel(isa);
  return uk != nullptr && uk->cpu_supports();
}

std::vector<Int8GemmIsa> int8_gemm_available_isas() {
  std::vector<Int8GemmIsa> isas;
  for (Int8GemmIsa isa : {Int8GemmIsa::kScalar, Int8GemmIsa::kAvx2, Int8GemmIsa::kAvx512Vnni}) {
    if (int8_gemm_isa_available(isa)) isas.push_back(isa);
  }
  return isas;
}

Int8GemmIsa int8_gemm_best_isa() {
  static const Int8GemmIsa best = [] {
    if (const char* forced = std::getenv("BERTFORGE_INT8_ISA"); forced != nullptr && *forced != '\0') {
      for (Int8GemmIsa isa : {Int8GemmIsa::kScalar, Int8GemmIsa::kAvx2, Int8GemmIsa::kAvx512Vnni}) {
        if (std::string(forced) != int8_gemm_isa_name(isa)) continue;
        BF_CHECK(int8_gemm_isa_available(isa), "BERTFORGE_INT8_ISA=", forced,
                 ": that int8 GEMM path is not available on this CPU or in this build");
        return isa;
      }
      BF_CHECK(false, "BERTFORGE_INT8_ISA=", forced, ": expected scalar, avx2 or avx512-vnni");
    }
    if (int8_gemm_isa_available(Int8GemmIsa::kAvx512Vnni)) return Int8GemmIsa::kAvx512Vnni;
    if (int8_gemm_isa_available(Int8GemmIsa::kAvx2)) return Int8GemmIsa::kAvx2;
    return Int8GemmIsa::kScalar;
  }();
  return best;
}

PackedInt8Weight pack_int8_weight(const int8_t* W, int64_t N, int64_t K, int64_t ldw, Int8GemmIsa isa) {
  const Int8Microkernel& uk = microkernel_for(isa);
  BF_CHECK(N >= 0 && K >= 0 && ldw >= K, "pack_int8_weight: bad sizes N ", N, ", K ", K, ", ldw ", ldw);
  BF_CHECK(K <= kInt8GemmMaxK, "pack_int8_weight: K = ", K, " exceeds ", kInt8GemmMaxK,
           " (int32 sums could overflow)");
  PackedInt8Weight p;
  p.isa = isa;
  p.rows = N;
  p.cols = K;
  p.nr = uk.nr;
  p.padded_cols = round_up(K, 4);
  const int64_t panels = ceil_div(N, uk.nr);
  const size_t bytes = static_cast<size_t>(round_up(std::max<int64_t>(panels * p.padded_cols * uk.nr, 1), 64));
  p.data.reset(static_cast<int8_t*>(std::aligned_alloc(64, bytes)));
  if (p.data == nullptr) throw std::bad_alloc();
  std::memset(p.data.get(), 0, bytes);
  p.row_sums.assign(static_cast<size_t>(N), 0);
  const int64_t NR = uk.nr, Kp = p.padded_cols;
  for (int64_t n = 0; n < N; ++n) {
    const int8_t* w = W + n * ldw;
    int8_t* panel = p.data.get() + (n / NR) * Kp * NR + (n % NR) * 4;
    int32_t sum = 0;
    for (int64_t k = 0; k < K; ++k) {
      BF_CHECK(w[k] != -128, "pack_int8_weight: W[", n, "][", k, "] = -128; weights must lie in [-127, 127]");
      panel[(k / 4) * NR * 4 + k % 4] = w[k];
      sum += w[k];
    }
    p.row_sums[n] = sum;
  }
  return p;
}

void int8_gemm_s32(int64_t M, const uint8_t* A, int64_t lda, const PackedInt8Weight& W, int32_t* C, int64_t ldc,
                  int a_bits) {
  BF_CHECK(M >= 0 && lda >= W.cols && ldc >= W.rows, "int8_gemm_s32: bad sizes M ", M, ", lda ", lda, ", ldc ", ldc,
           " for W (", W.rows, ", ", W.cols, ")");
  check_activation_codes(M, A, lda, W.cols, a_bits);
  if (M == 0 || W.rows == 0) return;
  const Int8Microkernel& uk = microkernel_for(W.isa, a_bits);
  if (uk.run_block != nullptr) {
    detail::Int8BlockArgs args;
    args.A = A, args.lda = lda, args.K = W.cols, args.W = &W;
    args.row_sums = W.row_sums.data();  // multiplied by the zero point 0
    args.C = C, args.ldc = ldc;
    run_gemm_blocks(uk, M, args);
    return;
  }
  const std::vector<int32_t> corr = corrections(uk, W, 0);
  Finish f;
  f.corr = corr.data();
  f.C = C;
  f.ldc = ldc;
  run_gemm(uk, M, A, lda, W, f);
}

void int8_gemm_f32(int64_t M, const uint8_t* A, int64_t lda, const PackedInt8Weight& W, const Int8Epilogue& e,
                   float* Y, int64_t ldy) {
  BF_CHECK(M >= 0 && lda >= W.cols && ldy >= W.rows, "int8_gemm_f32: bad sizes M ", M, ", lda ", lda, ", ldy ",
           ldy, " for W (", W.rows, ", ", W.cols, ")");
  const bool per_row = e.a_scales != nullptr;
  BF_CHECK(per_row == (e.a_zero_points != nullptr), "int8_gemm_f32: per-row activation scales and zero points go "
           "together (one of them is null)");
  BF_CHECK(per_row || (e.a_zero_point >= 0 && e.a_zero_point <= 255), "int8_gemm_f32: zero point ", e.a_zero_point,
           " outside [0, 255]");
  for (int64_t m = 0; per_row && m < M; ++m) {
    BF_CHECK(e.a_zero_points[m] >= 0 && e.a_zero_points[m] <= 255, "int8_gemm_f32: zero point ", e.a_zero_points[m],
             " of row ", m, " outside [0, 255]");
  }
  BF_CHECK(e.w_scales != nullptr && (e.num_w_scales == 1 || e.num_w_scales == W.rows), "int8_gemm_f32: ",
           e.num_w_scales, " weight scales for ", W.rows, " output channels (expected 1 or N)");
  check_activation_codes(M, A, lda, W.cols, e.a_bits);
  if (M == 0 || W.rows == 0) return;
  const Int8Microkernel& uk = microkernel_for(W.isa, e.a_bits);
  const size_t N = static_cast<size_t>(W.rows);
  std::vector<float> w_scales(N), comb, bias(N, 0.0f);
  std::vector<int32_t> corr;
  for (size_t n = 0; n < N; ++n) {
    w_scales[n] = e.w_scales[e.num_w_scales == 1 ? 0 : n];
    if (e.bias != nullptr) bias[n] = e.bias[n];
  }
  if (uk.run_block != nullptr) {
    detail::Int8BlockArgs args;
    args.A = A, args.lda = lda, args.K = W.cols, args.W = &W;
    args.row_sums = W.row_sums.data();
    args.a_zero_points = e.a_zero_points, args.a_zero_point = e.a_zero_point;
    args.a_scales = e.a_scales, args.a_scale = e.a_scale;
    args.Y = Y, args.ldy = ldy;
    args.w_scales = w_scales.data();
    args.bias = bias.data();
    run_gemm_blocks(uk, M, args);
    return;
  }
  Finish f;
  f.Y = Y;
  f.ldy = ldy;
  f.bias = bias.data();
  if (per_row) {
    f.a_scales = e.a_scales;
    f.a_zero_points = e.a_zero_points;
    f.w_scales = w_scales.data();
    f.row_sums = W.row_sums.data();
    f.a_offset = a_offset(uk);
  } else {
    corr = corrections(uk, W, e.a_zero_point);
    comb.resize(N);
    for (size_t n = 0; n < N; ++n) comb[n] = e.a_scale * w_scales[n];
    f.corr = corr.data();
    f.comb = comb.data();
  }
  run_gemm(uk, M, A, lda, W, f);
}

void quantize_activations(const float* X, int64_t M, int64_t K, int64_t ldx, float scale, int32_t zero_point,
                          uint8_t* Q, int64_t ldq, int bits) {
  BF_CHECK(scale > 0.0f && std::isfinite(scale), "quantize_activations: scale ", scale, " must be finite and > 0");
  BF_CHECK(bits >= 1 && bits <= 8, "quantize_activations: ", bits, " bits outside [1, 8]");
  const int32_t max_code = (1 << bits) - 1;
  BF_CHECK(zero_point >= 0 && zero_point <= max_code, "quantize_activations: zero point ", zero_point,
           " outside [0, ", max_code, "]");
  const float z = static_cast<float>(zero_point), q_max = static_cast<float>(max_code);
  const detail::Int8RowKernels* fast = fast_row_kernels();
  const auto row = fast != nullptr ? fast->quantize_row : quantize_row;
#pragma omp parallel for schedule(static) num_threads(elementwise_threads(M, K))
  for (int64_t m = 0; m < M; ++m) row(X + m * ldx, K, scale, z, q_max, Q + m * ldq);
}

void quantize_activations_per_row(const float* X, int64_t M, int64_t K, int64_t ldx, int bits, uint8_t* Q,
                                  int64_t ldq, float* scales, int32_t* zero_points) {
  BF_CHECK(bits >= 2 && bits <= 8, "quantize_activations_per_row: ", bits, " bits outside [2, 8]");
  BF_CHECK(M >= 0 && K >= 0 && ldx >= K && ldq >= K, "quantize_activations_per_row: bad sizes M ", M, ", K ", K,
           ", ldx ", ldx, ", ldq ", ldq);
  const float q_max = static_cast<float>((1 << bits) - 1);
  const detail::Int8RowKernels* fast = fast_row_kernels();
  const auto quantize = fast != nullptr ? fast->quantize_row : quantize_row;
  int64_t first_infinite_row = M;  // nothing may throw inside the parallel loop: the check comes after it
#pragma omp parallel for schedule(static) num_threads(elementwise_threads(M, K)) reduction(min : first_infinite_row)
  for (int64_t m = 0; m < M; ++m) {
    const float* x = X + m * ldx;
    float lo, hi;
    const bool finite = fast != nullptr && fast->finite_row_range(x, K, &lo, &hi);
    if (!finite && !row_range(x, K, lo, hi)) {
      first_infinite_row = std::min(first_infinite_row, m);
      continue;
    }
    // [lo, hi] is finite and holds 0: from_range cannot fail, and its zero point lies in [0, q_max].
    const ActivationQuantParams p = ActivationQuantParams::from_range({lo, hi}, bits);
    scales[m] = p.scale;
    zero_points[m] = p.zero_point;
    quantize(x, K, p.scale, static_cast<float>(p.zero_point), q_max, Q + m * ldq);
  }
  BF_CHECK(first_infinite_row == M, "quantize_activations_per_row: row ", first_infinite_row, " of (", M, ", ", K,
           ") holds an infinity: a per-token range must be finite");
}

}  // namespace bertforge::quant
