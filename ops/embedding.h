// Differentiable embedding lookup: rows of a table gathered by integer ids.
#pragma once

#include "core/tensor.h"

namespace bertforge {

// ids int64 (...), table (V, D) -> (..., D), out[..., :] = table[ids[...], :].
// Every id must be in [0, V): an id outside is an error naming the id and its
// position. The gradient flows to the table only (a scatter-add over repeated ids).
Tensor embedding(const Tensor& ids, const Tensor& table);

}  // namespace bertforge
