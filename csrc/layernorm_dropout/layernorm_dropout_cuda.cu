// m3-deep-1: the CUDA half of the fused LayerNorm + Dropout. Forward: one block of 256 threads per row; thread t
// walks the columns t, t + 256, ... (consecutive threads read consecutive floats: coalesced), and a row's sums are
// folded by warp shuffles, then the 8 warp sums by the first warp (block_sum). Two passes for mean and variance (the
// second rereads the row, which a block's first pass has just brought into L1/L2), then one pass that writes y and
// the mask, each thread hashing its own (row, column) (dropout_hash.h): no random-number state, no mask read.
// Backward: the same block per row for grad_x, and the weight and bias gradients summed over chunks of 32 rows into
// `partial`, then per column over the chunks in order (as the CPU twin in layernorm_dropout.cpp).
// Only CUDA's headers and plain ones: layernorm_dropout.cpp checks the tensors and passes raw pointers, the sizes
// and the stream.
#include <cuda_runtime.h>

#include <cstdint>

#include "../common/warp_fold.cuh"
#include "dropout_hash.h"

namespace {

namespace hash = torchkata_dropout;
using torchkata_cuda::kWarp;
using torchkata_cuda::warp_fold;

constexpr int kBlock = 256;      // threads of a row's block
constexpr int kChunkRows = 32;   // rows of one partial sum of the weight and bias gradients
constexpr int kColumnBlock = 256;  // columns of a block of the column sums

// Accumulate float rows in float (the GPU's fast path), double rows in double.
template <typename T>
struct Acc {
  using type = T;
};

// The sum of every thread's v, returned to all threads of the block. `shared` holds kWarp values; the barrier at the
// start lets a block call it again right after a previous call's readers are done.
template <typename A>
__device__ A block_sum(A v, A* shared) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  v = warp_fold(v);
  __syncthreads();  // the previous call's broadcast has been read
  if (lane == 0) {
    shared[warp] = v;
  }
  __syncthreads();  // every warp's sum is stored
  if (warp == 0) {
    v = warp_fold(lane < kBlock / kWarp ? shared[lane] : A(0));
    if (lane == 0) {
      shared[0] = v;
    }
  }
  __syncthreads();  // the total is stored
  return shared[0];
}

template <typename T>
__global__ void __launch_bounds__(kBlock)
    forward_kernel(const T* x, const T* weight, const T* bias, T* y, bool* mask, T* mean, T* rstd, int64_t width,
                   T eps, uint64_t threshold, T scale, uint32_t seed) {
  using A = typename Acc<T>::type;
  __shared__ A shared[kWarp];
  const int64_t row = blockIdx.x;
  const T* xr = x + row * width;
  A s = 0;
  for (int64_t j = threadIdx.x; j < width; j += kBlock) {
    s += xr[j];
  }
  const A mu = block_sum(s, shared) / width;
  A sq = 0;
  for (int64_t j = threadIdx.x; j < width; j += kBlock) {
    const A d = xr[j] - mu;
    sq += d * d;
  }
  const A inv = rsqrt(block_sum(sq, shared) / width + eps);
  if (threadIdx.x == 0) {
    mean[row] = mu;
    rstd[row] = inv;
  }
  const uint32_t key = hash::row_key(seed, row);
  for (int64_t j = threadIdx.x; j < width; j += kBlock) {
    const bool kept = hash::keep(key, j, threshold);
    mask[row * width + j] = kept;
    y[row * width + j] = ((xr[j] - mu) * inv * weight[j] + bias[j]) * (kept ? scale : T(0));
  }
}

// grad_x of one row: d xhat = g * weight, grad_x = rstd * (d xhat - mean(d xhat) - xhat * mean(d xhat * xhat)).
template <typename T>
__global__ void __launch_bounds__(kBlock)
    grad_x_kernel(const T* grad_y, const T* x, const T* weight, const T* mean, const T* rstd, const bool* mask,
                  T scale, int64_t width, T* grad_x) {
  using A = typename Acc<T>::type;
  __shared__ A shared[kWarp];
  const int64_t row = blockIdx.x, base = row * width;
  const T mu = mean[row], inv = rstd[row];
  A d = 0, dx = 0;
  for (int64_t j = threadIdx.x; j < width; j += kBlock) {
    const T g = mask[base + j] ? grad_y[base + j] * scale : T(0);
    d += g * weight[j];
    dx += g * weight[j] * (x[base + j] - mu) * inv;
  }
  const A mean_d = block_sum(d, shared) / width;
  const A mean_dx = block_sum(dx, shared) / width;
  for (int64_t j = threadIdx.x; j < width; j += kBlock) {
    const T g = mask[base + j] ? grad_y[base + j] * scale : T(0);
    const T xhat = (x[base + j] - mu) * inv;
    grad_x[base + j] = inv * (g * weight[j] - T(mean_d) - xhat * T(mean_dx));
  }
}

// Thread (chunk, column): the column's sums of g * xhat (weight) and g (bias) over the chunk's rows; a warp reads 32
// consecutive columns of a row, coalesced.
template <typename T>
__global__ void chunk_sums_kernel(const T* grad_y, const T* x, const T* mean, const T* rstd, const bool* mask,
                                  T scale, int64_t rows, int64_t width, int64_t chunks, T* partial) {
  const int64_t col = int64_t(blockIdx.x) * kColumnBlock + threadIdx.x, chunk = blockIdx.y;
  if (col >= width) {
    return;
  }
  T w = 0, b = 0;
  for (int64_t r = chunk * kChunkRows; r < rows && r < (chunk + 1) * kChunkRows; ++r) {
    const int64_t i = r * width + col;
    const T g = mask[i] ? grad_y[i] * scale : T(0);
    w += g * (x[i] - mean[r]) * rstd[r];
    b += g;
  }
  partial[chunk * width + col] = w;
  partial[(chunks + chunk) * width + col] = b;
}

template <typename T>
__global__ void column_sums_kernel(const T* partial, int64_t chunks, int64_t width, T* grad_weight, T* grad_bias) {
  const int64_t col = int64_t(blockIdx.x) * kColumnBlock + threadIdx.x;
  if (col >= width) {
    return;
  }
  T w = 0, b = 0;
  for (int64_t c = 0; c < chunks; ++c) {
    w += partial[c * width + col];
    b += partial[(chunks + c) * width + col];
  }
  grad_weight[col] = w;
  grad_bias[col] = b;
}

}  // namespace

template <typename T>
void launch_layernorm_dropout_forward(const T* x, const T* weight, const T* bias, T* y, bool* mask, T* mean, T* rstd,
                                      int64_t rows, int64_t width, double eps, double p, uint32_t seed,
                                      cudaStream_t stream) {
  forward_kernel<T><<<static_cast<unsigned>(rows), kBlock, 0, stream>>>(
      x, weight, bias, y, mask, mean, rstd, width, T(eps), hash::threshold(p), T(hash::keep_scale(p)), seed);
}

// `partial` holds 2 * ceil(rows / 32) rows of `width`: the chunks' weight sums, then their bias sums.
template <typename T>
void launch_layernorm_dropout_backward(const T* grad_y, const T* x, const T* weight, const T* mean, const T* rstd,
                                       const bool* mask, double scale, int64_t rows, int64_t width, T* grad_x,
                                       T* partial, T* grad_weight, T* grad_bias, cudaStream_t stream) {
  grad_x_kernel<T><<<static_cast<unsigned>(rows), kBlock, 0, stream>>>(grad_y, x, weight, mean, rstd, mask, T(scale),
                                                                      width, grad_x);
  const int64_t chunks = (rows + kChunkRows - 1) / kChunkRows;
  const unsigned column_blocks = static_cast<unsigned>((width + kColumnBlock - 1) / kColumnBlock);
  chunk_sums_kernel<T><<<dim3(column_blocks, static_cast<unsigned>(chunks)), kColumnBlock, 0, stream>>>(
      grad_y, x, mean, rstd, mask, T(scale), rows, width, chunks, partial);
  column_sums_kernel<T><<<column_blocks, kColumnBlock, 0, stream>>>(partial, chunks, width, grad_weight, grad_bias);
}

template void launch_layernorm_dropout_forward<float>(const float*, const float*, const float*, float*, bool*, float*,
                                                      float*, int64_t, int64_t, double, double, uint32_t,
                                                      cudaStream_t);
template void launch_layernorm_dropout_forward<double>(const double*, const double*, const double*, double*, bool*,
                                                       double*, double*, int64_t, int64_t, double, double, uint32_t,
                                                       cudaStream_t);
template void launch_layernorm_dropout_backward<float>(const float*, const float*, const float*, const float*,
                                                       const float*, const bool*, double, int64_t, int64_t, float*,
                                                       float*, float*, float*, cudaStream_t);
template void launch_layernorm_dropout_backward<double>(const double*, const double*, const double*, const double*,
                                                        const double*, const bool*, double, int64_t, int64_t, double*,
                                                        double*, double*, double*, cudaStream_t);
