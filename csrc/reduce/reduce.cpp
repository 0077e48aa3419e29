// a45 and m3-deep-2: the sum of all elements of a float32/float64 tensor, registered as torch.ops.torchkata.warp_sum
// (a45: blocks folded by warp shuffles) and shared_tree_sum (m3-deep-2: blocks folded by a shared-memory tree). On
// the CPU, a twin that adds the elements in exactly the CUDA kernels' order (reduce_cuda.cu, with the launch shape
// of reduce_grid.h): the GPU's threads become lanes of an array, summed by contiguous stretches of memory, and the
// folds of a block are the same pairings written as loops. The two halves therefore agree to the bit, and the
// rounding error is the tree's: each element goes through at most n / 2^18 + 16 additions, not n as in a loop.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>

#include <algorithm>
#include <vector>

#include "../common/kernel_checks.h"
#include "../common/op_library.h"
#include "reduce_grid.h"

#ifdef WITH_CUDA
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

template <typename T>
void launch_sum(const T* x, int64_t n, int64_t blocks, T* partial, T* out, bool warp_shuffle, cudaStream_t stream);
#endif

namespace {

using torchkata_reduce::blocks_for;
using torchkata_reduce::kBlock;
using torchkata_reduce::kWarp;

constexpr int64_t kGrain = 1 << 15;  // elements below which one thread does the whole pass

// What __shfl_down_sync does to lane 0 of a warp: at each step lane l adds lane l + offset. Returns lane 0's sum.
template <typename T>
T warp_fold(T* lanes) {
  for (int64_t offset = kWarp / 2; offset > 0; offset /= 2) {
    for (int64_t l = 0; l < offset; ++l) {
      lanes[l] += lanes[l + offset];
    }
  }
  return lanes[0];
}

// a45: each warp folds its 32 sums, and the first warp folds the 8 warp sums padded with zeros to 32 lanes.
template <typename T>
T warp_shuffle_block(T* sums) {
  T warp_sums[kWarp] = {};
  for (int64_t w = 0; w < kBlock / kWarp; ++w) {
    warp_sums[w] = warp_fold(sums + w * kWarp);
  }
  return warp_fold(warp_sums);
}

// m3-deep-2: the shared-memory tree with sequential addressing, t += t + s for s = 128, 64, ..., 1.
template <typename T>
T shared_tree_block(T* sums) {
  for (int64_t s = kBlock / 2; s > 0; s /= 2) {
    for (int64_t t = 0; t < s; ++t) {
      sums[t] += sums[t + s];
    }
  }
  return sums[0];
}

// acc[i] += x[i] for i < count, in chunks of a fixed 16 over restrict pointers: a loop of unknown length GCC -O2
// leaves scalar (it vectorises only loops with no scalar remainder; see a43's relu.cpp).
template <typename T>
void add_into(T* __restrict__ acc, const T* __restrict__ x, int64_t count) {
  constexpr int64_t kChunk = 16;
  int64_t i = 0;
  for (; i + kChunk <= count; i += kChunk) {
    for (int64_t j = 0; j < kChunk; ++j) {
      acc[i + j] += x[i + j];
    }
  }
  for (; i < count; ++i) {
    acc[i] += x[i];
  }
}

// One pass: `blocks` blocks of kBlock lanes; lane l (of blocks * kBlock) sums x[l], x[l + lanes], ... in that
// order, as the CUDA thread of its grid-stride loop does, then each block folds its lanes into partial[block].
// Threads take whole blocks, kGroup blocks at a time: the group's lanes (8 KiB of floats) stay in L1 while the
// loop adds contiguous 8 KiB stretches of x into them (a vectorised a[i] += x[i]), so x is read once, as by
// torch.sum.
template <typename T>
void reduce_pass(const T* x, int64_t n, int64_t blocks, T* partial, T (*fold_block)(T*)) {
  constexpr int64_t kGroup = 8;
  const int64_t lanes = blocks * kBlock;
  const int64_t per_block = kBlock * ((n + lanes - 1) / lanes);  // elements a block sums
  at::parallel_for(0, blocks, kGrain / std::max<int64_t>(per_block, 1) + 1, [&](int64_t begin, int64_t end) {
    T sums[kGroup * kBlock];
    for (int64_t group = begin; group < end; group += kGroup) {
      const int64_t first = group * kBlock, width = (std::min(end, group + kGroup) - group) * kBlock;
      T* acc = sums;
      std::fill(acc, acc + width, T(0));
      for (int64_t base = 0; base + first < n; base += lanes) {
        const T* chunk = x + base + first;
        add_into(acc, chunk, std::min(width, n - base - first));
      }
      for (int64_t b = group; b < group + width / kBlock; ++b) {
        partial[b] = fold_block(acc + (b - group) * kBlock);
      }
    }
  });
}

// The sum of x's n elements: the partial sums of blocks_for(n) blocks, then one block over them.
template <typename T>
T sum_cpu(const T* x, int64_t n, T (*fold_block)(T*)) {
  const int64_t blocks = blocks_for(n);
  std::vector<T> partial(blocks);
  reduce_pass(x, n, blocks, partial.data(), fold_block);
  T total;
  reduce_pass(partial.data(), blocks, 1, &total, fold_block);
  return total;
}

at::Tensor sum_all(const at::Tensor& x, const char* op, bool warp_shuffle) {
  torchkata::check_floating(x, op, "x");
  const at::Tensor x_in = x.contiguous();  // the kernels index flat memory
  const int64_t n = x_in.numel();
  if (n == 0) {
    return at::zeros({}, x_in.options());  // a sum over nothing
  }
  at::Tensor out = at::empty({}, x_in.options());
  AT_DISPATCH_FLOATING_TYPES(x_in.scalar_type(), "sum_all", [&] {
    if (x_in.is_cuda()) {
#ifdef WITH_CUDA
      const c10::cuda::CUDAGuard guard(x_in.device());
      const int64_t blocks = blocks_for(n);
      at::Tensor partial = at::empty({blocks}, x_in.options());
      launch_sum(x_in.data_ptr<scalar_t>(), n, blocks, partial.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(),
                 warp_shuffle, c10::cuda::getCurrentCUDAStream());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
#endif
    } else {
      *out.data_ptr<scalar_t>() = sum_cpu<scalar_t>(
          x_in.data_ptr<scalar_t>(), n, warp_shuffle ? warp_shuffle_block<scalar_t> : shared_tree_block<scalar_t>);
    }
  });
  return out;
}

at::Tensor warp_sum(const at::Tensor& x) {
  return sum_all(x, "warp_sum", /*warp_shuffle=*/true);
}

at::Tensor shared_tree_sum(const at::Tensor& x) {
  return sum_all(x, "shared_tree_sum", /*warp_shuffle=*/false);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(torchkata, m) {
  m.def("warp_sum(Tensor x) -> Tensor");
  m.def("shared_tree_sum(Tensor x) -> Tensor");
  m.def("reduce_has_cuda() -> bool", [] { return torchkata::kBuiltWithCuda; });
}

static void register_reduce(torch::Library& m) {
  m.impl("warp_sum", &warp_sum);
  m.impl("shared_tree_sum", &shared_tree_sum);
}

TORCHKATA_KERNELS(register_reduce)
