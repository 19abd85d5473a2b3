// BF_HOST_DEVICE marks an inline function of core/ that CUDA kernels call too (Philox,
// half-precision conversions): __host__ __device__ under nvcc, nothing for the host compiler.
#pragma once

#ifdef __CUDACC__
#define BF_HOST_DEVICE __host__ __device__
#else
#define BF_HOST_DEVICE
#endif
