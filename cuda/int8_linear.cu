// The translation unit nvcc compiles for cuda/int8_linear.cuh (kernels, launchers and registration).
#include "cuda/int8_linear.cuh"
