// a48: the CUDA half of the tiny NeRF's kernels. The march: one thread per sample (consecutive threads, consecutive
// samples of a ray: coalesced writes of t, deltas and points). The compositing, forward and backward: one thread per
// ray, walking its samples front to back (the transmittance is a running product, so a ray is a sequential scan;
// the parallelism is the rays, thousands of them per batch). Each thread writes only its own ray's outputs: no
// atomics, the same bits every run. The per-sample and per-ray code is volume_render.h, which the CPU twin
// (nerf.cpp) runs too. Only cuda_runtime.h: nerf.cpp checks the tensors and passes raw contiguous pointers and the
// stream.
#include <cuda_runtime.h>

#include <cstdint>

#include "volume_render.h"

namespace {

namespace vr = torchkata_nerf;

constexpr int kThreads = 256;

template <typename T>
__global__ void __launch_bounds__(kThreads) march_kernel(const T* __restrict__ origins,
                                                         const T* __restrict__ directions, const T* __restrict__ jitter,
                                                         int64_t rays, int64_t samples, T near, T far,
                                                         T* __restrict__ points, T* __restrict__ t,
                                                         T* __restrict__ deltas) {
  const int64_t k = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  if (k >= rays * samples) return;
  const int64_t r = k / samples;
  vr::march_sample(origins + 3 * r, directions + 3 * r, jitter + r * samples, k % samples, samples, near, far,
                   points + 3 * k, t + k, deltas + k);
}

template <typename T>
__global__ void __launch_bounds__(kThreads) composite_kernel(const T* __restrict__ sigma, const T* __restrict__ rgb,
                                                             const T* __restrict__ deltas, const T* __restrict__ t,
                                                             int64_t rays, int64_t samples, int64_t channels,
                                                             T* __restrict__ colour, T* __restrict__ depth,
                                                             T* __restrict__ opacity) {
  const int64_t r = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  if (r >= rays) return;
  const int64_t first = r * samples;  // the ray's first sample
  vr::composite_ray(sigma + first, rgb + first * channels, deltas + first, t + first, samples, channels,
                    colour + r * channels, depth + r, opacity + r);
}

template <typename T>
__global__ void __launch_bounds__(kThreads) composite_backward_kernel(
    const T* __restrict__ grad_colour, const T* __restrict__ grad_depth, const T* __restrict__ grad_opacity,
    const T* __restrict__ sigma, const T* __restrict__ rgb, const T* __restrict__ deltas, const T* __restrict__ t,
    int64_t rays, int64_t samples, int64_t channels, T* __restrict__ grad_sigma, T* __restrict__ grad_rgb,
    T* __restrict__ grad_deltas, T* __restrict__ grad_t) {
  const int64_t r = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  if (r >= rays) return;
  const int64_t first = r * samples;
  vr::composite_ray_backward(grad_colour + r * channels, grad_depth[r], grad_opacity[r], sigma + first,
                             rgb + first * channels, deltas + first, t + first, samples, channels,
                             grad_sigma + first, grad_rgb + first * channels, grad_deltas + first, grad_t + first);
}

unsigned blocks_for(int64_t threads) {
  return static_cast<unsigned>((threads + kThreads - 1) / kThreads);
}

}  // namespace

template <typename T>
void launch_nerf_march(const T* origins, const T* directions, const T* jitter, int64_t rays, int64_t samples, T near,
                       T far, T* points, T* t, T* deltas, cudaStream_t stream) {
  march_kernel<T><<<blocks_for(rays * samples), kThreads, 0, stream>>>(origins, directions, jitter, rays, samples,
                                                                       near, far, points, t, deltas);
}

template <typename T>
void launch_nerf_composite(const T* sigma, const T* rgb, const T* deltas, const T* t, int64_t rays, int64_t samples,
                           int64_t channels, T* colour, T* depth, T* opacity, cudaStream_t stream) {
  composite_kernel<T><<<blocks_for(rays), kThreads, 0, stream>>>(sigma, rgb, deltas, t, rays, samples, channels,
                                                                 colour, depth, opacity);
}

template <typename T>
void launch_nerf_composite_backward(const T* grad_colour, const T* grad_depth, const T* grad_opacity, const T* sigma,
                                    const T* rgb, const T* deltas, const T* t, int64_t rays, int64_t samples,
                                    int64_t channels, T* grad_sigma, T* grad_rgb, T* grad_deltas, T* grad_t,
                                    cudaStream_t stream) {
  composite_backward_kernel<T><<<blocks_for(rays), kThreads, 0, stream>>>(
      grad_colour, grad_depth, grad_opacity, sigma, rgb, deltas, t, rays, samples, channels, grad_sigma, grad_rgb,
      grad_deltas, grad_t);
}

#define INSTANTIATE(T)                                                                                             \
  template void launch_nerf_march<T>(const T*, const T*, const T*, int64_t, int64_t, T, T, T*, T*, T*,             \
                                     cudaStream_t);                                                                \
  template void launch_nerf_composite<T>(const T*, const T*, const T*, const T*, int64_t, int64_t, int64_t, T*, T*, \
                                         T*, cudaStream_t);                                                        \
  template void launch_nerf_composite_backward<T>(const T*, const T*, const T*, const T*, const T*, const T*,       \
                                                  const T*, int64_t, int64_t, int64_t, T*, T*, T*, T*, cudaStream_t);
INSTANTIATE(float)
INSTANTIATE(double)
