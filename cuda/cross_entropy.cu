// The translation unit nvcc compiles for cuda/cross_entropy.cuh (kernels, launchers and registration).
#include "cuda/cross_entropy.cuh"
