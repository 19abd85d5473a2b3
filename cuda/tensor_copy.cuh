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

// A 16-byte word (uint4 on a GPU; a plain struct here, so the simulator has it too).
struct alignas(16) Word16 {
  uint64_t low, high;
};

// Calls fn(Word{}) with the unsigned integer type of `element_size` bytes (16: Word16).
template <typename Fn>
void visit_word_size(size_t element_size, const char* what, Fn&& fn) {
  switch (element_size) {
    case 1: fn(uint8_t{}); break;
    case 2: fn(uint16_t{}); break;
    case 4: fn(uint32_t{}); break;
    case 8: fn(uint64_t{}); break;
    case 16: fn(Word16{}); break;
    default: BF_FAIL(what, ": elements of ", element_size, " bytes");
  }
}

// The same copy with fewer index computations per byte, in two rewrites of the layout (host side):
//   1. dims of size 1 go, and dim d merges into d + 1 where both views step over d exactly as over a whole
//      row of d + 1 (stride[d] == shape[d+1] * stride[d+1] in src and dst): a permuted (B,T,H,D) -> (B,H,T,D)
//      keeps 4 dims, a transpose 2, a plain contiguous copy 1;
//   2. when the last dim is contiguous in both views, its runs move as words of up to 16 bytes (uint4), where
//      the run length, the other strides and both addresses allow: 4 floats per thread instead of one.
// Returns the word size in bytes; layout and element counts are rewritten in words.
inline size_t simplify_copy_layout(StridedCopyLayout& layout, size_t element_size, const void* dst, const void* src) {
  StridedCopyLayout merged{};
  for (int d = 0; d < layout.dims; ++d) {
    if (layout.shape[d] == 1) continue;
    const int last = merged.dims - 1;
    if (last >= 0 && merged.dst_strides[last] == layout.shape[d] * layout.dst_strides[d] &&
        merged.src_strides[last] == layout.shape[d] * layout.src_strides[d]) {
      merged.shape[last] *= layout.shape[d];
      merged.dst_strides[last] = layout.dst_strides[d];
      merged.src_strides[last] = layout.src_strides[d];
      continue;
    }
    merged.shape[merged.dims] = layout.shape[d];
    merged.dst_strides[merged.dims] = layout.dst_strides[d];
    merged.src_strides[merged.dims] = layout.src_strides[d];
    ++merged.dims;
  }
  layout = merged;
  const int last = layout.dims - 1;
  if (last < 0 || layout.dst_strides[last] != 1 || layout.src_strides[last] != 1) return element_size;
  for (size_t word = 16; word > element_size; word /= 2) {
    const auto fits = [&](int64_t elements) { return elements * static_cast<int64_t>(element_size) % word == 0; };
    bool ok = fits(layout.shape[last]) && reinterpret_cast<uintptr_t>(dst) % word == 0 &&
              reinterpret_cast<uintptr_t>(src) % word == 0;
    for (int d = 0; d < last && ok; ++d) ok = fits(layout.dst_strides[d]) && fits(layout.src_strides[d]);
    if (!ok) continue;
    const int64_t per_word = static_cast<int64_t>(word / element_size);
    layout.shape[last] /= per_word;
    for (int d = 0; d < last; ++d) layout.dst_strides[d] /= per_word, layout.src_strides[d] /= per_word;
    return word;
  }
  return element_size;
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
  const size_t word_size = simplify_copy_layout(layout, element_size, dst, src);
  const int64_t words = n * static_cast<int64_t>(element_size) / static_cast<int64_t>(word_size);
  visit_word_size(word_size, "copy_strided", [&](auto word) {
    using Word = decltype(word);
    BF_LAUNCH(strided_copy_kernel<Word>, blocks_for(words, kCopyThreads), kCopyThreads, 0, static_cast<Word*>(dst),
              static_cast<const Word*>(src), layout, words);
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
