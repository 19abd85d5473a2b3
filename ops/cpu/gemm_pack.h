// ops/cpu/gemm_pack.h — internal to the CPU GEMM (gemm.cpp): packing operands into the FP32 panels of the scalar,
// avx2 and avx512 microkernels (layout in gemm_kernels.h), widening bf16 / f16 elements to FP32 on the way, and the
// aligned per-thread scratch buffers the panels live in.
//
// A "panel" is R lines (R = MR rows of op(A), or R = NR columns of op(B)) of length kc, stored k-major:
// panel[p * R + l] = element p of line l, so the microkernel reads one R-vector per k step.
// Element p of line l is src[l * line_stride + p * elem_stride]:
//   op(A) (M,K): line = row i,    A[i*lda + p] (line_stride lda, elem_stride 1)  or A[p*lda + i] when trans_a
//   op(B) (K,N): line = column j, B[p*ldb + j] (line_stride 1, elem_stride ldb)  or B[j*ldb + p] when trans_b
// The vector code here follows the build's flags (-march=native): packing is a small share of the time.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <type_traits>

#include "core/dtype.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

namespace bertforge::cpu::detail {

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// A growable 64-byte aligned scratch buffer. One per thread (thread_local), reused across calls so that
// steady-state GEMMs never touch the allocator.
struct PackBuffer {
  void* data = nullptr;
  int64_t capacity = 0;  // in bytes
  template <typename T>
  T* get(int64_t n) {
    const int64_t bytes = n * int64_t{sizeof(T)};
    if (bytes > capacity) {
      std::free(data);
      data = std::aligned_alloc(64, static_cast<size_t>(round_up(bytes, 64)));
      if (data == nullptr) throw std::bad_alloc();
      capacity = bytes;
    }
    return static_cast<T*>(data);
  }
  ~PackBuffer() { std::free(data); }
};

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
      float* lines = widened.get<float>(R * kc);
      for (int64_t l = 0; l < width; ++l) widen_run(src + l * line_stride, lines + l * kc, kc);
      return pack_transposed_panel<R, float>(lines, kc, 1, width, kc, dst);
    }
  }
  int64_t p = 0;
#if defined(__AVX2__) && defined(__FMA__)
  // The B panel of x @ W^T and the A panel of x @ W: 8x8 register transposes, 64 floats at a time; the lines
  // beyond the last multiple of 8 (R = 12: lines 8..11 of each block) one by one.
  if constexpr (R >= 8 && std::is_same_v<T, float>) {
    if (width == R && elem_stride == 1) {
      constexpr int64_t kVector = R / 8 * 8;
      for (; p + 8 <= kc; p += 8) {
        for (int64_t l = 0; l < kVector; l += 8) {
          transpose_8x8(src + l * line_stride + p, line_stride, dst + p * R + l, R);
        }
        for (int64_t l = kVector; l < R; ++l) {
          for (int64_t q = p; q < p + 8; ++q) dst[q * R + l] = src[l * line_stride + q];
        }
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
      } else if (width == R) {  // a fixed-size copy the compiler turns into vector moves
        std::memcpy(out, row + q * R, R * sizeof(float));
      } else {
        std::memcpy(out, row + q * R, width * sizeof(float));
        std::fill(out + width, out + R, 0.0f);
      }
    }
  }
}

}  // namespace bertforge::cpu::detail
