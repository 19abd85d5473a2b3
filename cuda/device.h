// The CUDA device backend: memory on GPUs, registered into core's device registry (the CUDA kernels register
// themselves into the ops' kernel registry when bertforge_cuda is linked).
#pragma once

#include "cuda/caching_allocator.h"

namespace bertforge::cuda {

// Number of usable CUDA devices; 0 when there is no GPU or no driver.
int device_count();

// Registers the CUDA DeviceInterface so Tensors, and with them ops, can run on GPUs. Idempotent.
void register_cuda_backend();

// The caching allocator's counters for GPU `index` (after register_cuda_backend).
AllocatorStats allocator_stats(int index);
// Starts GPU `index`'s peak_allocated_bytes anew at its allocated_bytes.
void reset_peak_allocated(int index);

}  // namespace bertforge::cuda
