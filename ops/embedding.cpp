// Embedding: the CPU kernels of the lookup and its scatter-add gradient, then the op, forward (gather rows) and
// backward (scatter-add rows) side by side. The CUDA kernels are in cuda/embedding.cu.
// The kernels trust ids to lie in [0, vocab): the op checks them before calling.
#include "ops/embedding.h"

#include <omp.h>

#include <algorithm>
#include <cstring>

#include "autograd/node.h"
#include "ops/kernels.h"
#include "ops/op_checks.h"

namespace bertforge::cpu {

namespace {
constexpr int64_t kFloatsPerLine = 16;           // a 64-byte cache line of floats
}  // namespace

// out (n, dim) = table (vocab, dim) rows at ids (n)
void embedding_forward(float* out, const int64_t* ids, const float* table, int64_t n, int64_t dim) {
#pragma omp parallel for schedule(static) if (n * dim > kParallelThreshold)
  for (int64_t r = 0; r < n; ++r) {
    std::memcpy(out + r * dim, table + ids[r] * dim, static_cast<size_t>(dim) * sizeof(float));
  }
}
BF_REGISTER_KERNEL(DeviceType::kCPU, embedding_forward);

// dtable (vocab, dim) += dout (n, dim) scattered to rows ids (n).
// Repeated ids add into the same row, so threads split the columns, not the
// ids: each thread owns a range of whole cache lines of every row and walks
// all ids in order. No two threads write the same float, and every float sums
// its contributions in id order whatever the thread count (deterministic).
void embedding_backward(float* dtable, const int64_t* ids, const float* dout, int64_t n, int64_t dim) {
  const int64_t lines = (dim + kFloatsPerLine - 1) / kFloatsPerLine;
#pragma omp parallel if (n * dim > kParallelThreshold)
  {
    const int64_t threads = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t begin = std::min(dim, lines * t / threads * kFloatsPerLine);
    const int64_t end = std::min(dim, lines * (t + 1) / threads * kFloatsPerLine);
    for (int64_t r = 0; r < n && begin < end; ++r) {
      float* dst = dtable + ids[r] * dim;
      const float* src = dout + r * dim;
#pragma omp simd
      for (int64_t c = begin; c < end; ++c) dst[c] += src[c];
    }
  }
}
BF_REGISTER_KERNEL(DeviceType::kCPU, embedding_backward);

}  // namespace bertforge::cpu

namespace bertforge {

namespace {

// Throws, naming the first id outside [0, vocab) and its row-major position
// (ids on a GPU are copied to the host for this check).
void check_ids(const Tensor& ids, int64_t vocab) {
  const Tensor host = ids.to(Device::cpu()).contiguous();
  const int64_t* id = host.data<int64_t>();
  for (int64_t i = 0; i < host.numel(); ++i) {
    BF_CHECK(id[i] >= 0 && id[i] < vocab, "embedding: id ", id[i], " at position ", i, " of ids ", ids.shape_str(),
             " is outside [0, ", vocab, ")");
  }
}

}  // namespace

Tensor embedding(const Tensor& ids, const Tensor& table) {
  check_dtype("embedding", "ids", ids, DType::kI64);
  check_dtype("embedding", "table", table);
  check_dim("embedding", "table", table, 2);
  check_same_device("embedding", ids, table);
  const int64_t vocab = table.size(0), dim = table.size(1), n = ids.numel();
  check_ids(ids, vocab);
  const Tensor idsc = ids.contiguous().detach(), tablec = table.contiguous();
  Shape out_shape = ids.shape();
  out_shape.push_back(dim);
  Tensor out = Tensor::empty(out_shape, DType::kF32, table.device());
  BF_KERNEL(table.device(), embedding_forward)(out.data<float>(), idsc.data<int64_t>(), tablec.data<float>(), n, dim);
  return autograd::record("embedding", out, {ids, table}, [idsc, vocab, dim, n](const Tensor& dout) {
    const Tensor doutc = dout.contiguous();
    Tensor dtable = Tensor::zeros({vocab, dim}, DType::kF32, dout.device());
    BF_KERNEL(dout.device(), embedding_backward)(dtable.data<float>(), idsc.data<int64_t>(), doutc.data<float>(), n,
                                                 dim);
    return std::vector<Tensor>{Tensor(), dtable};
  });
}

}  // namespace bertforge
