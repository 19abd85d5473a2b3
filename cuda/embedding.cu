// The translation unit nvcc compiles for cuda/embedding.cuh (kernels, launchers and registration).
#include "cuda/embedding.cuh"
