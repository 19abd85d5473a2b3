// The translation unit nvcc compiles for cuda/layernorm.cuh (kernels, launchers and registration).
#include "cuda/layernorm.cuh"
