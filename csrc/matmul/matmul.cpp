// a44: C = A @ B for 2-D float32/float64 A [M, K] and B [K, N], registered as torch.ops.torchkata.matmul. On the CPU
// the algorithm of the CUDA kernel (matmul_cuda.cu) one level up the memory hierarchy: the GPU stages tiles of A and
// B in shared memory and each thread keeps a small block of C in registers; here a panel of B waits in the L3
// cache, a block of A in L2, a sliver of B in L1, and a 6-row micro-tile of C in vector registers (the GotoBLAS
// layout). The rows of C are split over threads with at::parallel_for (OpenMP: op libraries build with -fopenmp).
// Inputs are read through their strides while they are packed, so a transposed or sliced operand costs no copy.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/zeros.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "../common/kernel_checks.h"
#include "../common/op_library.h"

#ifdef WITH_CUDA
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

template <typename T>
void launch_matmul(const T* a, const T* b, T* c, int64_t m, int64_t k, int64_t n, cudaStream_t stream);
#endif

namespace {

// Blocking, in elements. A micro-tile of C is kRows x Blocking<T, kBytes>::kCols: two vectors of B per row, so
// 6 x 2 vector accumulators, which with the two vectors of B and the broadcast of A fill the 16 vector registers
// of SSE2/NEON (16-byte vectors: 6 x 8 floats) and of AVX2 (32-byte vectors: 6 x 16 floats).
constexpr int64_t kRows = 6;          // rows of a micro-tile (a sliver of packed A)
constexpr int64_t kDepth = 256;       // K of one packed block: a sliver of B, kDepth x kCols, stays in L1 (16 KiB)
constexpr int64_t kBlockRows = 120;   // rows of a packed block of A: kBlockRows x kDepth floats (120 KiB) in L2
constexpr int64_t kPanelCols = 2048;  // columns of a packed panel of B: kDepth x kPanelCols floats (2 MiB) in L3
// Work below which at::parallel_for keeps a loop on one thread: waking a second thread costs microseconds, and on a
// busy machine a descheduled one holds the other at the barrier for milliseconds.
constexpr int64_t kGrainMultiplyAdds = 1 << 18;
constexpr int64_t kGrainCopies = 1 << 16;

template <typename T, int kBytes>
struct Blocking {
  typedef T Vec __attribute__((vector_size(kBytes)));  // a GCC/Clang vector: the compiler emits SIMD loads, mul, add
  static constexpr int64_t kLanes = kBytes / sizeof(T);
  static constexpr int64_t kCols = 2 * kLanes;  // columns of a micro-tile (a sliver of packed B)
};

// C[0:rows, 0:cols] += (packed sliver of A) @ (packed sliver of B) over `depth`: kRows x kCols accumulators in
// registers, one broadcast of A and two vector loads of B per step of p.
template <typename T, int kBytes>
__attribute__((always_inline)) inline void micro_tile(int64_t depth, const T* a, const T* b, T* c, int64_t ldc,
                                                      int64_t rows, int64_t cols) {
  using Vec = typename Blocking<T, kBytes>::Vec;
  constexpr int64_t kLanes = Blocking<T, kBytes>::kLanes, kCols = Blocking<T, kBytes>::kCols;
  Vec acc[kRows][2] = {};
  for (int64_t p = 0; p < depth; ++p, a += kRows, b += kCols) {
    Vec b0, b1;
    std::memcpy(&b0, b, sizeof(Vec));  // packed B is not aligned to a vector: memcpy is an unaligned load
    std::memcpy(&b1, b + kLanes, sizeof(Vec));
#pragma GCC unroll 6  // unrolled, the accumulators live in registers; as a loop -O2 keeps them in memory
    for (int64_t i = 0; i < kRows; ++i) {
      acc[i][0] += a[i] * b0;
      acc[i][1] += a[i] * b1;
    }
  }
  T tile[kRows][kCols];
  std::memcpy(tile, acc, sizeof(tile));
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = 0; j < cols; ++j) {
      c[i * ldc + j] += tile[i][j];
    }
  }
}

template <typename T>
using MicroKernel = void (*)(int64_t, const T*, const T*, T*, int64_t, int64_t, int64_t);

// 16-byte vectors: what every x86-64 (SSE2) and arm64 (NEON) machine has without -march flags.
template <typename T>
void micro_kernel_16(int64_t depth, const T* a, const T* b, T* c, int64_t ldc, int64_t rows, int64_t cols) {
  micro_tile<T, 16>(depth, a, b, c, ldc, rows, cols);
}

#if defined(__x86_64__)
// The same tile compiled for AVX2 and called only where the CPU has it: twice the columns per instruction, and a
// broadcast load of A instead of a load and a shuffle.
template <typename T>
__attribute__((target("avx2,fma"))) void micro_kernel_32(int64_t depth, const T* a, const T* b, T* c, int64_t ldc,
                                                          int64_t rows, int64_t cols) {
  micro_tile<T, 32>(depth, a, b, c, ldc, rows, cols);
}
#endif

// rows x depth of A (row stride ars, column stride acs) into slivers of kRows rows, each stored column after
// column: sliver s holds A[s*kRows + i][p] at (s*depth + p)*kRows + i. Rows past `rows` are zero, so the
// micro-kernel never tests an edge.
template <typename T>
void pack_a(const T* a, int64_t ars, int64_t acs, int64_t rows, int64_t depth, T* out) {
  for (int64_t s = 0; s < rows; s += kRows) {
    for (int64_t p = 0; p < depth; ++p) {
      for (int64_t i = 0; i < kRows; ++i) {
        *out++ = s + i < rows ? a[(s + i) * ars + p * acs] : T(0);
      }
    }
  }
}

// depth x cols of B (at most kCols columns) into one sliver stored row after row; columns past `cols` are zero.
template <typename T>
void pack_b_sliver(const T* b, int64_t brs, int64_t bcs, int64_t depth, int64_t cols, int64_t kCols, T* out) {
  for (int64_t p = 0; p < depth; ++p) {
    for (int64_t j = 0; j < kCols; ++j) {
      *out++ = j < cols ? b[p * brs + j * bcs] : T(0);
    }
  }
}

// c (m x n, contiguous, zeroed) += a @ b, a and b read through their strides, with micro-tiles kCols wide.
template <typename T>
void matmul_blocked(const at::Tensor& a, const at::Tensor& b, at::Tensor& c, int64_t kCols,
                    MicroKernel<T> micro_kernel) {
  const int64_t m = a.size(0), k = a.size(1), n = b.size(1);
  const int64_t ars = a.stride(0), acs = a.stride(1), brs = b.stride(0), bcs = b.stride(1);
  const T *pa = a.data_ptr<T>(), *pb = b.data_ptr<T>();
  T* out = c.data_ptr<T>();
  const int64_t slivers_of_a = (m + kRows - 1) / kRows;
  const int64_t widest_panel = (std::min(n, kPanelCols) + kCols - 1) / kCols * kCols;
  std::vector<T> packed_b(std::min(k, kDepth) * widest_panel);
  for (int64_t jc = 0; jc < n; jc += kPanelCols) {
    const int64_t panel_cols = std::min(kPanelCols, n - jc);
    const int64_t slivers_of_b = (panel_cols + kCols - 1) / kCols;
    for (int64_t pc = 0; pc < k; pc += kDepth) {
      const int64_t depth = std::min(kDepth, k - pc);
      at::parallel_for(0, slivers_of_b, kGrainCopies / (depth * kCols) + 1, [&](int64_t begin, int64_t end) {
        for (int64_t s = begin; s < end; ++s) {
          pack_b_sliver(pb + pc * brs + (jc + s * kCols) * bcs, brs, bcs, depth,
                        std::min(kCols, panel_cols - s * kCols), kCols, packed_b.data() + s * depth * kCols);
        }
      });
      // each thread takes an even share of the slivers of A (rows of C), packing them kBlockRows at a time
      const int64_t grain = kGrainMultiplyAdds / (kRows * depth * panel_cols) + 1;
      at::parallel_for(0, slivers_of_a, grain, [&](int64_t begin, int64_t end) {
        std::vector<T> packed_a(kBlockRows * depth);
        for (int64_t ic = begin * kRows; ic < std::min(end * kRows, m); ic += kBlockRows) {
          const int64_t block_rows = std::min({kBlockRows, end * kRows - ic, m - ic});
          pack_a(pa + ic * ars + pc * acs, ars, acs, block_rows, depth, packed_a.data());
          for (int64_t jr = 0; jr < panel_cols; jr += kCols) {  // a sliver of B stays in L1 over the block of A
            for (int64_t ir = 0; ir < block_rows; ir += kRows) {
              micro_kernel(depth, packed_a.data() + ir * depth, packed_b.data() + jr * depth,
                           out + (ic + ir) * n + jc + jr, n, std::min(kRows, block_rows - ir),
                           std::min(kCols, panel_cols - jr));
            }
          }
        }
      });
    }
  }
}

template <typename T>
void matmul_cpu(const at::Tensor& a, const at::Tensor& b, at::Tensor& c) {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    return matmul_blocked<T>(a, b, c, Blocking<T, 32>::kCols, micro_kernel_32<T>);
  }
#endif
  matmul_blocked<T>(a, b, c, Blocking<T, 16>::kCols, micro_kernel_16<T>);
}

// Registered for the CPU and (WITH_CUDA) the CUDA dispatch key: one set of checks, the device's kernel.
at::Tensor matmul(const at::Tensor& a, const at::Tensor& b) {
  torchkata::check_floating(a, "matmul", "a");
  TORCH_CHECK(a.dim() == 2 && b.dim() == 2, "matmul: a and b must be 2-D, got shapes ", a.sizes(), " and ",
              b.sizes());
  TORCH_CHECK(a.size(1) == b.size(0), "matmul: a's columns must match b's rows, got shapes ", a.sizes(), " and ",
              b.sizes());
  TORCH_CHECK(a.scalar_type() == b.scalar_type(), "matmul: a and b must have one dtype, got ", a.scalar_type(),
              " and ", b.scalar_type());
  TORCH_CHECK(a.device() == b.device(), "matmul: a and b must be on one device, got ", a.device(), " and ",
              b.device());
  at::Tensor c = at::zeros({a.size(0), b.size(1)}, a.options());
  if (c.numel() == 0 || a.size(1) == 0) {
    return c;  // an empty product, or a sum over nothing
  }
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "matmul", [&] {
    if (a.is_cuda()) {
#ifdef WITH_CUDA
      const c10::cuda::CUDAGuard guard(a.device());
      const at::Tensor a_in = a.contiguous(), b_in = b.contiguous();  // the CUDA tiles load rows of memory
      launch_matmul(a_in.data_ptr<scalar_t>(), b_in.data_ptr<scalar_t>(), c.data_ptr<scalar_t>(), a.size(0),
                    a.size(1), b.size(1), c10::cuda::getCurrentCUDAStream());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
#endif
    } else {
      matmul_cpu<scalar_t>(a, b, c);
    }
  });
  return c;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(torchkata, m) {
  m.def("matmul(Tensor a, Tensor b) -> Tensor");
  m.def("matmul_has_cuda() -> bool", [] { return torchkata::kBuiltWithCuda; });
}

static void register_matmul(torch::Library& m) {
  m.impl("matmul", &matmul);
}

TORCHKATA_KERNELS(register_matmul)
