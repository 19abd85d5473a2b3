// The CUDA device backend: memory on GPUs, registered into core's device registry.
#pragma once

namespace bertforge::cuda {

// Number of usable CUDA devices; 0 when there is no GPU or no driver.
int device_count();

// Registers the CUDA DeviceInterface and kernels so Tensors and ops can run on GPUs. Idempotent.
void register_cuda_backend();

}  // namespace bertforge::cuda
