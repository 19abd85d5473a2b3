// CUDA kernels for the activations: exact (erf) GELU, tanh and sigmoid, forward and backward, with host
// launchers of the CPU kernels' signatures (CPU reference: ops/activation.cpp). One thread per element
// (out may alias x, dx may alias dout); each activation is a small functor, applied by one of two generic kernels:
// out = f(x) for the forwards, dx = f(saved, dout) for the backwards. The backward functors multiply in the CPU's
// order, so that the products of saved outputs (tanh, sigmoid) round the same way.
#include <math.h>

#include <cstdint>

#include "cuda/portable.cuh"
#include "ops/kernels.h"

namespace bertforge::cuda {

constexpr int kActivationThreads = 256;
constexpr float kInvSqrt2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;

// Phi(x), the standard normal CDF, as 0.5 erfc(-x / sqrt 2): for negative x this keeps full relative
// precision, where 0.5 (1 + erf(x / sqrt 2)) would cancel.
__device__ __forceinline__ float normal_cdf(float x) { return 0.5f * erfcf(-x * kInvSqrt2); }

// gelu(x) = x Phi(x)
struct GeluForward {
  __device__ float operator()(float x) const { return x * normal_cdf(x); }
};
// dx = dout * gelu'(x), gelu'(x) = Phi(x) + x phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi); from the forward's input
struct GeluBackward {
  __device__ float operator()(float x, float dout) const {
    return dout * fmaf(x * kInvSqrt2Pi, expf(-0.5f * x * x), normal_cdf(x));
  }
};
struct TanhForward {
  __device__ float operator()(float x) const { return tanhf(x); }
};
// dx = dout * (1 - tanh^2), from the forward's output
struct TanhBackward {
  __device__ float operator()(float out, float dout) const { return dout * (1.0f - out * out); }
};
// sigmoid(x) = 1 / (1 + e^-x) from e = exp(-|x|) <= 1, as the CPU does: nothing overflows, and for x < 0,
// e / (1 + e) keeps full relative precision down to sigmoid(-87).
struct SigmoidForward {
  __device__ float operator()(float x) const {
    const float e = expf(-fabsf(x));
    const float r = 1.0f / (1.0f + e);
    return x >= 0.0f ? r : e * r;
  }
};
// dx = dout * out * (1 - out), from the forward's output
struct SigmoidBackward {
  __device__ float operator()(float out, float dout) const { return dout * out * (1.0f - out); }
};

// out (n) = f(x)
template <typename Activation>
__global__ void activation_forward_kernel(float* out, const float* x, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = Activation()(x[i]);
}

// dx (n) = backward(saved, dout), saved being the forward's input or output (n)
template <typename Backward>
__global__ void activation_backward_kernel(float* dx, const float* saved, const float* dout, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) dx[i] = Backward()(saved[i], dout[i]);
}

template <typename Activation>
void launch_activation_forward(float* out, const float* x, int64_t n) {
  if (n == 0) return;
  BF_LAUNCH(activation_forward_kernel<Activation>, blocks_for(n, kActivationThreads), kActivationThreads, 0, out,
            x, n);
}

template <typename Backward>
void launch_activation_backward(float* dx, const float* saved, const float* dout, int64_t n) {
  if (n == 0) return;
  BF_LAUNCH(activation_backward_kernel<Backward>, blocks_for(n, kActivationThreads), kActivationThreads, 0, dx,
            saved, dout, n);
}

// out, x (n)
inline void gelu_forward(float* out, const float* x, int64_t n) { launch_activation_forward<GeluForward>(out, x, n); }
BF_REGISTER_KERNEL(DeviceType::kCUDA, gelu_forward);
// dx, x, dout (n)
inline void gelu_backward(float* dx, const float* x, const float* dout, int64_t n) {
  launch_activation_backward<GeluBackward>(dx, x, dout, n);
}
BF_REGISTER_KERNEL(DeviceType::kCUDA, gelu_backward);
// out, x (n)
inline void tanh_forward(float* out, const float* x, int64_t n) { launch_activation_forward<TanhForward>(out, x, n); }
BF_REGISTER_KERNEL(DeviceType::kCUDA, tanh_forward);
// dx, out, dout (n)
inline void tanh_backward(float* dx, const float* out, const float* dout, int64_t n) {
  launch_activation_backward<TanhBackward>(dx, out, dout, n);
}
BF_REGISTER_KERNEL(DeviceType::kCUDA, tanh_backward);
// out, x (n)
inline void sigmoid_forward(float* out, const float* x, int64_t n) {
  launch_activation_forward<SigmoidForward>(out, x, n);
}
BF_REGISTER_KERNEL(DeviceType::kCUDA, sigmoid_forward);
// dx, out, dout (n)
inline void sigmoid_backward(float* dx, const float* out, const float* dout, int64_t n) {
  launch_activation_backward<SigmoidBackward>(dx, out, dout, n);
}
BF_REGISTER_KERNEL(DeviceType::kCUDA, sigmoid_backward);

}  // namespace bertforge::cuda
