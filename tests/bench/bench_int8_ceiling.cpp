// tests/bench/bench_int8_ceiling.cpp — how much faster than FP32 an int8 GEMM can possibly be on this CPU: the
// instruction-throughput ceiling of each exact int8 multiply-add sequence against the FP32 FMA, on one core.
//
// Each figure times a loop of independent multiply-adds with no memory traffic (registers only, written in inline
// assembly so the compiler cannot merge or spill them): the most that instruction sequence can deliver, which a real
// GEMM kernel (loads, packing, epilogue) approaches but never reaches. Units: GMAC/s (multiply-adds per second).
//   fp32 fma       vfmadd231ps ymm: 8 MACs per instruction (the FP32 GEMM's inner loop)
//   u8s8 sign      vpabsb + vpsignb + vpmaddubsw + vpmaddwd + vpaddd: exact uint8 x int8, the sign trick of
//                  quant/int8_gemm_avx2.cpp (one vpabsb per activation row, one vpsignb per weight register)
//   s16 madd       vpmaddwd + vpaddd on int16 operands: exact, 16 MACs per vpmaddwd
//   u7s8 pair      vpmaddubsw + vpmaddwd(ones) + vpaddd: exact only when activations fit 7 bits (a <= 127), as
//                  fbgemm's "reduce_range"; with 8-bit activations vpmaddubsw saturates
//   vnni           vpdpbusd zmm (AVX-512 VNNI): 64 MACs per instruction, exact; only where the CPU has it, against
//                  vfmadd231ps zmm
// The ratio of a sequence to fp32 fma bounds the int8 GEMM's speed-up over an equally efficient FP32 GEMM; with the
// non-GEMM share of inference unchanged, the end-to-end bound is lower still (Amdahl).
//
// Usage: bench_int8_ceiling   (x86-64 only)
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>

namespace {

constexpr int64_t kIterations = 50'000'000;

// Best of three timings of fn(kIterations), in multiply-adds per second, given the MACs of one iteration.
template <typename Fn>
double gmacs(Fn fn, double macs_per_iteration) {
  double best = 1e30;
  for (int repeat = 0; repeat < 3; ++repeat) {
    const auto start = std::chrono::steady_clock::now();
    fn(kIterations);
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return macs_per_iteration * static_cast<double>(kIterations) / best / 1e9;
}

#if defined(__x86_64__)

#define BF_CLOBBER_YMM                                                                                      \
  "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", \
      "xmm12", "xmm13", "xmm14", "xmm15"

// 12 independent FMAs (latency 4 x 2 pipes needs 8): 96 MACs per iteration.
__attribute__((target("avx2,fma"))) void fp32_fma(int64_t n) {
  __asm__ volatile(
      "vxorps %%ymm14, %%ymm14, %%ymm14\n\tvxorps %%ymm15, %%ymm15, %%ymm15\n"
      "1:\n\t"
      "vfmadd231ps %%ymm14, %%ymm15, %%ymm0\n\tvfmadd231ps %%ymm14, %%ymm15, %%ymm1\n\t"
      "vfmadd231ps %%ymm14, %%ymm15, %%ymm2\n\tvfmadd231ps %%ymm14, %%ymm15, %%ymm3\n\t"
      "vfmadd231ps %%ymm14, %%ymm15, %%ymm4\n\tvfmadd231ps %%ymm14, %%ymm15, %%ymm5\n\t"
      "vfmadd231ps %%ymm14, %%ymm15, %%ymm6\n\tvfmadd231ps %%ymm14, %%ymm15, %%ymm7\n\t"
      "vfmadd231ps %%ymm14, %%ymm15, %%ymm8\n\tvfmadd231ps %%ymm14, %%ymm15, %%ymm9\n\t"
      "vfmadd231ps %%ymm14, %%ymm15, %%ymm10\n\tvfmadd231ps %%ymm14, %%ymm15, %%ymm11\n\t"
      "dec %0\n\tjnz 1b\n"
      : "+r"(n)
      :
      : BF_CLOBBER_YMM);
}

// The 4 x 16 tile of the AVX2 kernel: per activation row (ymm8, 14, 7, 6) one vpabsb, and per weight register
// (ymm12, 13) vpsignb, vpmaddubsw, vpmaddwd with ones (ymm15), vpaddd into accumulators: 256 MACs per iteration.
#define BF_SIGN_ROW(act, acc0, acc1)                                                                           \
  "vpabsb %%ymm" act ", %%ymm9\n\t"                                                                            \
  "vpsignb %%ymm" act ", %%ymm12, %%ymm10\n\tvpmaddubsw %%ymm10, %%ymm9, %%ymm10\n\t"                           \
  "vpmaddwd %%ymm15, %%ymm10, %%ymm10\n\tvpaddd %%ymm10, %%ymm" acc0 ", %%ymm" acc0 "\n\t"                      \
  "vpsignb %%ymm" act ", %%ymm13, %%ymm11\n\tvpmaddubsw %%ymm11, %%ymm9, %%ymm11\n\t"                           \
  "vpmaddwd %%ymm15, %%ymm11, %%ymm11\n\tvpaddd %%ymm11, %%ymm" acc1 ", %%ymm" acc1 "\n\t"

__attribute__((target("avx2"))) void u8s8_sign(int64_t n) {
  __asm__ volatile("1:\n\t" BF_SIGN_ROW("8", "0", "1") BF_SIGN_ROW("14", "2", "3") BF_SIGN_ROW("7", "4", "5")
                       BF_SIGN_ROW("6", "5", "4") "dec %0\n\tjnz 1b\n"
                   : "+r"(n)
                   :
                   : BF_CLOBBER_YMM);
}
#undef BF_SIGN_ROW

// Eight vpmaddwd + vpaddd on int16 operands: 8 x 16 = 128 MACs per iteration.
#define BF_MADD(act, weight, tmp, acc) \
  "vpmaddwd %%ymm" weight ", %%ymm" act ", %%ymm" tmp "\n\tvpaddd %%ymm" tmp ", %%ymm" acc ", %%ymm" acc "\n\t"

__attribute__((target("avx2"))) void s16_madd(int64_t n) {
  __asm__ volatile("1:\n\t" BF_MADD("8", "12", "9", "0") BF_MADD("8", "13", "10", "1") BF_MADD("14", "12", "9", "2")
                       BF_MADD("14", "13", "10", "3") BF_MADD("7", "12", "9", "4") BF_MADD("7", "13", "10", "5")
                           BF_MADD("15", "12", "9", "6") BF_MADD("15", "13", "10", "11") "dec %0\n\tjnz 1b\n"
                   : "+r"(n)
                   :
                   : BF_CLOBBER_YMM);
}
#undef BF_MADD

// Eight vpmaddubsw + vpmaddwd(ones in ymm15) + vpaddd: 8 x 32 = 256 MACs per iteration.
#define BF_PAIR(act, weight, tmp, acc)                                                                     \
  "vpmaddubsw %%ymm" weight ", %%ymm" act ", %%ymm" tmp "\n\tvpmaddwd %%ymm15, %%ymm" tmp ", %%ymm" tmp \
  "\n\tvpaddd %%ymm" tmp ", %%ymm" acc ", %%ymm" acc "\n\t"

__attribute__((target("avx2"))) void u7s8_pair(int64_t n) {
  __asm__ volatile("1:\n\t" BF_PAIR("8", "12", "9", "0") BF_PAIR("8", "13", "10", "1") BF_PAIR("14", "12", "9", "2")
                       BF_PAIR("14", "13", "10", "3") BF_PAIR("7", "12", "9", "4") BF_PAIR("7", "13", "10", "5")
                           BF_PAIR("6", "12", "9", "11") BF_PAIR("6", "13", "10", "11") "dec %0\n\tjnz 1b\n"
                   : "+r"(n)
                   :
                   : BF_CLOBBER_YMM);
}
#undef BF_PAIR

#define BF_CLOBBER_ZMM "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", \
                       "xmm10", "xmm11", "xmm14", "xmm15"

// 12 independent zmm FMAs: 192 MACs per iteration (the FP32 peak of an AVX-512 core).
__attribute__((target("avx512f"))) void fp32_fma_zmm(int64_t n) {
  __asm__ volatile(
      "vxorps %%zmm14, %%zmm14, %%zmm14\n\tvxorps %%zmm15, %%zmm15, %%zmm15\n"
      "1:\n\t"
      "vfmadd231ps %%zmm14, %%zmm15, %%zmm0\n\tvfmadd231ps %%zmm14, %%zmm15, %%zmm1\n\t"
      "vfmadd231ps %%zmm14, %%zmm15, %%zmm2\n\tvfmadd231ps %%zmm14, %%zmm15, %%zmm3\n\t"
      "vfmadd231ps %%zmm14, %%zmm15, %%zmm4\n\tvfmadd231ps %%zmm14, %%zmm15, %%zmm5\n\t"
      "vfmadd231ps %%zmm14, %%zmm15, %%zmm6\n\tvfmadd231ps %%zmm14, %%zmm15, %%zmm7\n\t"
      "vfmadd231ps %%zmm14, %%zmm15, %%zmm8\n\tvfmadd231ps %%zmm14, %%zmm15, %%zmm9\n\t"
      "vfmadd231ps %%zmm14, %%zmm15, %%zmm10\n\tvfmadd231ps %%zmm14, %%zmm15, %%zmm11\n\t"
      "dec %0\n\tjnz 1b\n"
      : "+r"(n)
      :
      : BF_CLOBBER_ZMM);
}

// 12 independent vpdpbusd zmm: 12 x 64 = 768 MACs per iteration.
__attribute__((target("avx512f,avx512vnni"))) void vnni_zmm(int64_t n) {
  __asm__ volatile(
      "vpxord %%zmm14, %%zmm14, %%zmm14\n\tvpxord %%zmm15, %%zmm15, %%zmm15\n"
      "1:\n\t"
      "vpdpbusd %%zmm14, %%zmm15, %%zmm0\n\tvpdpbusd %%zmm14, %%zmm15, %%zmm1\n\t"
      "vpdpbusd %%zmm14, %%zmm15, %%zmm2\n\tvpdpbusd %%zmm14, %%zmm15, %%zmm3\n\t"
      "vpdpbusd %%zmm14, %%zmm15, %%zmm4\n\tvpdpbusd %%zmm14, %%zmm15, %%zmm5\n\t"
      "vpdpbusd %%zmm14, %%zmm15, %%zmm6\n\tvpdpbusd %%zmm14, %%zmm15, %%zmm7\n\t"
      "vpdpbusd %%zmm14, %%zmm15, %%zmm8\n\tvpdpbusd %%zmm14, %%zmm15, %%zmm9\n\t"
      "vpdpbusd %%zmm14, %%zmm15, %%zmm10\n\tvpdpbusd %%zmm14, %%zmm15, %%zmm11\n\t"
      "dec %0\n\tjnz 1b\n"
      : "+r"(n)
      :
      : BF_CLOBBER_ZMM);
}

#endif  // __x86_64__

}  // namespace

int main() {
#if defined(__x86_64__)
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
    std::printf("bench_int8_ceiling: this CPU has no AVX2/FMA; nothing to measure\n");
    return 0;
  }
  std::printf("bench_int8_ceiling: one core, register-only loops, best of 3 (GMAC/s; ratio to fp32 fma)\n");
  const double fma = gmacs(fp32_fma, 96);
  std::printf("fp32 fma     %6.1f GMAC/s  x1.00\n", fma);
  const struct {
    const char* name;
    void (*loop)(int64_t);
    double macs;
    const char* note;
  } sequences[] = {
      {"u8s8 sign", u8s8_sign, 256, "exact for 8-bit activations: the AVX2 kernel's sequence"},
      {"s16 madd", s16_madd, 128, "exact, int16 operands"},
      {"u7s8 pair", u7s8_pair, 256, "exact only for activations of at most 7 bits"},
  };
  for (const auto& s : sequences) {
    const double rate = gmacs(s.loop, s.macs);
    std::printf("%-12s %6.1f GMAC/s  x%.2f  %s\n", s.name, rate, rate / fma, s.note);
  }
  if (__builtin_cpu_supports("avx512vnni")) {
    const double fma_zmm = gmacs(fp32_fma_zmm, 192), vnni = gmacs(vnni_zmm, 768);
    std::printf("fp32 fma zmm %6.1f GMAC/s\nvnni zmm     %6.1f GMAC/s  x%.2f of fp32 fma zmm  exact for 8-bit\n",
                fma_zmm, vnni, vnni / fma_zmm);
  } else {
    std::printf("vnni         not on this CPU (no AVX-512 VNNI)\n");
  }
#else
  std::printf("bench_int8_ceiling: x86-64 only\n");
#endif
  return 0;
}
