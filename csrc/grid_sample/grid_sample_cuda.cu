// a47: the CUDA half of bilinear sampling (mode="bilinear", padding_mode="zeros"). One thread per grid point: it
// computes the point's four corners and weights once and loops over the channels. Forward: a gather, each thread
// writes its own outputs. Backward: the same thread gathers the grid point's gradient over the channels (written once,
// no race), and scatters grad_output x weight into the four corners of grad_input with atomicAdd, as many grid points
// may share a pixel: the sum's order, so its last bits, may vary from run to run (the CPU twin is deterministic).
// Only CUDA's headers and plain ones: grid_sample.cpp checks the tensors and passes raw contiguous pointers and the
// stream; the point's arithmetic is bilinear.h, which the CPU twin shares.
#include <cuda_runtime.h>

#include <cstdint>

#include "bilinear.h"

namespace {

namespace bilinear = torchkata_bilinear;

constexpr int kThreads = 256;

// consecutive threads take consecutive grid points: coalesced grid reads and output writes
template <typename T>
__global__ void __launch_bounds__(kThreads) forward_kernel(const T* __restrict__ input, const T* __restrict__ grid,
                                                           T* __restrict__ output, int64_t n, int64_t c, int64_t h,
                                                           int64_t w, int64_t points, bool align_corners) {
  const int64_t i = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  if (i >= n * points) return;
  bilinear::sample_point(input, grid, output, i, c, h, w, points, align_corners);
}

template <typename T>
__global__ void __launch_bounds__(kThreads) backward_kernel(const T* __restrict__ grad_output,
                                                            const T* __restrict__ input, const T* __restrict__ grid,
                                                            T* grad_input, T* __restrict__ grad_grid, int64_t n,
                                                            int64_t c, int64_t h, int64_t w, int64_t points,
                                                            bool align_corners) {
  const int64_t i = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  if (i >= n * points) return;
  const auto add = [](T* pixel, T value) { atomicAdd(pixel, value); };  // other grid points may hit the same pixel
  bilinear::backward_point(grad_output, input, grid, grad_input, grad_grid, i, c, h, w, points, align_corners, add);
}

unsigned blocks_for(int64_t threads) {
  return static_cast<unsigned>((threads + kThreads - 1) / kThreads);
}

}  // namespace

template <typename T>
void launch_grid_sample(const T* input, const T* grid, T* output, int64_t n, int64_t c, int64_t h, int64_t w,
                        int64_t ho, int64_t wo, bool align_corners, cudaStream_t stream) {
  forward_kernel<T><<<blocks_for(n * ho * wo), kThreads, 0, stream>>>(input, grid, output, n, c, h, w, ho * wo,
                                                                      align_corners);
}

// grad_input arrives zeroed (grid_sample.cpp): the kernel only adds into it
template <typename T>
void launch_grid_sample_backward(const T* grad_output, const T* input, const T* grid, T* grad_input, T* grad_grid,
                                 int64_t n, int64_t c, int64_t h, int64_t w, int64_t ho, int64_t wo,
                                 bool align_corners, cudaStream_t stream) {
  backward_kernel<T><<<blocks_for(n * ho * wo), kThreads, 0, stream>>>(grad_output, input, grid, grad_input,
                                                                       grad_grid, n, c, h, w, ho * wo,
                                                                       align_corners);
}

template void launch_grid_sample<float>(const float*, const float*, float*, int64_t, int64_t, int64_t, int64_t,
                                        int64_t, int64_t, bool, cudaStream_t);
template void launch_grid_sample<double>(const double*, const double*, double*, int64_t, int64_t, int64_t, int64_t,
                                         int64_t, int64_t, bool, cudaStream_t);
template void launch_grid_sample_backward<float>(const float*, const float*, const float*, float*, float*, int64_t,
                                                 int64_t, int64_t, int64_t, int64_t, int64_t, bool, cudaStream_t);
template void launch_grid_sample_backward<double>(const double*, const double*, const double*, double*, double*,
                                                  int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool,
                                                  cudaStream_t);
