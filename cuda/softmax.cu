// The translation unit nvcc compiles for cuda/softmax.cuh (kernels, launchers and registration).
#include "cuda/softmax.cuh"
