// a46: the CUDA half of kNN. One thread per query point keeps that query's sorted top-k in a local array; the block's
// 128 threads walk the reference points in tiles that they first stage together in shared memory, so each reference
// point is read from global memory once per block instead of once per query. Every thread then reads the same tile
// element at the same time (a broadcast, no bank conflict). For D = 3 the query sits in registers; for k above 64 the
// top-k lives in the output row itself (global memory, cached). Only CUDA's headers and plain ones: knn.cpp checks the
// tensors and passes raw pointers and the stream; the top-k is top_k.h, which the CPU twin shares.
#include <cuda_runtime.h>

#include <cstdint>

#include "top_k.h"

namespace {

namespace top_k = torchkata_knn;

constexpr int kThreads = 128;             // queries per block
constexpr int kTile = 256;                // reference points per shared-memory tile (fewer when D is large)
constexpr int kSharedBytes = 48 * 1024;   // the shared memory a block may take without opting in

// kDims: D known at compile time (the query in registers), or 0 (any D, the query read from global memory).
// kCap: the top-k in local arrays of kCap slots (k <= kCap), or 0 (any k, kept in the output row).
template <typename T, int kDims, int kCap>
__global__ void __launch_bounds__(kThreads) knn_kernel(const T* __restrict__ query, const T* __restrict__ reference,
                                                       int64_t n, int64_t m, int64_t d_runtime, int64_t k,
                                                       int tile_points, T* distances, int64_t* indices) {
  extern __shared__ unsigned char shared[];
  T* tile = reinterpret_cast<T*>(shared);  // coordinate-major: tile[c * tile_points + j]
  const int64_t d = kDims > 0 ? kDims : d_runtime;
  const int64_t qi = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  const bool active = qi < n;  // idle threads still load tiles and meet every __syncthreads

  T q[kDims > 0 ? kDims : 1];
  if (kDims > 0 && active) {
#pragma unroll
    for (int c = 0; c < (kDims > 0 ? kDims : 1); ++c) q[c] = query[qi * d + c];
  }
  T local_d[kCap > 0 ? kCap : 1];
  int64_t local_i[kCap > 0 ? kCap : 1];
  T* best_d = kCap > 0 ? local_d : distances + (active ? qi : 0) * k;
  int64_t* best_i = kCap > 0 ? local_i : indices + (active ? qi : 0) * k;
  if (active) {
    for (int64_t s = 0; s < k; ++s) {
      best_d[s] = T(INFINITY);
      best_i[s] = -1;
    }
  }

  for (int64_t j0 = 0; j0 < m; j0 += tile_points) {
    const int points = static_cast<int>(m - j0 < tile_points ? m - j0 : tile_points);
    // consecutive threads read consecutive coordinates of the tile's rows: coalesced
    for (int64_t e = threadIdx.x; e < int64_t(points) * d; e += kThreads) {
      tile[(e % d) * tile_points + e / d] = reference[j0 * d + e];
    }
    __syncthreads();  // the tile is complete before anyone reads it
    if (active) {
      for (int j = 0; j < points; ++j) {
        T distance = 0;
        if (kDims > 0) {
#pragma unroll
          for (int c = 0; c < (kDims > 0 ? kDims : 1); ++c) {
            const T diff = tile[c * tile_points + j] - q[c];
            distance += diff * diff;
          }
        } else {
          for (int64_t c = 0; c < d; ++c) {
            const T diff = tile[c * tile_points + j] - query[qi * d + c];
            distance += diff * diff;
          }
        }
        if (distance < best_d[k - 1]) {
          top_k::insert(distance, j0 + j, best_d, best_i, k);
        }
      }
    }
    __syncthreads();  // everyone is done with the tile before the next one overwrites it
  }

  if (kCap > 0 && active) {
    for (int64_t s = 0; s < k; ++s) {
      distances[qi * k + s] = best_d[s];
      indices[qi * k + s] = best_i[s];
    }
  }
}

template <typename T, int kDims>
void launch_for_k(const T* query, const T* reference, int64_t n, int64_t m, int64_t d, int64_t k, T* distances,
                  int64_t* indices, int tile_points, dim3 grid, size_t shared, cudaStream_t stream) {
  if (k <= 16) {
    knn_kernel<T, kDims, 16><<<grid, kThreads, shared, stream>>>(query, reference, n, m, d, k, tile_points,
                                                                  distances, indices);
  } else if (k <= 64) {
    knn_kernel<T, kDims, 64><<<grid, kThreads, shared, stream>>>(query, reference, n, m, d, k, tile_points,
                                                                  distances, indices);
  } else {
    knn_kernel<T, kDims, 0><<<grid, kThreads, shared, stream>>>(query, reference, n, m, d, k, tile_points,
                                                                 distances, indices);
  }
}

}  // namespace

// tiles of kTile points, or as many as fit kSharedBytes (knn.cpp checks that one point fits)
template <typename T>
void launch_knn(const T* query, const T* reference, int64_t n, int64_t m, int64_t d, int64_t k, T* distances,
                int64_t* indices, cudaStream_t stream) {
  const int64_t fit = kSharedBytes / (sizeof(T) * (d > 0 ? d : 1));
  const int tile_points = static_cast<int>(fit < kTile ? fit : kTile);
  const size_t shared = sizeof(T) * tile_points * (d > 0 ? d : 1);
  const dim3 grid(static_cast<unsigned>((n + kThreads - 1) / kThreads));
  if (d == 3) {
    launch_for_k<T, 3>(query, reference, n, m, d, k, distances, indices, tile_points, grid, shared, stream);
  } else {
    launch_for_k<T, 0>(query, reference, n, m, d, k, distances, indices, tile_points, grid, shared, stream);
  }
}

template void launch_knn<float>(const float*, const float*, int64_t, int64_t, int64_t, int64_t, float*, int64_t*,
                                cudaStream_t);
template void launch_knn<double>(const double*, const double*, int64_t, int64_t, int64_t, int64_t, double*,
                                 int64_t*, cudaStream_t);
