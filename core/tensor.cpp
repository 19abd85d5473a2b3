// Tensor metadata, factories, views and copies.
#include "core/tensor.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace bertforge {

struct Tensor::Impl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Shape strides;
  int64_t offset = 0;  // in elements
  DType dtype = DType::kF32;
  std::shared_ptr<AutogradMeta> autograd;
};

// ---- Free helpers --------------------------------------------------------------

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  int64_t running = 1;
  for (int64_t i = static_cast<int64_t>(shape.size()) - 1; i >= 0; --i) {
    strides[i] = running;
    running *= std::max<int64_t>(shape[i], 1);
  }
  return strides;
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

std::string shape_to_string(const Shape& shape) { return absl::StrCat("[", absl::StrJoin(shape, ", "), "]"); }

int64_t wrap_dim(int64_t dim, int64_t ndim) {
  BF_CHECK(dim >= -ndim && dim < ndim, "dimension ", dim, " out of range for a ", ndim, "-d tensor");
  return dim < 0 ? dim + ndim : dim;
}

// ---- Factories ------------------------------------------------------------------

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t s : shape) BF_CHECK(s >= 0, "negative size in shape ", shape_to_string(shape));
  auto impl = std::make_shared<Impl>();
  impl->storage = std::make_shared<Storage>(shape_numel(shape) * dtype_size(dtype), device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.fill_(0.0f);
  return t;
}

Tensor Tensor::ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1.0f, dtype, device); }

Tensor Tensor::full(const Shape& shape, float value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.fill_(value);
  return t;
}

// ---- Metadata -------------------------------------------------------------------

const Tensor::Impl& Tensor::impl() const {
  BF_CHECK(impl_ != nullptr, "use of an undefined tensor");
  return *impl_;
}
const Shape& Tensor::shape() const { return impl().shape; }
const Shape& Tensor::strides() const { return impl().strides; }
int64_t Tensor::size(int64_t d) const { return shape()[wrap_dim(d, dim())]; }
int64_t Tensor::stride(int64_t d) const { return strides()[wrap_dim(d, dim())]; }
int64_t Tensor::numel() const { return shape_numel(shape()); }
int64_t Tensor::offset() const { return impl().offset; }
DType Tensor::dtype() const { return impl().dtype; }
Device Tensor::device() const { return impl().storage->device(); }
const std::shared_ptr<Storage>& Tensor::storage() const { return impl().storage; }
bool Tensor::shares_storage_with(const Tensor& other) const { return storage() == other.storage(); }

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (int64_t i = dim() - 1; i >= 0; --i) {
    if (shape()[i] == 1) continue;  // the stride of a size-1 dim never matters
    if (strides()[i] != expected) return false;
    expected *= shape()[i];
  }
  return true;
}

std::string Tensor::shape_str() const { return shape_to_string(shape()); }

std::string Tensor::str() const {
  if (!defined()) return "Tensor(undefined)";
  return absl::StrCat("Tensor(", dtype_name(dtype()), ", ", device().str(), ", ", shape_str(), ")");
}

void* Tensor::raw_data() const {
  return static_cast<char*>(impl().storage->data()) + offset() * dtype_size(dtype());
}

// ---- Strided element iteration -------------------------------------------------------

namespace {

// Calls fn(element_offset) for every element of (shape, strides) in row-major
// order; the innermost dimension runs as a plain loop.
template <typename Fn>
void for_each_offset(const Shape& shape, const Shape& strides, int64_t base, Fn&& fn) {
  const int64_t ndim = static_cast<int64_t>(shape.size());
  if (shape_numel(shape) == 0) return;
  if (ndim == 0) {
    fn(base);
    return;
  }
  const int64_t inner = shape[ndim - 1], inner_stride = strides[ndim - 1];
  std::vector<int64_t> index(ndim, 0);
  int64_t outer_offset = base;
  while (true) {
    for (int64_t i = 0; i < inner; ++i) fn(outer_offset + i * inner_stride);
    // Advance the multi-index over the outer dimensions (odometer style).
    int64_t d = ndim - 2;
    for (; d >= 0; --d) {
      outer_offset += strides[d];
      if (++index[d] < shape[d]) break;
      outer_offset -= strides[d] * shape[d];
      index[d] = 0;
    }
    if (d < 0) return;
  }
}

// Copies of at least this many elements run on all OpenMP threads.
constexpr int64_t kParallelCopyElements = int64_t{1} << 15;

// The element offset of row `row` (a row-major index over every dimension but the last) of (shape, strides).
int64_t row_offset(const Shape& shape, const Shape& strides, int64_t base, int64_t row) {
  int64_t offset = base;
  for (int64_t d = static_cast<int64_t>(shape.size()) - 2; d >= 0; --d) {
    offset += row % shape[d] * strides[d];
    row /= shape[d];
  }
  return offset;
}

}  // namespace

std::vector<float> Tensor::to_float_vector() const {
  BF_CHECK(device().is_cpu(), "to_float_vector on a ", device().str(), " tensor");
  std::vector<float> out;
  out.reserve(numel());
  visit_dtype(dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* base = static_cast<const T*>(storage()->data());
    for_each_offset(shape(), strides(), offset(), [&](int64_t o) { out.push_back(convert_element<float>(base[o])); });
  });
  return out;
}

float Tensor::at(std::initializer_list<int64_t> index) const {
  BF_CHECK(static_cast<int64_t>(index.size()) == dim(), "at(): ", index.size(), " indices for a ", dim(),
           "-d tensor");
  int64_t o = offset(), d = 0;
  for (int64_t i : index) {
    BF_CHECK(i >= 0 && i < shape()[d], "at(): index ", i, " out of range for dim ", d, " of ", shape_str());
    o += i * strides()[d++];
  }
  return with_geometry({}, {}, o).item<float>();
}

// ---- Views ----------------------------------------------------------------------

Tensor Tensor::with_geometry(Shape shape, Shape strides, int64_t offset) const {
  auto impl = std::make_shared<Impl>();
  impl->storage = this->impl().storage;
  impl->shape = std::move(shape);
  impl->strides = std::move(strides);
  impl->offset = offset;
  impl->dtype = dtype();
  return Tensor(std::move(impl));
}

namespace {

// Replaces a single -1 in `shape` by the size that keeps `numel` elements.
Shape infer_shape(Shape shape, int64_t numel, const std::string& what) {
  int64_t known = 1, infer_at = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      BF_CHECK(infer_at < 0, what, ": more than one -1 in ", shape_to_string(shape));
      infer_at = static_cast<int64_t>(i);
    } else {
      BF_CHECK(shape[i] >= 0, what, ": negative size in ", shape_to_string(shape));
      known *= shape[i];
    }
  }
  if (infer_at >= 0) {
    BF_CHECK(known > 0 && numel % known == 0, what, ": cannot infer -1 in ", shape_to_string(shape), " for ",
             numel, " elements");
    shape[infer_at] = numel / known;
  }
  BF_CHECK(shape_numel(shape) == numel, what, ": shape ", shape_to_string(shape), " does not hold ", numel,
           " elements");
  return shape;
}

// Strides for viewing (old_shape, old_strides) as new_shape without copying,
// or an empty optional-like result (ok=false) when the memory layout forbids it.
// Groups of old dims that are contiguous among themselves can be re-split freely.
bool view_strides(const Shape& old_shape, const Shape& old_strides, const Shape& new_shape, Shape* out) {
  out->assign(new_shape.size(), 0);
  if (shape_numel(old_shape) == 0 || old_shape.empty()) {  // nothing, or a single element
    *out = contiguous_strides(new_shape);
    return true;
  }
  int64_t new_dim = static_cast<int64_t>(new_shape.size()) - 1;
  int64_t chunk_base_stride = old_strides.empty() ? 1 : old_strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t old_dim = static_cast<int64_t>(old_shape.size()) - 1; old_dim >= 0; --old_dim) {
    tensor_numel *= old_shape[old_dim];
    // A chunk ends where the next-outer old dim is not contiguous with this one.
    bool chunk_ends = old_dim == 0 ||
                      (old_shape[old_dim - 1] != 1 &&
                       old_strides[old_dim - 1] != tensor_numel * chunk_base_stride);
    if (chunk_ends) {
      while (new_dim >= 0 && (view_numel < tensor_numel || new_shape[new_dim] == 1)) {
        (*out)[new_dim] = view_numel * chunk_base_stride;
        view_numel *= new_shape[new_dim];
        --new_dim;
      }
      if (view_numel != tensor_numel) return false;
      if (old_dim > 0) {
        chunk_base_stride = old_strides[old_dim - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  return new_dim == -1;
}

}  // namespace

Tensor Tensor::view(Shape shape) const {
  shape = infer_shape(std::move(shape), numel(), "view");
  Shape strides;
  BF_CHECK(view_strides(this->shape(), this->strides(), shape, &strides), "view: cannot view ", shape_str(),
           " with strides ", shape_to_string(this->strides()), " as ", shape_to_string(shape),
           " without a copy; use reshape()");
  return with_geometry(std::move(shape), std::move(strides), offset());
}

Tensor Tensor::reshape(Shape shape) const {
  shape = infer_shape(std::move(shape), numel(), "reshape");
  Shape strides;
  if (view_strides(this->shape(), this->strides(), shape, &strides)) {
    return with_geometry(std::move(shape), std::move(strides), offset());
  }
  return contiguous().view(std::move(shape));
}

Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
  BF_CHECK(static_cast<int64_t>(dims.size()) == dim(), "permute: ", dims.size(), " dims for a ", dim(),
           "-d tensor");
  Shape shape(dim()), strides(dim());
  std::vector<bool> seen(dim(), false);
  for (int64_t i = 0; i < dim(); ++i) {
    int64_t d = wrap_dim(dims[i], dim());
    BF_CHECK(!seen[d], "permute: dimension ", d, " repeated");
    seen[d] = true;
    shape[i] = this->shape()[d];
    strides[i] = this->strides()[d];
  }
  return with_geometry(std::move(shape), std::move(strides), offset());
}

Tensor Tensor::transpose(int64_t dim0, int64_t dim1) const {
  std::vector<int64_t> dims(dim());
  std::iota(dims.begin(), dims.end(), 0);
  std::swap(dims[wrap_dim(dim0, dim())], dims[wrap_dim(dim1, dim())]);
  return permute(dims);
}

Tensor Tensor::slice(int64_t d, int64_t start, int64_t end) const {
  d = wrap_dim(d, dim());
  const int64_t n = shape()[d];
  if (start < 0) start += n;
  if (end < 0) end += n;
  BF_CHECK(0 <= start && start <= end && end <= n, "slice: [", start, ", ", end, ") out of range for dim ", d,
           " of size ", n);
  Shape shape = this->shape();
  shape[d] = end - start;
  return with_geometry(std::move(shape), strides(), offset() + start * strides()[d]);
}

Tensor Tensor::unsqueeze(int64_t d) const {
  d = wrap_dim(d, dim() + 1);
  Shape shape = this->shape(), strides = this->strides();
  int64_t stride = d < dim() ? strides[d] * shape[d] : 1;
  shape.insert(shape.begin() + d, 1);
  strides.insert(strides.begin() + d, stride);
  return with_geometry(std::move(shape), std::move(strides), offset());
}

Tensor Tensor::squeeze(int64_t d) const {
  d = wrap_dim(d, dim());
  BF_CHECK(shape()[d] == 1, "squeeze: dim ", d, " has size ", shape()[d]);
  Shape shape = this->shape(), strides = this->strides();
  shape.erase(shape.begin() + d);
  strides.erase(strides.begin() + d);
  return with_geometry(std::move(shape), std::move(strides), offset());
}

Tensor Tensor::expand(const Shape& shape) const {
  const int64_t extra = static_cast<int64_t>(shape.size()) - dim();
  BF_CHECK(extra >= 0, "expand: cannot expand ", shape_str(), " to ", shape_to_string(shape));
  Shape strides(shape.size(), 0);
  for (int64_t d = 0; d < dim(); ++d) {
    const int64_t target = shape[extra + d];
    if (this->shape()[d] == target) {
      strides[extra + d] = this->strides()[d];
    } else {
      BF_CHECK(this->shape()[d] == 1, "expand: cannot expand ", shape_str(), " to ", shape_to_string(shape));
    }
  }
  return with_geometry(shape, std::move(strides), offset());
}

Tensor Tensor::detach() const { return with_geometry(shape(), strides(), offset()); }

// ---- Copies ---------------------------------------------------------------------

Tensor Tensor::contiguous() const { return is_contiguous() ? *this : clone(); }

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), dtype(), device());
  out.copy_(*this);
  return out;
}

Tensor Tensor::to(DType dtype) const {
  if (dtype == this->dtype()) return *this;
  Tensor out = empty(shape(), dtype, device());
  out.copy_(*this);
  return out;
}

Tensor Tensor::to(Device device) const {
  if (device == this->device()) return *this;
  Tensor src = contiguous();
  Tensor out = empty(shape(), dtype(), device);
  if (device.is_cpu()) {
    device_interface(src.device().type).copy_to_host(out.raw_data(), src.raw_data(), nbytes(), src.device().index);
  } else {
    BF_CHECK(src.device().is_cpu(), "to(): copies between two GPUs go through the host");
    device_interface(device.type).copy_from_host(out.raw_data(), src.raw_data(), nbytes(), device.index);
  }
  return out;
}

void Tensor::copy_(const Tensor& src) {
  BF_CHECK(src.shape() == shape(), "copy_: source ", src.shape_str(), " vs destination ", shape_str());
  if (device() != src.device()) {  // through a contiguous copy on this tensor's device
    BF_CHECK(dtype() == src.dtype(), "copy_ between devices needs the same dtype, got ", src.str(), " into ", str());
    copy_(src.to(device()));
    return;
  }
  if (!device().is_cpu() && dtype() != src.dtype()) {  // convert contiguous elements, then place them
    const Tensor from = src.contiguous();
    Tensor converted = is_contiguous() ? *this : empty(shape(), dtype(), device());
    device_interface(device().type).convert(converted.raw_data(), dtype(), from.raw_data(), from.dtype(), numel(),
                                            device().index);
    if (!is_contiguous()) copy_(converted);
    return;
  }
  if (!device().is_cpu()) {
    DeviceInterface& backend = device_interface(device().type);
    if (is_contiguous() && src.is_contiguous()) {
      backend.copy_within(raw_data(), src.raw_data(), nbytes(), device().index);
    } else {
      BF_CHECK(dim() <= kMaxStridedCopyDims, "copy_ on ", device().str(), ": at most ", kMaxStridedCopyDims,
               " dimensions, got ", shape_str());
      backend.copy_strided(raw_data(), strides().data(), src.raw_data(), src.strides().data(), shape().data(),
                           static_cast<int>(dim()), dtype_size(dtype()), device().index);
    }
    return;
  }
  if (dtype() == src.dtype() && is_contiguous() && src.is_contiguous()) {
    std::memmove(raw_data(), src.raw_data(), nbytes());
    return;
  }
  // General case: both tensors walked row by row (a row: the last dimension), rows in parallel when large.
  visit_dtype(dtype(), [&](auto dst_tag) {
    using D = decltype(dst_tag);
    visit_dtype(src.dtype(), [&](auto src_tag) {
      using S = decltype(src_tag);
      const S* src_base = static_cast<const S*>(src.storage()->data());
      D* dst_base = static_cast<D*>(storage()->data());
      const int64_t inner = dim() == 0 ? 1 : shape().back();
      const int64_t src_step = dim() == 0 ? 0 : src.strides().back(), dst_step = dim() == 0 ? 0 : strides().back();
      const int64_t rows = inner == 0 ? 0 : numel() / inner;
#pragma omp parallel for schedule(static) if (numel() >= kParallelCopyElements)
      for (int64_t r = 0; r < rows; ++r) {
        const S* from = src_base + row_offset(src.shape(), src.strides(), src.offset(), r);
        D* to = dst_base + row_offset(shape(), strides(), offset(), r);
        if (src_step == 1 && dst_step == 1) {
          for (int64_t i = 0; i < inner; ++i) to[i] = convert_element<D>(from[i]);
        } else {
          for (int64_t i = 0; i < inner; ++i) to[i * dst_step] = convert_element<D>(from[i * src_step]);
        }
      }
    });
  });
}

void Tensor::move_to_(Device device) {
  if (device == this->device()) return;
  const Tensor moved = to(device);
  Impl& self = *impl_;
  self.storage = moved.impl().storage;
  self.strides = moved.strides();
  self.offset = 0;
  if (self.autograd) self.autograd->grad = Tensor();
}

void Tensor::fill_(float value) {
  if (!device().is_cpu()) {
    BF_CHECK(is_contiguous(), "fill_ on ", device().str(), " needs a contiguous tensor, got ", str());
    visit_dtype(dtype(), [&](auto tag) {
      using T = decltype(tag);
      const T v = convert_element<T>(value);
      device_interface(device().type).fill(raw_data(), &v, sizeof(T), numel(), device().index);
    });
    return;
  }
  visit_dtype(dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T v = convert_element<T>(value);
    if (is_contiguous()) {
      T* first = static_cast<T*>(raw_data());
      const int64_t n = numel();
#pragma omp parallel for simd schedule(static) if (n >= kParallelCopyElements)
      for (int64_t i = 0; i < n; ++i) first[i] = v;
      return;
    }
    T* base = static_cast<T*>(storage()->data());
    for_each_offset(shape(), strides(), offset(), [&](int64_t o) { base[o] = v; });
  });
}

// ---- Autograd slot -------------------------------------------------------------------

AutogradMeta* Tensor::autograd_meta() const { return impl().autograd.get(); }

const std::shared_ptr<AutogradMeta>& Tensor::autograd_meta_ptr() {
  BF_CHECK(impl_ != nullptr, "autograd on an undefined tensor");
  if (!impl_->autograd) impl_->autograd = std::make_shared<AutogradMeta>();
  return impl_->autograd;
}

bool Tensor::requires_grad() const {
  const AutogradMeta* meta = autograd_meta();
  return meta != nullptr && meta->requires_grad;
}

Tensor& Tensor::set_requires_grad(bool requires_grad) {
  AutogradMeta& meta = *autograd_meta_ptr();
  BF_CHECK(meta.grad_fn == nullptr || requires_grad,
           "set_requires_grad(false) on a non-leaf tensor; use detach()");
  BF_CHECK(!requires_grad || dtype_is_floating(dtype()), "only floating tensors can require grad, not ",
           dtype_name(dtype()));
  meta.requires_grad = requires_grad;
  return *this;
}

Tensor Tensor::grad() const {
  const AutogradMeta* meta = autograd_meta();
  return meta ? meta->grad : Tensor();
}

void Tensor::set_grad(const Tensor& grad) { autograd_meta_ptr()->grad = grad; }

}  // namespace bertforge
