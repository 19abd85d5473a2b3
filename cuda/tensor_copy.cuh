// CUDA kernels behind Tensor::copy_ of strided views, dtype conversions and Tensor::fill_
// on a GPU (the DeviceInterface of cuda/device.cu). Copies and fills move raw 1, 2, 4 or
// 8-byte words, so one kernel serves every dtype; conversions between f32, bf16 and f16 go
// through float with core/half.h's rounding. CPU reference: core/tensor.cpp.
#pragma once

#include <cstdint>
#include <cstring>

#include "core/check.h"
#include "core/device.h"
#include "core/half.h"
#include "cuda/portable.cuh"

namespace bertforge::cuda {

constexpr int kCopyThreads = 256;

// A view's geometry, passed to the kernel by value. Strides in elements.
struct StridedCopyLayout {
  int dims;
  int64_t shape[kMaxStridedCopyDims];
  int64_t dst_strides[kMaxStridedCopyDims];
  int64_t src_strides[kMaxStridedCopyDims];
};

// One thread per element: the element's index in `shape` (row-major) gives both offsets.
template <typename Word>
__global__ void strided_copy_kernel(Word* dst, const Word* src, StridedCopyLayout layout, int64_t n) {
  int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  int64_t dst_offset = 0, src_offset = 0;
  for (int d = layout.dims - 1; d >= 0; --d) {
    const int64_t index = i % layout.shape[d];
    i /= layout.shape[d];
    dst_offset += index * layout.dst_strides[d];
    src_offset += index * layout.src_strides[d];
  }
  dst[dst_offset] = src[src_offset];
}

template <typename Word>
__global__ void fill_kernel(Word* dst, Word value, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) dst[i] = value;
}

// ---- Conversions between the floating storage types ------------------------------------------------
__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(bf16 x) { return Bf16ToFloat(x); }
__device__ __forceinline__ float to_float(f16 x) { return F16ToFloat(x); }
template <typename T>
__device__ __forceinline__ T from_float(float x);
template <>
__device__ __forceinline__ float from_float<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ bf16 from_float<bf16>(float x) {
  return FloatToBf16(x);
}
template <>
__device__ __forceinline__ f16 from_float<f16>(float x) {
  return FloatToF16(x);
}

template <typename Dst, typename Src>
__global__ void convert_kernel(Dst* dst, const Src* src, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) dst[i] = from_float<Dst>(to_float(src[i]));
}

// Calls fn(T{}) with the storage type of a floating dtype.
template <typename Fn>
void visit_floating_dtype(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::kF32: fn(float{}); break;
    case DType::kBF16: fn(bf16{}); break;
    case DType::kF16: fn(f16{}); break;
    default: BF_FAIL("convert on a GPU: f32, bf16 and f16 only, got ", dtype_name(dtype));
  }
}

// dst[0, count) = src[0, count) converted (see DeviceInterface::convert).
inline void convert(void* dst, DType dst_dtype, const void* src, DType src_dtype, int64_t count) {
  if (count == 0) return;
  visit_floating_dtype(dst_dtype, [&](auto dst_tag) {
    visit_floating_dtype(src_dtype, [&](auto src_tag) {
      using Dst = decltype(dst_tag);
      using Src = decltype(src_tag);
      void (*const convert_pair_kernel)(Dst*, const Src*, int64_t) = &convert_kernel<Dst, Src>;
      BF_LAUNCH(convert_pair_kernel, blocks_for(count, kCopyThreads), kCopyThreads, 0, static_cast<Dst*>(dst),
                static_cast<const Src*>(src), count);
    });
  });
}

// Calls fn(Word{}) with the unsigned integer type of `element_size` bytes.
template <typename Fn>
void visit_word_size(size_t element_size, const char* what, Fn&& fn) {
  switch (element_size) {
    case 1: fn(uint8_t{}); break;
    case 2: fn(uint16_t{}); break;
    case 4: fn(uint32_t{}); break;
    case 8: fn(uint64_t{}); break;
    default: BF_FAIL(what, ": elements of ", element_size, " bytes");
  }
}

// dst (shape, dst_strides) = src (shape, src_strides); see DeviceInterface::copy_strided.
inline void copy_strided(void* dst, const int64_t* dst_strides, const void* src, const int64_t* src_strides,
                         const int64_t* shape, int dims, size_t element_size) {
  BF_CHECK(dims >= 0 && dims <= kMaxStridedCopyDims, "copy_strided: ", dims, " dimensions");
  StridedCopyLayout layout{};
  layout.dims = dims;
  int64_t n = 1;
  for (int d = 0; d < dims; ++d) {
    layout.shape[d] = shape[d];
    layout.dst_strides[d] = dst_strides[d];
    layout.src_strides[d] = src_strides[d];
    n *= shape[d];
  }
  if (n == 0) return;
  visit_word_size(element_size, "copy_strided", [&](auto word) {
    using Word = decltype(word);
    BF_LAUNCH(strided_copy_kernel<Word>, blocks_for(n, kCopyThreads), kCopyThreads, 0, static_cast<Word*>(dst),
              static_cast<const Word*>(src), layout, n);
  });
}

// dst[0, count) = the `element_size` bytes at host address `value`.
inline void fill(void* dst, const void* value, size_t element_size, int64_t count) {
  if (count == 0) return;
  visit_word_size(element_size, "fill", [&](auto word) {
    using Word = decltype(word);
    std::memcpy(&word, value, sizeof(Word));
    BF_LAUNCH(fill_kernel<Word>, blocks_for(count, kCopyThreads), kCopyThreads, 0, static_cast<Word*>(dst), word,
              count);
  });
}

}  // namespace bertforge::cuda
