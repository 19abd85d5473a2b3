// ops/cpu/gemm.cpp — the CPU GEMM driver: the loop nest around the microkernels, threading, and the choice of path
// (instruction set) at run time; or OpenBLAS for FP32 (BERTFORGE_USE_OPENBLAS).
//
// How the own kernel works (Goto & van de Geijn, "Anatomy of High-Performance Matrix Multiplication", 2008;
// Van Zee & van de Geijn, "BLIS", 2015). C (M,N) = alpha * op(A) (M,K) @ op(B) (K,N) + beta * C is computed as
// five nested loops around a register-blocked microkernel:
//
//   for jc in N step NC:
//     for pc in K step KC:
//       pack B block op(B)[pc:pc+KC, jc:jc+NC] into NR-wide micro-panels   -> lives in L3
//       for ic in M step MC:
//         pack A block op(A)[ic:ic+MC, pc:pc+KC] into MR-tall micro-panels -> lives in L2
//         for jr in NC step NR:     one B micro-panel (KC x NR) stays in L1 during the whole ir loop
//           for ir in MC step MR:   one A micro-panel (MR x KC) streams in from L2
//             microkernel: C[ir:ir+MR, jr:jr+NR] (+)= A micro-panel @ B micro-panel, summed in registers
//
// Packing copies each operand into the exact order the microkernel reads it (contiguous, 64-byte aligned, padded
// with zeros to whole MR / NR tiles), so the inner loop does unit-stride loads only. Transposition is absorbed
// by the packing routines: all four (trans_a, trans_b) combinations run the same microkernel.
//
// One loop nest serves every path: it is a template on the kernel's traits (gemm_kernels.h: tile, blocking, panel
// element type, microkernel), instantiated for scalar / avx2 / avx512 with FP32 panels and for avx512-bf16 with bf16
// pair panels. The microkernels live in gemm_avx2.cpp, gemm_avx512.cpp and gemm_bf16_avx512.cpp (the portable one
// below); FP32 panel packing in gemm_pack.h.
//
// Threads: C is cut into one rectangle per thread and each thread runs the five loops above on its own rectangle
// (gemm_own); a strided batch of many small products gives each thread whole products instead.
//
// 16-bit inputs (bf16, f16: mixed-precision training, ops/autocast.h) run the same loops. On the FP32 paths the
// packing widens each element to float as it copies it into the panels, so every product of two 16-bit values is
// exact in FP32 and the sums are FP32, as on a GPU's tensor cores with FP32 accumulation. On avx512-bf16 bf16
// operands stay 16-bit in the panels and vdpbf16ps multiplies them (exactly) into FP32 sums.
//
// The path: gemm_isa_for() picks, once, the fastest path the CPU supports for each operand type, or the one named
// by BERTFORGE_GEMM_ISA (gemm.h).
#include "ops/cpu/gemm.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <string>
#include <type_traits>

#include <omp.h>

#include "core/check.h"
#include "core/dtype.h"
#include "ops/cpu/gemm_kernels.h"
#include "ops/cpu/gemm_pack.h"

#if defined(BERTFORGE_USE_OPENBLAS)
#include <cblas.h>
#endif

namespace bertforge::cpu {
namespace detail {

// The portable microkernel: the AVX2 tile in plain C++, with the same fused multiply-adds (so the same bits).
void ScalarKernel::microkernel(int64_t kc, const float* a, const float* b, float alpha, float beta, float* C,
                               int64_t ldc) {
  float acc[MR][NR] = {};
  for (int64_t p = 0; p < kc; ++p) {
    for (int64_t i = 0; i < MR; ++i) {
      for (int64_t j = 0; j < NR; ++j) acc[i][j] = std::fma(a[p * MR + i], b[p * NR + j], acc[i][j]);
    }
  }
  for (int64_t i = 0; i < MR; ++i) {
    for (int64_t j = 0; j < NR; ++j) {
      float& dst = C[i * ldc + j];
      dst = beta == 0.0f ? alpha * acc[i][j] : std::fma(beta, dst, alpha * acc[i][j]);
    }
  }
}

}  // namespace detail

namespace {

using detail::Avx2Kernel;
using detail::Avx512Bf16Kernel;
using detail::Avx512Kernel;
using detail::ceil_div;
using detail::PackBuffer;
using detail::round_up;
using detail::ScalarKernel;

// Same bits on every path (gemm_kernels.h): one K blocking for all.
static_assert(ScalarKernel::KC == Avx2Kernel::KC && Avx2Kernel::KC == Avx512Kernel::KC &&
                  Avx512Kernel::KC == Avx512Bf16Kernel::KC,
              "every path must split K the same way, or their results differ in the last bits");

// Below this many multiply-adds a second thread costs more (wake-up, barriers) than it saves.
constexpr int64_t kMinWorkPerThread = int64_t{64} * 64 * 64;

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

// `lines` lines of an operand (layout in gemm_pack.h) into the kernel's A (R = MR) or B (R = NR) panels.
template <typename Kernel, bool kIsA, typename T>
void pack(const T* src, int64_t line_stride, int64_t elem_stride, int64_t lines, int64_t kc,
          typename Kernel::Panel* dst) {
  if constexpr (Kernel::kPack == 1) {
    detail::pack_lines<kIsA ? Kernel::MR : Kernel::NR>(src, line_stride, elem_stride, lines, kc, dst);
  } else {
    static_assert(std::is_same_v<T, bf16>, "bf16 pair panels are packed from bf16 operands only");
    if constexpr (kIsA) {
      Kernel::pack_a(src, line_stride, elem_stride, lines, kc, dst);
    } else {
      Kernel::pack_b(src, line_stride, elem_stride, lines, kc, dst);
    }
  }
}

// Edge tiles (mr < MR or nr < NR, at the bottom / right border of C): run the full microkernel into a local
// tile (the packed operands are zero-padded, so the extra rows/columns are harmless), then copy out the valid part,
// scaled as the microkernels do (one FMA for beta), so that an element's bits do not depend on its tile.
template <typename Kernel>
void edge_tile(int64_t mr, int64_t nr, int64_t steps, const typename Kernel::Panel* a,
               const typename Kernel::Panel* b, float alpha, float beta, float* C, int64_t ldc) {
  alignas(64) float tile[Kernel::MR * Kernel::NR];
  Kernel::microkernel(steps, a, b, 1.0f, 0.0f, tile, Kernel::NR);
  for (int64_t i = 0; i < mr; ++i) {
    for (int64_t j = 0; j < nr; ++j) {
      float& dst = C[i * ldc + j];
      dst = beta == 0.0f ? alpha * tile[i * Kernel::NR + j] : std::fma(beta, dst, alpha * tile[i * Kernel::NR + j]);
    }
  }
}

// Macro-kernel: C block (mc x nc) = alpha * packed A block (mc x kc) @ packed B block (kc x nc) + beta * C block,
// the panels `steps` packed k-steps long.
template <typename Kernel>
void macro_kernel(int64_t mc, int64_t nc, int64_t steps, const typename Kernel::Panel* a_packed,
                  const typename Kernel::Panel* b_packed, float alpha, float beta, float* C, int64_t ldc) {
  constexpr int64_t MR = Kernel::MR, NR = Kernel::NR;
  for (int64_t jr = 0; jr < nc; jr += NR) {
    const int64_t nr = std::min(NR, nc - jr);
    const auto* b_panel = b_packed + jr * steps;  // panel jr/NR starts at (jr/NR) * (steps*NR)
    for (int64_t ir = 0; ir < mc; ir += MR) {
      const int64_t mr = std::min(MR, mc - ir);
      const auto* a_panel = a_packed + ir * steps;
      float* c_tile = C + ir * ldc + jr;
      if (mr == MR && nr == NR) {
        Kernel::microkernel(steps, a_panel, b_panel, alpha, beta, c_tile, ldc);
      } else {
        edge_tile<Kernel>(mr, nr, steps, a_panel, b_panel, alpha, beta, c_tile, ldc);
      }
    }
  }
}

// The calling thread's buffers for the packed A block (0) and B block (1), shared by all paths and types (each call
// asks for the size it needs), so that steady-state GEMMs never touch the allocator.
PackBuffer& pack_buffer(int which) {
  thread_local PackBuffer buffers[2];
  return buffers[which];
}

// The five-loop GEMM on one thread: C (M,N) = alpha * op(A) (M,K) @ op(B) (K,N) + beta * C, where op(A)(i,p) is
// A[i*a_row + p*a_col] and op(B)(p,j) is B[p*b_row + j*b_col] (this is how the transpose flags arrive here).
// T: the element type of A and B (float, bf16 or f16).
template <typename Kernel, typename T>
void gemm_serial(int64_t M, int64_t N, int64_t K, float alpha, const T* A, int64_t a_row, int64_t a_col,
                 const T* B, int64_t b_row, int64_t b_col, float beta, float* C, int64_t ldc) {
  constexpr int64_t MR = Kernel::MR, NR = Kernel::NR, KC = Kernel::KC, MC = Kernel::MC, NC = Kernel::NC;
  static_assert(MC % MR == 0 && NC % NR == 0 && KC % Kernel::kPack == 0, "blocks hold whole tiles and k-steps");
  using Panel = typename Kernel::Panel;
  const int64_t max_steps = ceil_div(std::min(K, KC), Kernel::kPack);
  Panel* a_packed = pack_buffer(0).get<Panel>(round_up(std::min(M, MC), MR) * max_steps);
  Panel* b_packed = pack_buffer(1).get<Panel>(round_up(std::min(N, NC), NR) * max_steps);
  // M in blocks of (nearly) equal height, at most MC: e.g. 512 rows, MC 144 -> 4 blocks of 126 or 132 rows.
  const int64_t m_blocks = ceil_div(M, MC);

  for (int64_t jc = 0; jc < N; jc += NC) {
    const int64_t nc = std::min(NC, N - jc);
    for (int64_t pc = 0; pc < K; pc += KC) {
      const int64_t kc = std::min(KC, K - pc), steps = ceil_div(kc, Kernel::kPack);
      const float beta_here = pc == 0 ? beta : 1.0f;  // later K blocks accumulate onto the first
      pack<Kernel, false>(B + pc * b_row + jc * b_col, b_col, b_row, nc, kc, b_packed);  // op(B)[pc:pc+kc, jc:..]
      for (int64_t block = 0; block < m_blocks; ++block) {
        int64_t ic = 0, ic_end = 0;
        split_range(M, MR, m_blocks, block, &ic, &ic_end);
        pack<Kernel, true>(A + ic * a_row + pc * a_col, a_row, a_col, ic_end - ic, kc, a_packed);  // op(A)[ic:.., ..]
        macro_kernel<Kernel>(ic_end - ic, nc, steps, a_packed, b_packed, alpha, beta_here, C + ic * ldc + jc, ldc);
      }
    }
  }
}

// The own GEMM on `nthreads` OpenMP threads. C is cut into a t_m x t_n grid of rectangles, one per thread, and each
// thread runs gemm_serial on its rectangle, packing the rows of op(A) and the columns of op(B) it needs itself.
// Threads never wait for each other inside a call (a thread preempted by another process holds up nobody until the
// end). The price is that op(A) is packed t_n times and op(B) t_m times; the grid is chosen to minimise that.
template <typename Kernel, typename T>
void gemm_own(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const T* A, int64_t lda,
              const T* B, int64_t ldb, float beta, float* C, int64_t ldc, int nthreads) {
  constexpr int64_t MR = Kernel::MR, NR = Kernel::NR;
  // Strides of op(A) (M,K) and op(B) (K,N): element (r, c) is at X[r * row_stride + c * col_stride].
  const int64_t a_row = trans_a ? 1 : lda, a_col = trans_a ? lda : 1;
  const int64_t b_row = trans_b ? 1 : ldb, b_col = trans_b ? ldb : 1;
  if (nthreads == 1) return gemm_serial<Kernel>(M, N, K, alpha, A, a_row, a_col, B, b_row, b_col, beta, C, ldc);

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
      gemm_serial<Kernel>(i1 - i0, j1 - j0, K, alpha, A + i0 * a_row, a_row, a_col, B + j0 * b_col, b_row, b_col,
                          beta, C + i0 * ldc + j0, ldc);
    }
  }
}

int threads_for(int64_t M, int64_t N, int64_t K) {
  if (omp_in_parallel()) return 1;
  const int64_t by_work = std::max<int64_t>(1, M * N * K / kMinWorkPerThread);
  return static_cast<int>(std::min<int64_t>(omp_get_max_threads(), by_work));
}

// The strided batch of products with the own kernel (see gemm.h), A and B of element type T.
template <typename Kernel, typename T>
void gemm_batched_own(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const T* A,
                      int64_t lda, int64_t stride_a, const T* B, int64_t ldb, int64_t stride_b, float beta, float* C,
                      int64_t ldc, int64_t stride_c, int64_t batch) {
  if (M <= 0 || N <= 0 || batch <= 0) return;
  auto one_product = [&](int64_t i, int nthreads) {
    float* Ci = C + i * stride_c;
    if (K <= 0 || alpha == 0.0f) return scale_c(M, N, beta, Ci, ldc);
    gemm_own<Kernel>(trans_a, trans_b, M, N, K, alpha, A + i * stride_a, lda, B + i * stride_b, ldb, beta, Ci, ldc,
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

// ---------------------------------------------------------------------------------------------------------------
// Paths.
// ---------------------------------------------------------------------------------------------------------------
constexpr GemmIsa kAllIsas[] = {GemmIsa::kScalar, GemmIsa::kAvx2, GemmIsa::kAvx512, GemmIsa::kAvx512Bf16};

// FP32 (and widened f16 / bf16) runs on avx512 wherever the CPU has AVX-512F. Measured on AMD Zen 4 (2 threads,
// BERT-base shapes at 4096 tokens, the two paths alternated in one process, C 64-byte aligned): 1.01-1.05x avx2 on
// the linear layers (one shape 0.99x) and 1.08-1.14x on the attention products, although Zen 4 runs a zmm FMA as
// two halves on the same two 256-bit pipes: fewer instructions and loads per FMA, and 12-row tiles. On cores with
// full-width AVX-512 (Zen 5, Intel server parts) its peak is twice avx2's (not measured here). All paths give the
// same bits (gemm_kernels.h), so this choice changes speed only. BERTFORGE_GEMM_ISA=avx2 overrides it.
constexpr bool kPreferAvx512ForFp32 = true;

bool takes_16_or_32_bit_float(DType type) {
  return type == DType::kF32 || type == DType::kBF16 || type == DType::kF16;
}

// The batch on path `isa`, operands of type T; the path must be available and take T (checked by the callers).
template <typename T>
void run_on(GemmIsa isa, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const T* A,
            int64_t lda, int64_t stride_a, const T* B, int64_t ldb, int64_t stride_b, float beta, float* C,
            int64_t ldc, int64_t stride_c, int64_t batch) {
  auto run = [&](auto kernel) {
    gemm_batched_own<decltype(kernel)>(trans_a, trans_b, M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b, beta, C,
                                       ldc, stride_c, batch);
  };
  switch (isa) {
    case GemmIsa::kScalar: return run(ScalarKernel{});
    case GemmIsa::kAvx2: return run(Avx2Kernel{});
    case GemmIsa::kAvx512: return run(Avx512Kernel{});
    case GemmIsa::kAvx512Bf16:
      if constexpr (std::is_same_v<T, bf16>) return run(Avx512Bf16Kernel{});
      break;
  }
  BF_FAIL("GEMM path ", gemm_isa_name(isa), " does not take ", dtype_name(DTypeOf<T>::value), " operands");
}

// Operands given as void* (the 16-bit entry points): dispatch on their type once.
void run_on_typed(GemmIsa isa, DType input_type, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                  float alpha, const void* A, int64_t lda, int64_t stride_a, const void* B, int64_t ldb,
                  int64_t stride_b, float beta, float* C, int64_t ldc, int64_t stride_c, int64_t batch) {
  auto run = [&](auto tag) {
    using T = decltype(tag);
    run_on(isa, trans_a, trans_b, M, N, K, alpha, static_cast<const T*>(A), lda, stride_a, static_cast<const T*>(B),
           ldb, stride_b, beta, C, ldc, stride_c, batch);
  };
  switch (input_type) {
    case DType::kF32: return run(float{});
    case DType::kBF16: return run(bf16{});
    case DType::kF16: return run(f16{});
    default: break;
  }
  BF_FAIL("GEMM: operands must be f32, bf16 or f16, got ", dtype_name(input_type));
}

std::string available_isas_text() {
  std::string text;
  for (GemmIsa isa : gemm_available_isas()) text += std::string(text.empty() ? "" : ", ") + gemm_isa_name(isa);
  return text;
}

// BERTFORGE_GEMM_ISA, checked once: nothing when unset or empty, an error when unknown or unavailable.
std::optional<GemmIsa> forced_isa() {
  static const std::optional<GemmIsa> forced = []() -> std::optional<GemmIsa> {
    const char* name = std::getenv("BERTFORGE_GEMM_ISA");
    if (name == nullptr || *name == '\0') return std::nullopt;
    for (GemmIsa isa : kAllIsas) {
      if (std::string(name) != gemm_isa_name(isa)) continue;
      BF_CHECK(gemm_isa_available(isa), "BERTFORGE_GEMM_ISA=", name, ": this CPU (or build) lacks that GEMM path; ",
               "available here: ", available_isas_text());
      return isa;
    }
    BF_FAIL("BERTFORGE_GEMM_ISA=", name, ": expected scalar, avx2, avx512 or avx512-bf16");
  }();
  return forced;
}

GemmIsa default_isa(DType input_type) {
  if (input_type == DType::kBF16 && gemm_isa_available(GemmIsa::kAvx512Bf16)) return GemmIsa::kAvx512Bf16;
  if (kPreferAvx512ForFp32 && gemm_isa_available(GemmIsa::kAvx512)) return GemmIsa::kAvx512;
  if (gemm_isa_available(GemmIsa::kAvx2)) return GemmIsa::kAvx2;
  return GemmIsa::kScalar;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// Public entry points.
// ---------------------------------------------------------------------------------------------------------------
const char* gemm_isa_name(GemmIsa isa) {
  switch (isa) {
    case GemmIsa::kScalar: return "scalar";
    case GemmIsa::kAvx2: return "avx2";
    case GemmIsa::kAvx512: return "avx512";
    case GemmIsa::kAvx512Bf16: return "avx512-bf16";
  }
  return "?";
}

bool gemm_isa_available(GemmIsa isa) {
  switch (isa) {
    case GemmIsa::kScalar: return ScalarKernel::cpu_supports();
    case GemmIsa::kAvx2: return Avx2Kernel::cpu_supports();
    case GemmIsa::kAvx512: return Avx512Kernel::cpu_supports();
    case GemmIsa::kAvx512Bf16: return Avx512Bf16Kernel::cpu_supports();
  }
  return false;
}

bool gemm_isa_accepts(GemmIsa isa, DType input_type) {
  return isa == GemmIsa::kAvx512Bf16 ? input_type == DType::kBF16 : takes_16_or_32_bit_float(input_type);
}

std::vector<GemmIsa> gemm_available_isas() {
  std::vector<GemmIsa> isas;
  for (GemmIsa isa : kAllIsas) {
    if (gemm_isa_available(isa)) isas.push_back(isa);
  }
  return isas;
}

GemmIsa gemm_isa_for(DType input_type) {
  BF_CHECK(takes_16_or_32_bit_float(input_type), "gemm_isa_for: operands must be f32, bf16 or f16, got ",
           dtype_name(input_type));
  static const GemmIsa chosen[3] = {default_isa(DType::kF32), default_isa(DType::kBF16), default_isa(DType::kF16)};
  const std::optional<GemmIsa> forced = forced_isa();
  if (forced && gemm_isa_accepts(*forced, input_type)) return *forced;
  return chosen[input_type == DType::kF32 ? 0 : input_type == DType::kBF16 ? 1 : 2];
}

void gemm_strided_batched_on(GemmIsa isa, DType input_type, bool trans_a, bool trans_b, int64_t M, int64_t N,
                             int64_t K, float alpha, const void* A, int64_t lda, int64_t stride_a, const void* B,
                             int64_t ldb, int64_t stride_b, float beta, float* C, int64_t ldc, int64_t stride_c,
                             int64_t batch) {
  BF_CHECK(gemm_isa_available(isa), "GEMM path ", gemm_isa_name(isa), " is not available on this CPU or in this ",
           "build; available here: ", available_isas_text());
  BF_CHECK(gemm_isa_accepts(isa, input_type), "GEMM path ", gemm_isa_name(isa), " does not take ",
           dtype_name(input_type), " operands");
  run_on_typed(isa, input_type, trans_a, trans_b, M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b, beta, C, ldc,
               stride_c, batch);
}

void gemm_strided_batched_16(DType input_type, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                             float alpha, const void* A, int64_t lda, int64_t stride_a, const void* B, int64_t ldb,
                             int64_t stride_b, float beta, float* C, int64_t ldc, int64_t stride_c, int64_t batch) {
  BF_CHECK(input_type == DType::kBF16 || input_type == DType::kF16,
           "gemm_strided_batched_16: inputs must be bf16 or f16, got ", dtype_name(input_type));
  run_on_typed(gemm_isa_for(input_type), input_type, trans_a, trans_b, M, N, K, alpha, A, lda, stride_a, B, ldb,
               stride_b, beta, C, ldc, stride_c, batch);
}

std::string gemm_paths_summary() {
  auto path = [](DType type) {
    const GemmIsa isa = gemm_isa_for(type);
    const bool widened = type != DType::kF32 && isa != GemmIsa::kAvx512Bf16;
    return std::string(dtype_name(type)) + " " + gemm_isa_name(isa) + (widened ? " (widened)" : "");
  };
#if defined(BERTFORGE_USE_OPENBLAS)
  const std::string fp32 = "f32 openblas";
#else
  const std::string fp32 = path(DType::kF32);
#endif
  return fp32 + ", " + path(DType::kBF16) + ", " + path(DType::kF16);
}

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

const char* gemm_backend_name() {
  switch (gemm_isa_for(DType::kF32)) {
    case GemmIsa::kAvx512: return "own-avx512";
    case GemmIsa::kAvx2: return "own-avx2";
    default: return "own-scalar";
  }
}

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  run_on(gemm_isa_for(DType::kF32), trans_a, trans_b, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1);
}

void gemm_strided_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                          const float* A, int64_t lda, int64_t stride_a, const float* B, int64_t ldb,
                          int64_t stride_b, float beta, float* C, int64_t ldc, int64_t stride_c, int64_t batch) {
  run_on(gemm_isa_for(DType::kF32), trans_a, trans_b, M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b, beta, C,
         ldc, stride_c, batch);
}

#endif

}  // namespace bertforge::cpu
