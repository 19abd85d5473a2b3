// The translation unit nvcc compiles for cuda/fake_quantize.cuh (kernels, launchers and registration).
#include "cuda/fake_quantize.cuh"
