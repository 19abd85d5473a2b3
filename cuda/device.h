// The CUDA device backend: memory on GPUs, registered into core's device registry.
#pragma once

namespace bertforge::cuda {

// Number of usable CUDA devices; 0 when there is no GPU or no driver.
int device_count();

// Registers the CUDA DeviceInterface so Tensors can live on GPUs. Idempotent.
void register_cuda_backend();

}  // namespace bertforge::cuda
