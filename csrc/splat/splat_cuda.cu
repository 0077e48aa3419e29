// a49: the CUDA half of the Gaussian-splatting rasterizer. One block per 16 x 16 tile, one thread per pixel.
// The block walks the depth-sorted gaussians in batches of 256: each thread tests one for the tile (binning), the
// hits are packed into shared memory in depth order, and every pixel blends the batch front to back. A pixel stops
// when its light is used up, the block when all its pixels have. The backward repeats the walk up to each pixel's
// `contributors` and adds the gradients with atomicAdd: many pixels share a gaussian, so the order of the sums,
// and their last bits, may vary run to run (the CPU twin in splat.cpp is deterministic).
// Only cuda_runtime.h and splat.h (plain C++): splat.cpp checks the tensors and passes raw pointers and the stream.
#include <cuda_runtime.h>

#include <cstdint>

#include "splat.h"

namespace {

using splat::kTile;
constexpr int kBlock = kTile * kTile;  // threads: one per pixel of the tile, and gaussians tested per batch
constexpr int kWarps = kBlock / 32;

// One batch of the tile's list in shared memory, what every pixel reads of each gaussian.
template <typename T>
struct Batch {
  int64_t id[kBlock];
  T mean[kBlock][2];
  T conic[kBlock][3];
  T opacity[kBlock];
};

// Binning, a batch at a time: thread t tests gaussian start + t for tile (tx, ty); the hits are written to the batch in
// their depth order (each thread's slot: the hits of the warps before it, and of the lanes before it in its warp).
// Returns how many. Every thread of the block must call it.
template <typename T>
__device__ int load_batch(const splat::Gaussians<T>& g, int64_t start, int tx, int ty, Batch<T>& batch,
                          int* warp_hits) {
  const int64_t i = start + threadIdx.x;
  const bool hit = i < g.n && splat::touches_tile(g, i, tx, ty);
  const unsigned ballot = __ballot_sync(0xffffffffu, hit);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) warp_hits[warp] = __popc(ballot);
  __syncthreads();
  int slot = __popc(ballot & ((1u << lane) - 1)), hits = 0;
  for (int k = 0; k < kWarps; ++k) {
    slot += k < warp ? warp_hits[k] : 0;
    hits += warp_hits[k];
  }
  if (hit) {
    batch.id[slot] = i;
    for (int j = 0; j < 2; ++j) batch.mean[slot][j] = g.means[2 * i + j];
    for (int j = 0; j < 3; ++j) batch.conic[slot][j] = g.conics[3 * i + j];
    batch.opacity[slot] = g.opacities[i];
  }
  __syncthreads();
  return hits;
}

template <typename T>
__global__ void __launch_bounds__(kBlock) forward_kernel(splat::Gaussians<T> g, int h, int w, T background,
                                                         T* __restrict__ image, int32_t* __restrict__ contributors) {
  __shared__ Batch<T> batch;
  __shared__ int warp_hits[kWarps];
  const int tiles_x = (w + kTile - 1) / kTile, tx = blockIdx.x % tiles_x, ty = blockIdx.x / tiles_x;
  const int x = tx * kTile + threadIdx.x % kTile, y = ty * kTile + threadIdx.x / kTile;
  const bool inside = x < w && y < h;
  T transmittance = 1, colour[splat::kMaxChannels] = {};
  int32_t listed = 0, used = 0;  // entries of the tile's list before this batch; entries this pixel used
  bool done = !inside;
  for (int64_t start = 0; start < g.n; start += kBlock) {
    if (__syncthreads_count(done) == kBlock) break;  // every pixel of the tile has stopped
    const int hits = load_batch(g, start, tx, ty, batch, warp_hits);
    for (int k = 0; k < hits && !done; ++k) {
      const T alpha = min(T(splat::kMaxAlpha), batch.opacity[k] * splat::falloff(batch.conic[k],
                                                                                  x + T(0.5) - batch.mean[k][0],
                                                                                  y + T(0.5) - batch.mean[k][1]));
      if (alpha < T(splat::kMinAlpha)) continue;
      const T next = transmittance * (1 - alpha);
      if (next < T(splat::kMinTransmittance)) {  // this one would leave too little light: stop before it
        done = true;
        break;
      }
      const T weight = alpha * transmittance;
      for (int ch = 0; ch < g.channels; ++ch) colour[ch] += g.colours[batch.id[k] * g.channels + ch] * weight;
      transmittance = next;
      used = listed + k + 1;
    }
    listed += hits;
  }
  if (inside) {
    for (int ch = 0; ch < g.channels; ++ch) {
      image[(int64_t(ch) * h + y) * w + x] = colour[ch] + transmittance * background;
    }
    contributors[int64_t(y) * w + x] = used;
  }
}

template <typename T>
__global__ void __launch_bounds__(kBlock) backward_kernel(splat::Gaussians<T> g, int h, int w,
                                                          const T* __restrict__ grad_image,
                                                          const T* __restrict__ image,
                                                          const int32_t* __restrict__ contributors,
                                                          splat::Grads<T> grads) {
  __shared__ Batch<T> batch;
  __shared__ int warp_hits[kWarps];
  const int tiles_x = (w + kTile - 1) / kTile, tx = blockIdx.x % tiles_x, ty = blockIdx.x / tiles_x;
  const int x = tx * kTile + threadIdx.x % kTile, y = ty * kTile + threadIdx.x / kTile;
  const bool inside = x < w && y < h;
  const int64_t p = int64_t(y) * w + x;
  const int32_t used = inside ? contributors[p] : 0;
  const int c = g.channels;
  T transmittance = 1, front[splat::kMaxChannels] = {}, grad_out[splat::kMaxChannels] = {}, out[splat::kMaxChannels] = {};
  for (int ch = 0; inside && ch < c; ++ch) {
    grad_out[ch] = grad_image[ch * int64_t(h) * w + p];
    out[ch] = image[ch * int64_t(h) * w + p];
  }
  int32_t listed = 0;
  for (int64_t start = 0; start < g.n; start += kBlock) {
    if (__syncthreads_count(listed >= used) == kBlock) break;  // every pixel is past its last contributor
    const int hits = load_batch(g, start, tx, ty, batch, warp_hits);
    for (int k = 0; k < hits && listed + k < used; ++k) {
      const T* conic = batch.conic[k];
      const T dx = x + T(0.5) - batch.mean[k][0], dy = y + T(0.5) - batch.mean[k][1];
      const T gauss = splat::falloff(conic, dx, dy), raw = batch.opacity[k] * gauss;
      const T alpha = min(T(splat::kMaxAlpha), raw);
      if (alpha < T(splat::kMinAlpha)) continue;
      const int64_t i = batch.id[k];
      const T weight = alpha * transmittance;
      T grad_alpha = 0;
      for (int ch = 0; ch < c; ++ch) {
        front[ch] += g.colours[i * c + ch] * weight;
        atomicAdd(grads.colours + i * c + ch, grad_out[ch] * weight);
        grad_alpha += grad_out[ch] * (g.colours[i * c + ch] * transmittance - (out[ch] - front[ch]) / (1 - alpha));
      }
      transmittance *= 1 - alpha;
      if (raw > T(splat::kMaxAlpha)) continue;  // capped: alpha does not move with opacity, mean or conic
      atomicAdd(grads.opacities + i, grad_alpha * gauss);
      const T grad_power = grad_alpha * raw;
      atomicAdd(grads.means + 2 * i, grad_power * (conic[0] * dx + conic[1] * dy));
      atomicAdd(grads.means + 2 * i + 1, grad_power * (conic[1] * dx + conic[2] * dy));
      atomicAdd(grads.conics + 3 * i, grad_power * T(-0.5) * dx * dx);
      atomicAdd(grads.conics + 3 * i + 1, grad_power * -dx * dy);
      atomicAdd(grads.conics + 3 * i + 2, grad_power * T(-0.5) * dy * dy);
    }
    listed += hits;
  }
}

unsigned tiles(int h, int w) { return static_cast<unsigned>(((w + kTile - 1) / kTile) * ((h + kTile - 1) / kTile)); }

}  // namespace

template <typename T>
void launch_splat_forward(const splat::Gaussians<T>& g, int h, int w, T background, T* image, int32_t* contributors,
                          cudaStream_t stream) {
  forward_kernel<T><<<tiles(h, w), kBlock, 0, stream>>>(g, h, w, background, image, contributors);
}

// the gradients arrive zeroed (splat.cpp): the kernel only adds into them
template <typename T>
void launch_splat_backward(const splat::Gaussians<T>& g, int h, int w, const T* grad_image, const T* image,
                           const int32_t* contributors, const splat::Grads<T>& grads, cudaStream_t stream) {
  backward_kernel<T><<<tiles(h, w), kBlock, 0, stream>>>(g, h, w, grad_image, image, contributors, grads);
}

template void launch_splat_forward<float>(const splat::Gaussians<float>&, int, int, float, float*, int32_t*,
                                          cudaStream_t);
template void launch_splat_forward<double>(const splat::Gaussians<double>&, int, int, double, double*, int32_t*,
                                           cudaStream_t);
template void launch_splat_backward<float>(const splat::Gaussians<float>&, int, int, const float*, const float*,
                                           const int32_t*, const splat::Grads<float>&, cudaStream_t);
template void launch_splat_backward<double>(const splat::Gaussians<double>&, int, int, const double*, const double*,
                                            const int32_t*, const splat::Grads<double>&, cudaStream_t);
