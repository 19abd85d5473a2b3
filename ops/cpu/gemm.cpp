// ops/cpu/gemm.cpp — single-precision GEMM for the CPU: our own BLIS-style kernel, or OpenBLAS.
//
// How the own kernel works (Goto & van de Geijn, "Anatomy of High-Performance Matrix Multiplication", 2008;
// Van Zee & van de Geijn, "BLIS", 2015). C (M,N) = alpha * op(A) (M,K) @ op(B) (K,N) + beta * C is computed as
// five nested loops around a register-blocked microkernel:
//
//   for jc in N step NC:
//     for pc in K step KC:
//       pack B block op(B)[pc:pc+KC, jc:jc+NC] into NR-wide micro-panels   -> lives in L3 (KC*NC*4 bytes)
//       for ic in M step MC:
//         pack A block op(A)[ic:ic+MC, pc:pc+KC] into MR-tall micro-panels -> lives in L2 (MC*KC*4 bytes)
//         for jr in NC step NR:     one B micro-panel (KC x NR) stays in L1 during the whole ir loop
//           for ir in MC step MR:   one A micro-panel (MR x KC) streams in from L2
//             microkernel: C[ir:ir+MR, jr:jr+NR] (+)= A micro-panel @ B micro-panel, summed in registers
//
// Packing copies each operand into the exact order the microkernel reads it (contiguous, 64-byte aligned, padded
// with zeros to whole MR / NR tiles), so the inner loop does unit-stride loads only. Transposition is absorbed
// by the packing routines: all four (trans_a, trans_b) combinations run the same microkernel.
//
// Threads: C is cut into one rectangle per thread and each thread runs the five loops above on its own rectangle
// (gemm_own); a strided batch of many small products gives each thread whole products instead.
//
// 16-bit inputs (bf16, f16: mixed-precision training, ops/autocast.h) run the same loops: the packing widens each
// element to float as it copies it into the panels, so the microkernel is the FP32 one, every product of two 16-bit
// values is exact in FP32 and the sums are FP32, as on a GPU's tensor cores with FP32 accumulation.
#include "ops/cpu/gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <type_traits>

#include <omp.h>

#include "core/check.h"
#include "core/dtype.h"

#if defined(BERTFORGE_USE_OPENBLAS)
#include <cblas.h>
#endif
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

namespace bertforge::cpu {
namespace {

// ---------------------------------------------------------------------------------------------------------------
// Blocking parameters, chosen for AMD Zen 3 (32 KiB L1d and 512 KiB L2 per core, 32 MiB shared L3; AVX2 with two
// 256-bit FMA pipes of latency 4) and similar AVX2 cores.
//
// MR x NR = 6 x 16: the C tile is 6 rows x 2 ymm registers = 12 accumulators, plus 2 registers for a row of B and
// 1 for a broadcast element of A = 15 of the 16 ymm registers. 12 independent FMA chains cover the 2 pipes x 4
// cycles of latency = 8 FMAs in flight. Each k step does 12 FMAs for 8 loads (2 vector + 6 broadcast).
// KC = 256: a B micro-panel (KC x NR = 16 KiB) plus an A micro-panel (MR x KC = 6 KiB) fit in L1 together.
// MC <= 144: an A block (MC x KC = 144 KiB) sits comfortably in L2 next to the B micro-panels streaming through.
//            M is cut into blocks of equal height (in whole MR tiles) rather than 144, 144, ..., remainder.
// NC = 4080: a B block (KC x NC = 4 MiB) fits in L3; every BERT-base width (768, 3072) is a single jc step.
// ---------------------------------------------------------------------------------------------------------------
constexpr int64_t MR = 6;
constexpr int64_t NR = 16;
constexpr int64_t KC = 256;
constexpr int64_t MC_MAX = 144;  // multiple of MR
constexpr int64_t NC = 4080;     // multiple of NR

// Below this many multiply-adds a second thread costs more (wake-up, barriers) than it saves.
constexpr int64_t kMinWorkPerThread = int64_t{64} * 64 * 64;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// A growable 64-byte aligned scratch buffer. One per thread (thread_local), reused across calls so that
// steady-state GEMMs never touch the allocator.
struct PackBuffer {
  float* data = nullptr;
  int64_t capacity = 0;  // in floats
  float* get(int64_t n) {
    if (n > capacity) {
      std::free(data);
      const size_t bytes = static_cast<size_t>(round_up(n * int64_t{sizeof(float)}, 64));
      data = static_cast<float*>(std::aligned_alloc(64, bytes));
      if (data == nullptr) throw std::bad_alloc();
      capacity = n;
    }
    return data;
  }
  ~PackBuffer() { std::free(data); }
};

// C (rows x cols, leading dim ldc) = beta * C, where beta == 0 writes zeros without reading C.
void scale_c(int64_t rows, int64_t cols, float beta, float* C, int64_t ldc) {
  for (int64_t i = 0; i < rows; ++i) {
    float* c = C + i * ldc;
    if (beta == 0.0f) {
      std::fill(c, c + cols, 0.0f);
    } else if (beta != 1.0f) {
      for (int64_t j = 0; j < cols; ++j) c[j] *= beta;
    }
  }
}

// Part `index` of `total` split into `parts` ranges of whole tiles of size `tile`, as equal as possible:
// returns [begin, end). E.g. total 1024, tile 6 (171 tiles), 8 parts -> ranges of 21 or 22 tiles.
void split_range(int64_t total, int64_t tile, int64_t parts, int64_t index, int64_t* begin, int64_t* end) {
  const int64_t tiles = ceil_div(total, tile);
  *begin = std::min(total, tiles * index / parts * tile);
  *end = std::min(total, tiles * (index + 1) / parts * tile);
}

// ---------------------------------------------------------------------------------------------------------------
// Packing. A "panel" is R lines (R = MR rows of op(A), or R = NR columns of op(B)) of length kc, stored k-major:
// panel[p * R + l] = element p of line l, so the microkernel reads one R-vector per k step.
// Element p of line l is src[l * line_stride + p * elem_stride]:
//   op(A) (M,K): line = row i,    A[i*lda + p] (line_stride lda, elem_stride 1)  or A[p*lda + i] when trans_a
//   op(B) (K,N): line = column j, B[p*ldb + j] (line_stride 1, elem_stride ldb)  or B[j*ldb + p] when trans_b
// ---------------------------------------------------------------------------------------------------------------

#if defined(__AVX2__) && defined(__FMA__)
// Transposes the 8x8 block src (row r at src + r*ld) into dst (row c at dst + c*ld_dst).
inline void transpose_8x8(const float* src, int64_t ld, float* dst, int64_t ld_dst) {
  __m256 r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * ld);
  for (int i = 0; i < 8; i += 2) {  // interleave row pairs: t[i] = r[i]0 r[i+1]0 r[i]1 r[i+1]1 | same for 4,5
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {  // gather 4-row columns within each 128-bit half
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {  // join the rows 0-3 and 4-7 halves of each column
    _mm256_storeu_ps(dst + i * ld_dst, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
    _mm256_storeu_ps(dst + (i + 4) * ld_dst, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
  }
}
#endif

// One 16-bit element widened to float (exact): with F16C, f16 takes the CPU's conversion instruction.
template <typename T>
inline float widen(T v) {
#if defined(__AVX2__) && defined(__F16C__)
  if constexpr (std::is_same_v<T, f16>) return _cvtsh_ss(v.bits);
#endif
  return to_float(v);
}

// dst[i] = src[i] widened, i < n; eight at a time with AVX2 (bf16: a 16-bit shift; f16: F16C's vcvtph2ps).
template <typename T>
void widen_run(const T* src, float* dst, int64_t n) {
  int64_t i = 0;
#if defined(__AVX2__) && defined(__F16C__)
  for (; i + 8 <= n; i += 8) {
    const __m128i halves = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    if constexpr (std::is_same_v<T, f16>) {
      _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(halves));
    } else {
      _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(halves), 16)));
    }
  }
#endif
  for (; i < n; ++i) dst[i] = widen(src[i]);
}

// One panel whose lines are each contiguous along p (elem_stride 1 in the fast path): a transposing copy.
// T is the stored element type (float, bf16 or f16); panels always hold floats.
template <int64_t R, typename T>
void pack_transposed_panel(const T* src, int64_t line_stride, int64_t elem_stride, int64_t width, int64_t kc,
                           float* dst) {
  if constexpr (!std::is_same_v<T, float>) {
    if (elem_stride == 1) {  // widen each line's run into a float copy of the panel, then take the float path
      thread_local PackBuffer widened;
      float* lines = widened.get(R * kc);
      for (int64_t l = 0; l < width; ++l) widen_run(src + l * line_stride, lines + l * kc, kc);
      return pack_transposed_panel<R, float>(lines, kc, 1, width, kc, dst);
    }
  }
  int64_t p = 0;
#if defined(__AVX2__) && defined(__FMA__)
  // The B panel of x @ W^T: 8x8 register transposes, 64 floats at a time.
  if constexpr (R % 8 == 0 && std::is_same_v<T, float>) {
    if (width == R && elem_stride == 1) {
      for (; p + 8 <= kc; p += 8) {
        for (int64_t l = 0; l < R; l += 8) transpose_8x8(src + l * line_stride + p, line_stride, dst + p * R + l, R);
      }
    }
  }
#endif
  for (; p < kc; ++p) {  // p-outer, so that the R input lines are all read forwards together
    for (int64_t l = 0; l < width; ++l) dst[p * R + l] = widen(src[l * line_stride + p * elem_stride]);
    for (int64_t l = width; l < R; ++l) dst[p * R + l] = 0.0f;
  }
}

// Packs `lines` consecutive lines into ceil(lines / R) panels stored one after another (panel q at dst + q*R*kc);
// the last panel is padded with zero lines. 16-bit elements are widened to float on the way.
template <int64_t R, typename T>
void pack_lines(const T* src, int64_t line_stride, int64_t elem_stride, int64_t lines, int64_t kc, float* dst) {
  const int64_t panels = ceil_div(lines, R);
  if (line_stride != 1) {
    for (int64_t q = 0; q < panels; ++q) {
      pack_transposed_panel<R, T>(src + q * R * line_stride, line_stride, elem_stride, std::min(R, lines - q * R),
                                  kc, dst + q * R * kc);
    }
    return;
  }
  // The lines are adjacent in memory at each p: read one k-row of all panels at a time (a long forward run, which
  // the hardware prefetcher follows; walking one panel at a time would jump a whole row of src at every step).
  for (int64_t p = 0; p < kc; ++p) {
    const T* row = src + p * elem_stride;
    for (int64_t q = 0; q < panels; ++q) {
      float* out = dst + q * R * kc + p * R;
      const int64_t width = std::min(R, lines - q * R);
      if constexpr (!std::is_same_v<T, float>) {
        widen_run(row + q * R, out, width);
        std::fill(out + width, out + R, 0.0f);
      } else if (width == R) {  // a fixed-size copy the compiler turns into two vector moves
        std::memcpy(out, row + q * R, R * sizeof(float));
      } else {
        std::memcpy(out, row + q * R, width * sizeof(float));
        std::fill(out + width, out + R, 0.0f);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Microkernel: C (MR x NR, leading dim ldc) = alpha * a @ b + beta * C, where a is a packed A micro-panel
// (kc x MR, k-major) and b a packed B micro-panel (kc x NR, k-major). beta == 0 never reads C.
// ---------------------------------------------------------------------------------------------------------------
#if defined(__AVX2__) && defined(__FMA__)

constexpr const char* kBackendName = "own-avx2";

void microkernel(int64_t kc, const float* a, const float* b, float alpha, float beta, float* C, int64_t ldc) {
  static_assert(MR == 6 && NR == 16, "the AVX2 microkernel is written for a 6x16 tile");
  // Touch the C tile now so that its cache lines arrive while the k loop runs.
  for (int64_t i = 0; i < MR; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(C + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(C + i * ldc + NR - 1), _MM_HINT_T0);
  }
  // c<i>0 holds C(i, 0..7) and c<i>1 holds C(i, 8..15). Twelve named variables rather than an array: compilers
  // keep these in registers reliably, while an array of vectors is sometimes left in memory (a 3x slowdown).
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(), c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps(), c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();

#pragma GCC unroll 4  // fewer loop-counter instructions between FMAs: measured ~10% faster on Zen 3
  for (int64_t p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_load_ps(b);      // B(p, 0..7)
    const __m256 b1 = _mm256_load_ps(b + 8);  // B(p, 8..15)
    __m256 ai;                                // A(i, p) broadcast to all 8 lanes
    ai = _mm256_broadcast_ss(a + 0), c00 = _mm256_fmadd_ps(ai, b0, c00), c01 = _mm256_fmadd_ps(ai, b1, c01);
    ai = _mm256_broadcast_ss(a + 1), c10 = _mm256_fmadd_ps(ai, b0, c10), c11 = _mm256_fmadd_ps(ai, b1, c11);
    ai = _mm256_broadcast_ss(a + 2), c20 = _mm256_fmadd_ps(ai, b0, c20), c21 = _mm256_fmadd_ps(ai, b1, c21);
    ai = _mm256_broadcast_ss(a + 3), c30 = _mm256_fmadd_ps(ai, b0, c30), c31 = _mm256_fmadd_ps(ai, b1, c31);
    ai = _mm256_broadcast_ss(a + 4), c40 = _mm256_fmadd_ps(ai, b0, c40), c41 = _mm256_fmadd_ps(ai, b1, c41);
    ai = _mm256_broadcast_ss(a + 5), c50 = _mm256_fmadd_ps(ai, b0, c50), c51 = _mm256_fmadd_ps(ai, b1, c51);
    a += MR;
    b += NR;
  }

  // C(i, :) = alpha * c<i> + beta * C(i, :), without reading C when beta == 0.
  const __m256 valpha = _mm256_set1_ps(alpha), vbeta = _mm256_set1_ps(beta);
  auto store = [&](float* dst, __m256 acc) {
    __m256 r = _mm256_mul_ps(valpha, acc);
    if (beta != 0.0f) r = _mm256_fmadd_ps(vbeta, _mm256_loadu_ps(dst), r);
    _mm256_storeu_ps(dst, r);
  };
  store(C + 0 * ldc, c00), store(C + 0 * ldc + 8, c01);
  store(C + 1 * ldc, c10), store(C + 1 * ldc + 8, c11);
  store(C + 2 * ldc, c20), store(C + 2 * ldc + 8, c21);
  store(C + 3 * ldc, c30), store(C + 3 * ldc + 8, c31);
  store(C + 4 * ldc, c40), store(C + 4 * ldc + 8, c41);
  store(C + 5 * ldc, c50), store(C + 5 * ldc + 8, c51);
}

#else  // portable fallback: the same tile in plain C++, which the compiler may still vectorise

constexpr const char* kBackendName = "own-scalar";

void microkernel(int64_t kc, const float* a, const float* b, float alpha, float beta, float* C, int64_t ldc) {
  float acc[MR][NR] = {};
  for (int64_t p = 0; p < kc; ++p) {
    for (int64_t i = 0; i < MR; ++i) {
      for (int64_t j = 0; j < NR; ++j) acc[i][j] += a[p * MR + i] * b[p * NR + j];
    }
  }
  for (int64_t i = 0; i < MR; ++i) {
    for (int64_t j = 0; j < NR; ++j) {
      float& dst = C[i * ldc + j];
      dst = beta == 0.0f ? alpha * acc[i][j] : alpha * acc[i][j] + beta * dst;
    }
  }
}

#endif

// Edge tiles (mr < MR or nr < NR, at the bottom / right border of C): run the full microkernel into a local
// tile (the packed operands are zero-padded, so the extra rows/columns are harmless), then copy out the valid part.
void edge_tile(int64_t mr, int64_t nr, int64_t kc, const float* a, const float* b, float alpha, float beta,
               float* C, int64_t ldc) {
  alignas(64) float tile[MR * NR];
  microkernel(kc, a, b, 1.0f, 0.0f, tile, NR);
  for (int64_t i = 0; i < mr; ++i) {
    for (int64_t j = 0; j < nr; ++j) {
      float& dst = C[i * ldc + j];
      dst = beta == 0.0f ? alpha * tile[i * NR + j] : alpha * tile[i * NR + j] + beta * dst;
    }
  }
}

// Macro-kernel: C block (mc x nc) = alpha * packed A block (mc x kc) @ packed B block (kc x nc) + beta * C block.
void macro_kernel(int64_t mc, int64_t nc, int64_t kc, const float* a_packed, const float* b_packed, float alpha,
                  float beta, float* C, int64_t ldc) {
  for (int64_t jr = 0; jr < nc; jr += NR) {
    const int64_t nr = std::min(NR, nc - jr);
    const float* b_panel = b_packed + jr * kc;  // panel jr/NR starts at (jr/NR) * (kc*NR)
    for (int64_t ir = 0; ir < mc; ir += MR) {
      const int64_t mr = std::min(MR, mc - ir);
      const float* a_panel = a_packed + ir * kc;
      float* c_tile = C + ir * ldc + jr;
      if (mr == MR && nr == NR) {
        microkernel(kc, a_panel, b_panel, alpha, beta, c_tile, ldc);
      } else {
        edge_tile(mr, nr, kc, a_panel, b_panel, alpha, beta, c_tile, ldc);
      }
    }
  }
}

// The five-loop GEMM on one thread: C (M,N) = alpha * op(A) (M,K) @ op(B) (K,N) + beta * C, where op(A)(i,p) is
// A[i*a_row + p*a_col] and op(B)(p,j) is B[p*b_row + j*b_col] (this is how the transpose flags arrive here).
// T: the element type of A and B (float, bf16 or f16), widened to float by the packing.
template <typename T>
void gemm_serial(int64_t M, int64_t N, int64_t K, float alpha, const T* A, int64_t a_row, int64_t a_col,
                 const T* B, int64_t b_row, int64_t b_col, float beta, float* C, int64_t ldc) {
  thread_local PackBuffer a_buffer, b_buffer;
  float* a_packed = a_buffer.get(MC_MAX * KC);
  float* b_packed = b_buffer.get(KC * round_up(std::min(N, NC), NR));
  // M in blocks of (nearly) equal height, at most MC_MAX: e.g. 512 rows -> 4 blocks of 126 or 132 rows.
  const int64_t m_blocks = ceil_div(M, MC_MAX);

  for (int64_t jc = 0; jc < N; jc += NC) {
    const int64_t nc = std::min(NC, N - jc);
    for (int64_t pc = 0; pc < K; pc += KC) {
      const int64_t kc = std::min(KC, K - pc);
      const float beta_here = pc == 0 ? beta : 1.0f;  // later K blocks accumulate onto the first
      pack_lines<NR>(B + pc * b_row + jc * b_col, b_col, b_row, nc, kc, b_packed);  // op(B)[pc:pc+kc, jc:jc+nc]
      for (int64_t block = 0; block < m_blocks; ++block) {
        int64_t ic = 0, ic_end = 0;
        split_range(M, MR, m_blocks, block, &ic, &ic_end);
        pack_lines<MR>(A + ic * a_row + pc * a_col, a_row, a_col, ic_end - ic, kc, a_packed);  // op(A)[ic:ic_end, ..]
        macro_kernel(ic_end - ic, nc, kc, a_packed, b_packed, alpha, beta_here, C + ic * ldc + jc, ldc);
      }
    }
  }
}

// The own GEMM on `nthreads` OpenMP threads. C is cut into a t_m x t_n grid of rectangles, one per thread, and each
// thread runs gemm_serial on its rectangle, packing the rows of op(A) and the columns of op(B) it needs itself.
// Threads never wait for each other inside a call (a thread preempted by another process holds up nobody until the
// end). The price is that op(A) is packed t_n times and op(B) t_m times; the grid is chosen to minimise that.
template <typename T>
void gemm_own(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const T* A, int64_t lda,
              const T* B, int64_t ldb, float beta, float* C, int64_t ldc, int nthreads) {
  // Strides of op(A) (M,K) and op(B) (K,N): element (r, c) is at X[r * row_stride + c * col_stride].
  const int64_t a_row = trans_a ? 1 : lda, a_col = trans_a ? lda : 1;
  const int64_t b_row = trans_b ? 1 : ldb, b_col = trans_b ? ldb : 1;
  if (nthreads == 1) return gemm_serial(M, N, K, alpha, A, a_row, a_col, B, b_row, b_col, beta, C, ldc);

#pragma omp parallel num_threads(nthreads)
  {
    const int64_t team = omp_get_num_threads(), me = omp_get_thread_num();
    // Packing work t_n * (M*K) + t_m * (K*N), over the grids that fit the team and have a whole tile per thread.
    int64_t t_m = 1, t_n = 1;
    double best_cost = -1.0;
    for (int64_t rows = 1; rows <= team; ++rows) {
      const int64_t cols = team / rows;
      if (rows * cols != team || rows > ceil_div(M, MR) || cols > ceil_div(N, NR)) continue;
      const double cost = static_cast<double>(cols) * M * K + static_cast<double>(rows) * K * N;
      if (best_cost < 0.0 || cost < best_cost) best_cost = cost, t_m = rows, t_n = cols;
    }
    if (me < t_m * t_n) {  // threads beyond the grid (a tiny C) have nothing to do
      int64_t i0 = 0, i1 = 0, j0 = 0, j1 = 0;
      split_range(M, MR, t_m, me / t_n, &i0, &i1);
      split_range(N, NR, t_n, me % t_n, &j0, &j1);
      gemm_serial(i1 - i0, j1 - j0, K, alpha, A + i0 * a_row, a_row, a_col, B + j0 * b_col, b_row, b_col, beta,
                  C + i0 * ldc + j0, ldc);
    }
  }
}

int threads_for(int64_t M, int64_t N, int64_t K) {
  if (omp_in_parallel()) return 1;
  const int64_t by_work = std::max<int64_t>(1, M * N * K / kMinWorkPerThread);
  return static_cast<int>(std::min<int64_t>(omp_get_max_threads(), by_work));
}

// The strided batch of products with the own kernel (see gemm.h), A and B of element type T.
template <typename T>
void gemm_batched_own(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const T* A,
                      int64_t lda, int64_t stride_a, const T* B, int64_t ldb, int64_t stride_b, float beta, float* C,
                      int64_t ldc, int64_t stride_c, int64_t batch) {
  if (M <= 0 || N <= 0 || batch <= 0) return;
  auto one_product = [&](int64_t i, int nthreads) {
    float* Ci = C + i * stride_c;
    if (K <= 0 || alpha == 0.0f) return scale_c(M, N, beta, Ci, ldc);
    gemm_own(trans_a, trans_b, M, N, K, alpha, A + i * stride_a, lda, B + i * stride_b, ldb, beta, Ci, ldc,
             nthreads);
  };
  // Many products (attention: batch * heads of them): threads take whole products one at a time (dynamic, so a
  // core slowed down by another process simply does fewer). Few products: one after the other, each threaded.
  const int nthreads = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (batch >= nthreads && nthreads > 1) {
#pragma omp parallel for schedule(dynamic) num_threads(nthreads)
    for (int64_t i = 0; i < batch; ++i) one_product(i, 1);
    return;
  }
  for (int64_t i = 0; i < batch; ++i) one_product(i, threads_for(M, N, K));
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// Public entry points.
// ---------------------------------------------------------------------------------------------------------------
#if defined(BERTFORGE_USE_OPENBLAS)

const char* gemm_backend_name() { return "openblas"; }

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == 0.0f) return scale_c(M, N, beta, C, ldc);
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              static_cast<blasint>(M), static_cast<blasint>(N), static_cast<blasint>(K), alpha, A,
              static_cast<blasint>(lda), B, static_cast<blasint>(ldb), beta, C, static_cast<blasint>(ldc));
}

void gemm_strided_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                          const float* A, int64_t lda, int64_t stride_a, const float* B, int64_t ldb,
                          int64_t stride_b, float beta, float* C, int64_t ldc, int64_t stride_c, int64_t batch) {
  // OpenBLAS has no strided-batched sgemm in this version; it threads each product internally.
  for (int64_t i = 0; i < batch; ++i) {
    gemm(trans_a, trans_b, M, N, K, alpha, A + i * stride_a, lda, B + i * stride_b, ldb, beta, C + i * stride_c,
         ldc);
  }
}

#else

const char* gemm_backend_name() { return kBackendName; }

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == 0.0f) return scale_c(M, N, beta, C, ldc);
  gemm_own(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, threads_for(M, N, K));
}

void gemm_strided_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                          const float* A, int64_t lda, int64_t stride_a, const float* B, int64_t ldb,
                          int64_t stride_b, float beta, float* C, int64_t ldc, int64_t stride_c, int64_t batch) {
  gemm_batched_own(trans_a, trans_b, M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b, beta, C, ldc, stride_c,
                   batch);
}

#endif

void gemm_strided_batched_16(DType input_type, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                             float alpha, const void* A, int64_t lda, int64_t stride_a, const void* B, int64_t ldb,
                             int64_t stride_b, float beta, float* C, int64_t ldc, int64_t stride_c, int64_t batch) {
  auto run = [&](auto tag) {
    using T = decltype(tag);
    gemm_batched_own(trans_a, trans_b, M, N, K, alpha, static_cast<const T*>(A), lda, stride_a,
                     static_cast<const T*>(B), ldb, stride_b, beta, C, ldc, stride_c, batch);
  };
  switch (input_type) {
    case DType::kBF16: return run(bf16{});
    case DType::kF16: return run(f16{});
    default: BF_FAIL("gemm_strided_batched_16: inputs must be bf16 or f16, got ", dtype_name(input_type));
  }
}

}  // namespace bertforge::cpu
