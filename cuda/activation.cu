// The translation unit nvcc compiles for cuda/activation.cuh (kernels, launchers and registration).
#include "cuda/activation.cuh"
