// The translation unit nvcc compiles for cuda/dropout.cuh (kernels, launchers and registration).
#include "cuda/dropout.cuh"
