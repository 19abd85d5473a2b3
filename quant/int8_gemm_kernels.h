// quant/int8_gemm_kernels.h — internal to the int8 GEMM: the register-tile microkernels, one per instruction set.
//
// A microkernel computes one MR x NR tile of int32 sums over kq groups of 4 k:
//   tile[r * NR + c] = sum over g < kq, t < 4 of  a[g * MR * 4 + r * 4 + t] * b[g * NR * 4 + c * 4 + t]
// where a is a packed MR-row panel of activations (uint8, or int8 holding a - 128 when signed_a) and b a KC-block of
// one weight panel (int8, layout in int8_gemm.h). The tile is overwritten. The driver (int8_gemm.cpp) does the
// blocking, packing, threading and epilogue for all of them.
#pragma once

#include <cstdint>

#include "quant/int8_gemm.h"

namespace bertforge::quant::detail {

struct Int8Microkernel {
  Int8GemmIsa isa;
  int64_t mr, nr;   // register tile
  int64_t kc;       // K block (multiple of 4): an A panel (MR x KC) and a B panel (KC x NR) share L1
  bool signed_a;    // the A panel holds a - 128 as int8 (the driver adds 128 * rowsum back)
  int max_a_bits;   // exact only for activation codes below 2^max_a_bits
  void (*run)(int64_t kq, const uint8_t* a, const int8_t* b, int32_t* tile);
  bool (*cpu_supports)();
};

// nullptr when the path is not compiled into this build.
const Int8Microkernel* scalar_microkernel();
const Int8Microkernel* avx2_microkernel();
const Int8Microkernel* avx2_7bit_microkernel();  // AVX2, activations of at most 7 bits: same weight layout
const Int8Microkernel* avx512_vnni_microkernel();

}  // namespace bertforge::quant::detail
