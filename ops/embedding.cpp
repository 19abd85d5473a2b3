// Embedding op: forward (gather rows) and backward (scatter-add rows) side by side.
#include "ops/embedding.h"

#include "autograd/node.h"
#include "ops/kernels.h"
#include "ops/op_checks.h"

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
