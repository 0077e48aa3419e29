// a45 and m3-deep-2: the CUDA halves of the sum of all elements, two passes of one kernel: the first folds each
// block's share of x (a grid-stride loop, then the block's 256 sums) into one partial sum, the second folds the
// partial sums in one block. Two ways to fold a block:
// - a45, warp shuffles: each warp adds its 32 values with __shfl_down_sync (registers, no shared memory, no
//   barrier), lane 0 of each warp stores its sum in shared memory, and the first warp folds those 8 the same way;
// - m3-deep-2, a shared-memory tree: the 256 values in shared memory, halved by sequential addressing (thread t adds
//   t + s, s = 128, 64, ..., 1), a barrier between levels, the last warp's levels by shuffles.
// Only CUDA's headers and plain ones: reduce.cpp checks the tensor and passes raw pointers, the sizes and the stream.
#include <cuda_runtime.h>

#include <cstdint>

#include "../common/warp_fold.cuh"
#include "reduce_grid.h"

namespace {

using torchkata_cuda::kWarp;
using torchkata_cuda::warp_fold;
using torchkata_reduce::kBlock;

static_assert(torchkata_reduce::kWarp == kWarp, "the CPU twin (reduce.cpp) folds warps of the GPU's width");

template <typename T>
__device__ T grid_stride_sum(const T* x, int64_t n) {
  T v = T(0);
  for (int64_t i = int64_t(blockIdx.x) * kBlock + threadIdx.x; i < n; i += int64_t(gridDim.x) * kBlock) {
    v += x[i];
  }
  return v;
}

template <typename T>
__global__ void __launch_bounds__(kBlock) warp_shuffle_kernel(const T* x, int64_t n, T* partial) {
  __shared__ T warp_sums[kBlock / kWarp];
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const T v = warp_fold(grid_stride_sum(x, n));
  if (lane == 0) {
    warp_sums[warp] = v;
  }
  __syncthreads();  // every warp's sum is stored before the first warp reads them
  if (warp == 0) {
    const T total = warp_fold(lane < kBlock / kWarp ? warp_sums[lane] : T(0));
    if (lane == 0) {
      partial[blockIdx.x] = total;
    }
  }
}

// The tree t += t + s for s = 128, 64, ..., 1. The levels s = 128 and 64 go through shared memory with a barrier
// each; the last six (s = 32, ..., 1) stay in the first warp: lane t's register holds sums[t] + sums[t + 32] and
// __shfl_down_sync performs the remaining levels with the same pairings (lane t adds lane t + s), in registers and
// without barriers. The order of the additions, and so the result, is the plain tree's.
template <typename T>
__global__ void __launch_bounds__(kBlock) shared_tree_kernel(const T* x, int64_t n, T* partial) {
  __shared__ T sums[kBlock];
  sums[threadIdx.x] = grid_stride_sum(x, n);
  __syncthreads();
  for (int s = kBlock / 2; s > kWarp; s /= 2) {
    if (threadIdx.x < s) {  // sequential addressing: active threads read consecutive banks, and whole warps idle
      sums[threadIdx.x] += sums[threadIdx.x + s];
    }
    __syncthreads();  // a level is complete before the next reads it
  }
  if (threadIdx.x < kWarp) {
    const T total = warp_fold(sums[threadIdx.x] + sums[threadIdx.x + kWarp]);
    if (threadIdx.x == 0) {
      partial[blockIdx.x] = total;
    }
  }
}

}  // namespace

// out[0] = the sum of x[0:n): `blocks` partial sums (torchkata_reduce::blocks_for(n) of them, in `partial`), then
// one block over them.
template <typename T>
void launch_sum(const T* x, int64_t n, int64_t blocks, T* partial, T* out, bool warp_shuffle, cudaStream_t stream) {
  const auto kernel = warp_shuffle ? warp_shuffle_kernel<T> : shared_tree_kernel<T>;
  kernel<<<static_cast<unsigned>(blocks), kBlock, 0, stream>>>(x, n, partial);
  kernel<<<1, kBlock, 0, stream>>>(partial, blocks, out);
}

template void launch_sum<float>(const float*, int64_t, int64_t, float*, float*, bool, cudaStream_t);
template void launch_sum<double>(const double*, int64_t, int64_t, double*, double*, bool, cudaStream_t);
