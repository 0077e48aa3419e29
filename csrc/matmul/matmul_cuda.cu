// a44: the CUDA half of the tiled matmul, C = A @ B for row-major A [m, k], B [k, n], C [m, n]. Each block of 256
// threads computes a 64 x 64 tile of C: it walks K in steps of 16, staging a 64 x 16 tile of A and a 16 x 64 tile
// of B in shared memory (each element of A and B is then read from global memory m/64 + n/64 times instead of n +
// m times), and each thread keeps a 4 x 4 block of C in registers (16 multiply-adds for every 8 shared-memory
// reads). Only cuda_runtime.h: matmul.cpp checks the tensors and passes raw pointers and the stream.
#include <cuda_runtime.h>

#include <cstdint>

namespace {

constexpr int kTile = 64;     // rows and columns of C per block
constexpr int kDepth = 16;    // K per shared-memory stage
constexpr int kPerThread = 4;  // rows and columns of C per thread
constexpr int kSide = kTile / kPerThread;  // 16 x 16 threads
constexpr int kThreads = kSide * kSide;

template <typename T>
__global__ void __launch_bounds__(kThreads) matmul_kernel(const T* a, const T* b, T* c, int64_t m, int64_t k,
                                                          int64_t n) {
  // A's tile is stored transposed, a_tile[p][i]: the 4 rows a thread needs at step p lie side by side
  __shared__ T a_tile[kDepth][kTile + 1];  // + 1: the 16 threads storing one row write 16 banks, not one
  __shared__ T b_tile[kDepth][kTile];
  const int tx = threadIdx.x % kSide, ty = threadIdx.x / kSide;
  const int64_t row0 = int64_t(blockIdx.y) * kTile, col0 = int64_t(blockIdx.x) * kTile;
  T acc[kPerThread][kPerThread] = {};
  for (int64_t p0 = 0; p0 < k; p0 += kDepth) {
    // each thread loads 4 elements of each tile; past the edges of A and B it stores 0, which adds nothing
    for (int e = threadIdx.x; e < kTile * kDepth; e += kThreads) {
      const int i = e / kDepth, p = e % kDepth;  // 16 consecutive threads read 16 consecutive elements of a row
      const int64_t row = row0 + i, depth = p0 + p;
      a_tile[p][i] = row < m && depth < k ? a[row * k + depth] : T(0);
    }
    for (int e = threadIdx.x; e < kDepth * kTile; e += kThreads) {
      const int p = e / kTile, j = e % kTile;  // a warp reads 32 consecutive elements of a row of B
      const int64_t depth = p0 + p, col = col0 + j;
      b_tile[p][j] = depth < k && col < n ? b[depth * n + col] : T(0);
    }
    __syncthreads();  // the tiles are complete before anyone reads them
#pragma unroll
    for (int p = 0; p < kDepth; ++p) {
      T a_reg[kPerThread], b_reg[kPerThread];
#pragma unroll
      for (int i = 0; i < kPerThread; ++i) {
        a_reg[i] = a_tile[p][ty * kPerThread + i];  // one address for the 16 threads of a row: a broadcast
        b_reg[i] = b_tile[p][tx + i * kSide];       // consecutive threads, consecutive banks: no conflict
      }
#pragma unroll
      for (int i = 0; i < kPerThread; ++i) {
#pragma unroll
        for (int j = 0; j < kPerThread; ++j) {
          acc[i][j] += a_reg[i] * b_reg[j];
        }
      }
    }
    __syncthreads();  // everyone is done with the tiles before the next stage overwrites them
  }
#pragma unroll
  for (int i = 0; i < kPerThread; ++i) {
#pragma unroll
    for (int j = 0; j < kPerThread; ++j) {
      const int64_t row = row0 + ty * kPerThread + i, col = col0 + tx + j * kSide;
      if (row < m && col < n) {
        c[row * n + col] = acc[i][j];
      }
    }
  }
}

}  // namespace

template <typename T>
void launch_matmul(const T* a, const T* b, T* c, int64_t m, int64_t k, int64_t n, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>((n + kTile - 1) / kTile), static_cast<unsigned>((m + kTile - 1) / kTile));
  matmul_kernel<T><<<grid, kThreads, 0, stream>>>(a, b, c, m, k, n);
}

template void launch_matmul<float>(const float*, const float*, float*, int64_t, int64_t, int64_t, cudaStream_t);
template void launch_matmul<double>(const double*, const double*, double*, int64_t, int64_t, int64_t, cudaStream_t);
