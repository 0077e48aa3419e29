// a43: the CUDA half of ReLU: one thread per element in a grid-stride loop; only cuda_runtime.h and the half types
// (relu.cpp checks the tensors and passes raw pointers and the stream).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

namespace {

constexpr int kBlock = 256;

// torch.relu's conventions (see relu.cpp): the forward zeroes v < 0 only, the gradient flows where y > 0 or NaN.
// Compared in the value's own type (a double cast to float would turn 1e-50 into 0); the half types through float,
// which holds them exactly.
template <typename T>
__device__ bool zeroed_forward(T v) {
  return v < T(0);
}
template <typename T>
__device__ bool gradient_flows(T y) {
  return !(y <= T(0));
}
template <>
__device__ bool zeroed_forward(__half v) {
  return __half2float(v) < 0.f;
}
template <>
__device__ bool gradient_flows(__half y) {
  return !(__half2float(y) <= 0.f);
}
template <>
__device__ bool zeroed_forward(__nv_bfloat16 v) {
  return __bfloat162float(v) < 0.f;
}
template <>
__device__ bool gradient_flows(__nv_bfloat16 y) {
  return !(__bfloat162float(y) <= 0.f);
}

template <typename T>
__global__ void relu_forward_kernel(const T* x, T* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    y[i] = zeroed_forward(x[i]) ? T(0.f) : x[i];
  }
}

// grad_x = grad_y where the output is > 0 (or NaN), else 0: torch's threshold_backward on the saved output.
template <typename T>
__global__ void relu_backward_kernel(const T* grad_y, const T* y, T* grad_x, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    grad_x[i] = gradient_flows(y[i]) ? grad_y[i] : T(0.f);
  }
}

int blocks_for(int64_t n) {
  return static_cast<int>(std::min<int64_t>((n + kBlock - 1) / kBlock, 65535));
}

}  // namespace

template <typename T>
void launch_relu_forward(const T* x, T* y, int64_t n, cudaStream_t stream) {
  relu_forward_kernel<T><<<blocks_for(n), kBlock, 0, stream>>>(x, y, n);
}

template <typename T>
void launch_relu_backward(const T* grad_y, const T* y, T* grad_x, int64_t n, cudaStream_t stream) {
  relu_backward_kernel<T><<<blocks_for(n), kBlock, 0, stream>>>(grad_y, y, grad_x, n);
}

#define TORCHKATA_RELU_INSTANTIATE(T)                                                \
  template void launch_relu_forward<T>(const T*, T*, int64_t, cudaStream_t);        \
  template void launch_relu_backward<T>(const T*, const T*, T*, int64_t, cudaStream_t);
TORCHKATA_RELU_INSTANTIATE(float)
TORCHKATA_RELU_INSTANTIATE(double)
TORCHKATA_RELU_INSTANTIATE(__half)
TORCHKATA_RELU_INSTANTIATE(__nv_bfloat16)
