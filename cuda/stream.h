// The stream that bertforge's kernels and cuBLAS calls run on.
//
// It is the legacy default stream: work on it is ordered with the blocking
// cudaMemcpy calls of host <-> device tensor copies, so a tensor read back to the
// host always sees the kernels that wrote it, without explicit synchronisation.
#pragma once

#include <cuda_runtime.h>

namespace bertforge::cuda {

inline cudaStream_t compute_stream() { return nullptr; }

}  // namespace bertforge::cuda
