// a47: bilinear sampling, F.grid_sample(mode="bilinear", padding_mode="zeros") for input [N, C, H, W] and grid
// [N, Ho, Wo, 2] (x, y in [-1, 1]; float32 or float64), registered as torch.ops.torchkata.grid_sample and its backward
// grid_sample_backward (grad wrt input and grid). On the CPU the algorithm of the CUDA kernels (grid_sample_cuda.cu):
// the forward computes each grid point's four corners and weights once and loops over the channels; the backward
// is a gather for the grid's gradient and a scatter into the input's, which the GPU does with atomicAdd. A CPU
// scatter from threads would race (and atomics make the sum's order, so its rounding, vary run to run), so here each
// thread owns whole batch items of grad_input and adds into them in the grid's order: deterministic.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros_like.h>

#include <tuple>

#include "../common/kernel_checks.h"
#include "../common/op_library.h"
#include "bilinear.h"

#ifdef WITH_CUDA
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

template <typename T>
void launch_grid_sample(const T* input, const T* grid, T* output, int64_t n, int64_t c, int64_t h, int64_t w,
                        int64_t ho, int64_t wo, bool align_corners, cudaStream_t stream);
template <typename T>
void launch_grid_sample_backward(const T* grad_output, const T* input, const T* grid, T* grad_input, T* grad_grid,
                                 int64_t n, int64_t c, int64_t h, int64_t w, int64_t ho, int64_t wo,
                                 bool align_corners, cudaStream_t stream);
#endif

namespace {

namespace bilinear = torchkata_bilinear;

constexpr int64_t kGrainPoints = 1 << 12;  // grid points x channels below which one thread does the work

template <typename T>
void forward_cpu(const T* input, const T* grid, T* output, int64_t n, int64_t c, int64_t h, int64_t w, int64_t ho,
                 int64_t wo, bool align_corners) {
  const int64_t points = ho * wo;
  at::parallel_for(0, n * points, kGrainPoints / (c + 1) + 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      bilinear::sample_point(input, grid, output, i, c, h, w, points, align_corners);
    }
  });
}

// Both gradients in one pass over the grid points, computing each point's corners and weights once: the grid's
// gradient is a gather over channels; the input's a scatter, deterministic because a thread owns whole batch items
// (all their planes of grad_input) and adds into them in the grid's order. The parallelism is N.
template <typename T>
void backward_cpu(const T* grad_output, const T* input, const T* grid, T* grad_input, T* grad_grid, int64_t n,
                  int64_t c, int64_t h, int64_t w, int64_t ho, int64_t wo, bool align_corners) {
  const int64_t points = ho * wo;
  const auto add = [](T* pixel, T value) { *pixel += value; };  // no other thread adds into this batch item
  at::parallel_for(0, n, kGrainPoints / (points * c + 1) + 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin * points; i < end * points; ++i) {  // batch items begin..end, point by point
      bilinear::backward_point(grad_output, input, grid, grad_input, grad_grid, i, c, h, w, points, align_corners,
                               add);
    }
  });
}

void check_operands(const at::Tensor& input, const at::Tensor& grid, const char* op) {
  torchkata::check_floating(input, op, "input");
  TORCH_CHECK(input.dim() == 4, op, ": input must be 4-D [N, C, H, W], got shape ", input.sizes());
  TORCH_CHECK(grid.dim() == 4 && grid.size(3) == 2, op, ": grid must be [N, Ho, Wo, 2], got shape ", grid.sizes());
  TORCH_CHECK(input.size(0) == grid.size(0), op, ": input and grid must have one batch size, got shapes ",
              input.sizes(), " and ", grid.sizes());
  TORCH_CHECK(input.size(2) > 0 && input.size(3) > 0, op, ": input must have at least one pixel, got shape ",
              input.sizes());
  TORCH_CHECK(input.scalar_type() == grid.scalar_type(), op, ": input and grid must have one dtype, got ",
              input.scalar_type(), " and ", grid.scalar_type());
  TORCH_CHECK(input.device() == grid.device(), op, ": input and grid must be on one device, got ", input.device(),
              " and ", grid.device());
}

// Registered for the CPU and (WITH_CUDA) the CUDA dispatch key: one set of checks, the device's kernel. Operands
// of any strides are made contiguous first: the kernels index planes and grid points directly.
at::Tensor grid_sample(const at::Tensor& input, const at::Tensor& grid, bool align_corners) {
  check_operands(input, grid, "grid_sample");
  const int64_t n = input.size(0), c = input.size(1), h = input.size(2), w = input.size(3);
  const int64_t ho = grid.size(1), wo = grid.size(2);
  at::Tensor output = at::empty({n, c, ho, wo}, input.options());
  if (output.numel() == 0) {
    return output;
  }
  const at::Tensor in = input.contiguous(), g = grid.contiguous();
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "grid_sample", [&] {
    if (input.is_cuda()) {
#ifdef WITH_CUDA
      const c10::cuda::CUDAGuard guard(input.device());
      launch_grid_sample(in.data_ptr<scalar_t>(), g.data_ptr<scalar_t>(), output.data_ptr<scalar_t>(), n, c, h, w,
                         ho, wo, align_corners, c10::cuda::getCurrentCUDAStream());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
#endif
    } else {
      forward_cpu(in.data_ptr<scalar_t>(), g.data_ptr<scalar_t>(), output.data_ptr<scalar_t>(), n, c, h, w, ho, wo,
                  align_corners);
    }
  });
  return output;
}

std::tuple<at::Tensor, at::Tensor> grid_sample_backward(const at::Tensor& grad_output, const at::Tensor& input,
                                                        const at::Tensor& grid, bool align_corners) {
  check_operands(input, grid, "grid_sample_backward");
  const int64_t n = input.size(0), c = input.size(1), h = input.size(2), w = input.size(3);
  const int64_t ho = grid.size(1), wo = grid.size(2);
  TORCH_CHECK(grad_output.sizes() == at::IntArrayRef({n, c, ho, wo}),
              "grid_sample_backward: grad_output must have the output's shape [", n, ", ", c, ", ", ho, ", ", wo,
              "], got ", grad_output.sizes());
  TORCH_CHECK(grad_output.scalar_type() == input.scalar_type() && grad_output.device() == input.device(),
              "grid_sample_backward: grad_output must have input's dtype and device, got ", grad_output.scalar_type(),
              " on ", grad_output.device(), " and ", input.scalar_type(), " on ", input.device());
  at::Tensor grad_input = at::zeros_like(input, at::MemoryFormat::Contiguous);
  at::Tensor grad_grid = at::zeros_like(grid, at::MemoryFormat::Contiguous);
  if (grad_output.numel() == 0) {
    return {grad_input, grad_grid};  // nothing sampled (N, C, Ho or Wo empty): no gradient flows
  }
  const at::Tensor go = grad_output.contiguous(), in = input.contiguous(), g = grid.contiguous();
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "grid_sample_backward", [&] {
    if (input.is_cuda()) {
#ifdef WITH_CUDA
      const c10::cuda::CUDAGuard guard(input.device());
      launch_grid_sample_backward(go.data_ptr<scalar_t>(), in.data_ptr<scalar_t>(), g.data_ptr<scalar_t>(),
                                  grad_input.data_ptr<scalar_t>(), grad_grid.data_ptr<scalar_t>(), n, c, h, w, ho,
                                  wo, align_corners, c10::cuda::getCurrentCUDAStream());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
#endif
    } else {
      backward_cpu(go.data_ptr<scalar_t>(), in.data_ptr<scalar_t>(), g.data_ptr<scalar_t>(),
                   grad_input.data_ptr<scalar_t>(), grad_grid.data_ptr<scalar_t>(), n, c, h, w, ho, wo,
                   align_corners);
    }
  });
  return {grad_input, grad_grid};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(torchkata, m) {
  m.def("grid_sample(Tensor input, Tensor grid, bool align_corners) -> Tensor");
  m.def("grid_sample_backward(Tensor grad_output, Tensor input, Tensor grid, bool align_corners) -> (Tensor, Tensor)");
  m.def("grid_sample_has_cuda() -> bool", [] { return torchkata::kBuiltWithCuda; });
}

static void register_grid_sample(torch::Library& m) {
  m.impl("grid_sample", &grid_sample);
  m.impl("grid_sample_backward", &grid_sample_backward);
}

TORCHKATA_KERNELS(register_grid_sample)
