// The translation unit nvcc compiles for cuda/elementwise.cuh (kernels, launchers and registration).
#include "cuda/elementwise.cuh"
