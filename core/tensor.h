// Tensor: a typed, strided view into a Storage, plus its autograd slot.
//
// A Tensor is a cheap handle (shared pointer to TensorImpl). Copying a Tensor
// aliases it; `clone()` copies the bytes. View operations here (view, reshape,
// permute, transpose, slice, unsqueeze) share storage and are NOT recorded by
// autograd: the differentiable versions live in ops/shape.h.
//
// Shapes and strides are in elements; `offset` is the element index of the
// first element inside the storage.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "core/check.h"
#include "core/device.h"
#include "core/dtype.h"
#include "core/storage.h"

namespace bertforge {

using Shape = std::vector<int64_t>;

namespace autograd {
class Node;
}  // namespace autograd
struct AutogradMeta;

class Tensor {
 public:
  Tensor() = default;  // an undefined tensor (defined() == false)

  // ---- Factories ----------------------------------------------------------
  static Tensor empty(const Shape& shape, DType dtype = DType::kF32, Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype = DType::kF32, Device device = Device::cpu());
  static Tensor ones(const Shape& shape, DType dtype = DType::kF32, Device device = Device::cpu());
  static Tensor full(const Shape& shape, float value, DType dtype = DType::kF32,
                     Device device = Device::cpu());
  // Copies `values` (row-major, numel == values.size()) into a new CPU tensor.
  template <typename T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape);
  static Tensor scalar(float value) { return full({}, value); }
  static Tensor empty_like(const Tensor& t) { return empty(t.shape(), t.dtype(), t.device()); }
  static Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype(), t.device()); }

  // ---- Metadata -----------------------------------------------------------
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  const Shape& strides() const;
  int64_t dim() const { return static_cast<int64_t>(shape().size()); }
  int64_t size(int64_t d) const;  // d may be negative (counts from the end)
  int64_t stride(int64_t d) const;
  int64_t numel() const;
  int64_t offset() const;
  DType dtype() const;
  Device device() const;
  bool is_contiguous() const;
  int64_t nbytes() const { return numel() * dtype_size(dtype()); }
  std::string shape_str() const;  // "[2, 3, 4]"
  std::string str() const;        // "Tensor(f32, cpu, [2, 3])"
  const std::shared_ptr<Storage>& storage() const;
  // True if both are views into the same Storage.
  bool shares_storage_with(const Tensor& other) const;

  // ---- Element access (CPU) -----------------------------------------------
  // Pointer to the first element; checks that T matches the dtype.
  template <typename T>
  T* data() const;
  void* raw_data() const;  // any device; points at the first element
  template <typename T>
  T item() const;  // the single element of a one-element tensor, converted to T
  // All elements in row-major order, converted to float (any dtype, any strides, CPU).
  std::vector<float> to_float_vector() const;
  // One element by multi-index, converted to float.
  float at(std::initializer_list<int64_t> index) const;

  // ---- Views (share storage; not recorded by autograd) ---------------------
  // `view` needs strides compatible with the new shape; -1 infers one dim.
  Tensor view(Shape shape) const;
  // `reshape` is `view` when possible, else a contiguous copy.
  Tensor reshape(Shape shape) const;
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor transpose(int64_t dim0, int64_t dim1) const;
  // Elements [start, end) along `dim` (negative indices count from the end).
  Tensor slice(int64_t dim, int64_t start, int64_t end) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor squeeze(int64_t dim) const;  // dim must have size 1
  // Broadcasts size-1 (or missing leading) dims to `shape` with stride 0.
  Tensor expand(const Shape& shape) const;
  // Same bytes, no autograd history.
  Tensor detach() const;

  // ---- Copies ---------------------------------------------------------------
  Tensor contiguous() const;  // itself if already contiguous
  Tensor clone() const;       // always a fresh contiguous copy
  Tensor to(DType dtype) const;
  Tensor to(Device device) const;
  // Element-wise copy from `src` (same shape; any strides and dtype) into this.
  void copy_(const Tensor& src);
  void fill_(float value);
  // Moves this tensor's elements to `device` in place (contiguous there): every handle of this tensor, e.g. a
  // module's parameter and its registry entry, sees the new device. Its gradient, if any, is dropped.
  void move_to_(Device device);

  // ---- Autograd slot (filled by autograd/) ----------------------------------
  bool requires_grad() const;
  // Marks a leaf tensor as a parameter whose gradient accumulates in grad().
  Tensor& set_requires_grad(bool requires_grad);
  // The accumulated gradient of a leaf (undefined before the first backward).
  Tensor grad() const;
  void set_grad(const Tensor& grad);
  AutogradMeta* autograd_meta() const;
  // The slot itself (created on first use), shared so graph edges can hold it.
  const std::shared_ptr<AutogradMeta>& autograd_meta_ptr();

 private:
  struct Impl;
  explicit Tensor(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  Tensor with_geometry(Shape shape, Shape strides, int64_t offset) const;
  const Impl& impl() const;
  std::shared_ptr<Impl> impl_;
};

// What autograd keeps per tensor: the flag, the accumulated gradient of a
// leaf, and the node that produced a non-leaf.
struct AutogradMeta {
  bool requires_grad = false;
  Tensor grad;
  std::shared_ptr<autograd::Node> grad_fn;
};

// Contiguous row-major strides for `shape`.
Shape contiguous_strides(const Shape& shape);
int64_t shape_numel(const Shape& shape);
std::string shape_to_string(const Shape& shape);
// Wraps a possibly negative dimension index into [0, ndim); throws if out of range.
int64_t wrap_dim(int64_t dim, int64_t ndim);

// ---- Template definitions ----------------------------------------------------

template <typename T>
T* Tensor::data() const {
  BF_CHECK(DTypeOf<T>::value == dtype(), "data<", dtype_name(DTypeOf<T>::value),
           ">() on a tensor of dtype ", dtype_name(dtype()));
  return static_cast<T*>(raw_data());
}

template <typename T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape) {
  BF_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape), "from_vector: ", values.size(),
           " values for shape ", shape_to_string(shape));
  Tensor t = empty(shape, DTypeOf<T>::value);
  std::copy(values.begin(), values.end(), t.data<T>());
  return t;
}

// Converts between element types: through float for 16-bit floats, directly otherwise.
template <typename To, typename From>
inline To convert_element(From v) {
  if constexpr (std::is_same_v<To, From>) {
    return v;
  } else if constexpr (std::is_same_v<From, bf16> || std::is_same_v<From, f16>) {
    return convert_element<To>(to_float(v));
  } else if constexpr (std::is_same_v<To, bf16> || std::is_same_v<To, f16>) {
    return from_float<To>(static_cast<float>(v));
  } else {
    return static_cast<To>(v);
  }
}

template <typename T>
T Tensor::item() const {
  BF_CHECK(numel() == 1, "item() on a tensor with ", numel(), " elements");
  BF_CHECK(device().is_cpu(), "item() on a ", device().str(), " tensor; call .to(Device::cpu()) first");
  return visit_dtype(dtype(), [&](auto tag) {
    using S = decltype(tag);
    return convert_element<T>(*static_cast<const S*>(raw_data()));
  });
}

}  // namespace bertforge
