// The translation unit nvcc compiles for cuda/adamw.cuh (kernels, launchers and registration).
#include "cuda/adamw.cuh"
