// a46: the k nearest neighbours of each query point among reference points, registered as torch.ops.torchkata.knn:
// query [N, D] and reference [M, D] (float32 or float64, one device), k in 1..M -> (squared distances [N, k], int64
// indices [N, k]), each row sorted ascending, ties to the lower reference index. On the CPU the algorithm of the
// CUDA kernel (knn_cuda.cu) one level up the memory hierarchy: the GPU stages a tile of reference points in shared
// memory and each thread keeps its query's sorted top-k in a local array; here a tile of reference points is copied,
// coordinate by coordinate, into a buffer that stays in L1, a block of queries scans it, and each query keeps its
// sorted top-k in a small array of its own. Blocks of queries are split over threads with at::parallel_for.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>

#include <algorithm>
#include <limits>
#include <tuple>
#include <vector>

#include "../common/kernel_checks.h"
#include "../common/op_library.h"
#include "top_k.h"

#ifdef WITH_CUDA
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

template <typename T>
void launch_knn(const T* query, const T* reference, int64_t n, int64_t m, int64_t d, int64_t k, T* distances,
                int64_t* indices, cudaStream_t stream);
#endif

namespace {

namespace top_k = torchkata_knn;

constexpr int64_t kTile = 256;        // reference points per tile: 256 x D coordinates, a few KiB in L1 for small D
constexpr int64_t kQueryBlock = 64;   // queries that scan one tile before the next tile is copied
constexpr int64_t kGrainPairs = 1 << 16;  // distances below which at::parallel_for keeps the work on one thread

template <typename T>
void knn_cpu(const at::Tensor& query, const at::Tensor& reference, int64_t k, at::Tensor& distances,
             at::Tensor& indices) {
  const int64_t n = query.size(0), m = reference.size(0), d = query.size(1);
  const int64_t qrs = query.stride(0), qcs = query.stride(1), rrs = reference.stride(0), rcs = reference.stride(1);
  const T *q = query.data_ptr<T>(), *r = reference.data_ptr<T>();
  T* out_d = distances.data_ptr<T>();
  int64_t* out_i = indices.data_ptr<int64_t>();
  const int64_t blocks = (n + kQueryBlock - 1) / kQueryBlock;
  at::parallel_for(0, blocks, kGrainPairs / (kQueryBlock * m * std::max<int64_t>(d, 1)) + 1,
                   [&](int64_t begin, int64_t end) {
    // the tile, coordinate-major (tile[c * kTile + j]): the distance loop over j is then unit-stride, and vectorises
    std::vector<T> tile(kTile * d), tile_d(kTile);
    for (int64_t q0 = begin * kQueryBlock; q0 < std::min(end * kQueryBlock, n); q0 += kQueryBlock) {
      const int64_t queries = std::min(kQueryBlock, n - q0);
      T* best_d = out_d + q0 * k;  // the output rows hold each query's top-k while it is built
      int64_t* best_i = out_i + q0 * k;
      std::fill(best_d, best_d + queries * k, std::numeric_limits<T>::infinity());
      std::fill(best_i, best_i + queries * k, int64_t(-1));
      for (int64_t j0 = 0; j0 < m; j0 += kTile) {
        const int64_t points = std::min(kTile, m - j0);
        for (int64_t c = 0; c < d; ++c) {
          for (int64_t j = 0; j < points; ++j) {
            tile[c * kTile + j] = r[(j0 + j) * rrs + c * rcs];
          }
        }
        for (int64_t i = 0; i < queries; ++i) {
          std::fill(tile_d.begin(), tile_d.begin() + points, T(0));
          for (int64_t c = 0; c < d; ++c) {
            const T qc = q[(q0 + i) * qrs + c * qcs];
            const T* column = tile.data() + c * kTile;
            for (int64_t j = 0; j < points; ++j) {
              const T diff = column[j] - qc;
              tile_d[j] += diff * diff;
            }
          }
          T* row_d = best_d + i * k;
          int64_t* row_i = best_i + i * k;
          for (int64_t j = 0; j < points; ++j) {
            if (tile_d[j] < row_d[k - 1]) {  // most points are farther than the current k-th: one compare each
              top_k::insert(tile_d[j], j0 + j, row_d, row_i, k);
            }
          }
        }
      }
    }
  });
}

// Registered for the CPU and (WITH_CUDA) the CUDA dispatch key: one set of checks, the device's kernel.
std::tuple<at::Tensor, at::Tensor> knn(const at::Tensor& query, const at::Tensor& reference, int64_t k) {
  torchkata::check_floating(query, "knn", "query");
  TORCH_CHECK(query.dim() == 2 && reference.dim() == 2,
              "knn: query and reference must be 2-D ([points, dims]), got shapes ", query.sizes(), " and ",
              reference.sizes());
  TORCH_CHECK(query.size(1) == reference.size(1), "knn: query and reference must have one number of dims, got shapes ",
              query.sizes(), " and ", reference.sizes());
  TORCH_CHECK(query.scalar_type() == reference.scalar_type(), "knn: query and reference must have one dtype, got ",
              query.scalar_type(), " and ", reference.scalar_type());
  TORCH_CHECK(query.device() == reference.device(), "knn: query and reference must be on one device, got ",
              query.device(), " and ", reference.device());
  TORCH_CHECK(k >= 1, "knn: k must be at least 1, got ", k);
  TORCH_CHECK(k <= reference.size(0), "knn: k (", k, ") must be at most the number of reference points (",
              reference.size(0), ")");
  at::Tensor distances = at::empty({query.size(0), k}, query.options());
  at::Tensor indices = at::empty({query.size(0), k}, query.options().dtype(at::kLong));
  if (query.size(0) == 0) {
    return {distances, indices};
  }
  AT_DISPATCH_FLOATING_TYPES(query.scalar_type(), "knn", [&] {
    if (query.is_cuda()) {
#ifdef WITH_CUDA
      TORCH_CHECK(query.size(1) * int64_t(sizeof(scalar_t)) <= 48 * 1024,
                  "knn: on CUDA one point must fit a shared-memory tile (48 KiB), got ", query.size(1), " dims");
      const c10::cuda::CUDAGuard guard(query.device());
      const at::Tensor q = query.contiguous(), r = reference.contiguous();  // tiles load rows of memory
      launch_knn(q.data_ptr<scalar_t>(), r.data_ptr<scalar_t>(), q.size(0), r.size(0), q.size(1), k,
                 distances.data_ptr<scalar_t>(), indices.data_ptr<int64_t>(), c10::cuda::getCurrentCUDAStream());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
#endif
    } else {
      knn_cpu<scalar_t>(query, reference, k, distances, indices);
    }
  });
  return {distances, indices};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(torchkata, m) {
  m.def("knn(Tensor query, Tensor reference, int k) -> (Tensor, Tensor)");
  m.def("knn_has_cuda() -> bool", [] { return torchkata::kBuiltWithCuda; });
}

static void register_knn(torch::Library& m) {
  m.impl("knn", &knn);
}

TORCHKATA_KERNELS(register_knn)
