// m3-deep-1: LayerNorm over the last dimension fused with Dropout, y = (LN(x) * weight + bias) * keep / (1 - p), and
// its backward, registered as torch.ops.torchkata.layernorm_dropout_forward / layernorm_dropout_backward. One pass
// over a row does what the eager pair F.layer_norm + F.dropout does in three (normalise, draw the mask, multiply):
// the mask is a hash of (seed, row, column) (dropout_hash.h), drawn where the output is written, never a tensor of
// random numbers of its own.
//
// The CPU twin of the CUDA kernel (layernorm_dropout_cuda.cu: one block per row, its threads folded by warp
// shuffles): a task of at::parallel_for takes whole rows, and a row is summed by 16 lanes, lane l adding elements
// l, l + 16, ... (a block of 16 "threads", which GCC turns into vector adds), then the lanes folded pairwise as a
// warp folds. Mean and variance by two passes, not Welford: the row is in L1 (a 1024-float row is 4 KiB), so the
// second pass costs a reread from cache, and a pass is a plain add per element (Welford divides per element and
// its merges carry three numbers); subtracting the mean before squaring keeps the variance exact where
// E[x^2] - E[x]^2 would cancel (rows far from zero).
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/zeros.h>

#include <cmath>
#include <tuple>
#include <vector>

#include "../common/kernel_checks.h"
#include "../common/op_library.h"
#include "dropout_hash.h"

#ifdef WITH_CUDA
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

template <typename T>
void launch_layernorm_dropout_forward(const T* x, const T* weight, const T* bias, T* y, bool* mask, T* mean, T* rstd,
                                      int64_t rows, int64_t width, double eps, double p, uint32_t seed,
                                      cudaStream_t stream);
template <typename T>
void launch_layernorm_dropout_backward(const T* grad_y, const T* x, const T* weight, const T* mean, const T* rstd,
                                       const bool* mask, double scale, int64_t rows, int64_t width, T* grad_x,
                                       T* partial, T* grad_weight, T* grad_bias, cudaStream_t stream);
#endif

namespace {

namespace hash = torchkata_dropout;

constexpr int64_t kLanes = 16;      // the CPU's "threads" of a row
constexpr int64_t kGrain = 1 << 14;  // elements below which one thread does all the rows
// rows whose weight and bias gradients one task sums before they are added up column by column (the CUDA
// kernel's row chunks): a fixed split, so the sums and their rounding do not depend on the thread count
constexpr int64_t kChunkRows = 32;

// The sum of term(0), ..., term(n - 1) in double: lane l adds the terms l, l + kLanes, ..., then the lanes are
// folded pairwise (lane l adds lane l + s, s = 8, 4, 2, 1), the order of a warp's shuffles.
template <typename Term>
double lane_sum(int64_t n, Term term) {
  double lanes[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int64_t l = 0; l < kLanes; ++l) {
      lanes[l] += term(i + l);
    }
  }
  for (int64_t l = 0; i + l < n; ++l) {
    lanes[l] += term(i + l);
  }
  for (int64_t s = kLanes / 2; s > 0; s /= 2) {
    for (int64_t l = 0; l < s; ++l) {
      lanes[l] += lanes[l + s];
    }
  }
  return lanes[0];
}

template <typename T>
void forward_cpu(const T* x, const T* weight, const T* bias, T* y, bool* mask, T* mean, T* rstd, int64_t rows,
                 int64_t width, double eps, double p, uint32_t seed) {
  const uint64_t threshold = hash::threshold(p);
  const T scale = static_cast<T>(hash::keep_scale(p));
  at::parallel_for(0, rows, kGrain / width + 1, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T* xr = x + r * width;
      const double mu = lane_sum(width, [&](int64_t j) { return double(xr[j]); }) / width;
      const double var = lane_sum(width, [&](int64_t j) { return (xr[j] - mu) * (xr[j] - mu); }) / width;
      const T m = static_cast<T>(mu), inv = static_cast<T>(1.0 / std::sqrt(var + eps));
      mean[r] = m;
      rstd[r] = inv;
      const uint32_t key = hash::row_key(seed, r);
      T* yr = y + r * width;
      bool* mr = mask + r * width;
      for (int64_t j = 0; j < width; ++j) {
        const bool kept = hash::keep(key, j, threshold);
        mr[j] = kept;
        yr[j] = ((xr[j] - m) * inv * weight[j] + bias[j]) * (kept ? scale : T(0));
      }
    }
  });
}

// grad_x row by row (two sums per row, as the forward's), and the weight and bias gradients: each chunk of
// kChunkRows rows sums its rows into partial[chunk] (weight) and partial[chunks + chunk] (bias), then each column
// adds its chunks in order.
template <typename T>
void backward_cpu(const T* grad_y, const T* x, const T* weight, const T* mean, const T* rstd, const bool* mask,
                  double p, int64_t rows, int64_t width, T* grad_x, T* grad_weight, T* grad_bias) {
  const T scale = static_cast<T>(hash::keep_scale(p));
  const int64_t chunks = (rows + kChunkRows - 1) / kChunkRows;
  std::vector<double> partial(2 * chunks * width, 0.0);
  at::parallel_for(0, chunks, kGrain / (kChunkRows * width) + 1, [&](int64_t begin, int64_t end) {
    std::vector<T> g(width), xhat(width);
    for (int64_t c = begin; c < end; ++c) {
      double* pw = partial.data() + c * width;
      double* pb = partial.data() + (chunks + c) * width;
      for (int64_t r = c * kChunkRows; r < std::min(rows, (c + 1) * kChunkRows); ++r) {
        const T *xr = x + r * width, *gr = grad_y + r * width;
        const bool* mr = mask + r * width;
        for (int64_t j = 0; j < width; ++j) {
          g[j] = mr[j] ? gr[j] * scale : T(0);  // the gradient reaching LN(x) * weight + bias
          xhat[j] = (xr[j] - mean[r]) * rstd[r];
          pw[j] += g[j] * xhat[j];
          pb[j] += g[j];
        }
        // d xhat = g * weight; grad_x = rstd * (d xhat - mean(d xhat) - xhat * mean(d xhat * xhat))
        const double mean_d = lane_sum(width, [&](int64_t j) { return double(g[j] * weight[j]); }) / width;
        const double mean_dx = lane_sum(width, [&](int64_t j) { return double(g[j] * weight[j] * xhat[j]); }) / width;
        const T md = static_cast<T>(mean_d), mdx = static_cast<T>(mean_dx);
        T* out = grad_x + r * width;
        for (int64_t j = 0; j < width; ++j) {
          out[j] = rstd[r] * (g[j] * weight[j] - md - xhat[j] * mdx);
        }
      }
    }
  });
  at::parallel_for(0, width, kGrain / (chunks + 1) + 1, [&](int64_t begin, int64_t end) {
    for (int64_t j = begin; j < end; ++j) {
      double w = 0.0, b = 0.0;
      for (int64_t c = 0; c < chunks; ++c) {
        w += partial[c * width + j];
        b += partial[(chunks + c) * width + j];
      }
      grad_weight[j] = static_cast<T>(w);
      grad_bias[j] = static_cast<T>(b);
    }
  });
}

// weight or bias: one value per column of x, of x's dtype and device.
void check_column_vector(const at::Tensor& x, const at::Tensor& t, const char* op, const char* name) {
  const int64_t width = x.size(-1);
  TORCH_CHECK(t.dim() == 1 && t.size(0) == width, op, ": ", name, " must have shape [", width,
              "] (x's last dimension), got ", t.sizes());
  TORCH_CHECK(t.scalar_type() == x.scalar_type(), op, ": x and ", name, " must have one dtype, got ", x.scalar_type(),
              " and ", t.scalar_type());
  TORCH_CHECK(t.device() == x.device(), op, ": x and ", name, " must be on one device, got ", x.device(), " and ",
              t.device());
}

void check_x(const at::Tensor& x, const char* op) {
  torchkata::check_floating(x, op, "x");
  TORCH_CHECK(x.dim() >= 1, op, ": x must have at least one dimension, got a 0-d tensor");
}

// (y, mean, rstd, mask): y and mask of x's shape, mean and rstd one per row (x's dtype).
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> layernorm_dropout_forward(
    const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, double p, int64_t seed, double eps) {
  const char* op = "layernorm_dropout_forward";
  check_x(x, op);
  check_column_vector(x, weight, op, "weight");
  check_column_vector(x, bias, op, "bias");
  TORCH_CHECK(p >= 0.0 && p <= 1.0, op, ": p must be in [0, 1], got ", p);
  TORCH_CHECK(seed >= 0 && seed < (int64_t(1) << 32), op, ": seed must be in [0, 2**32), got ", seed);
  const at::Tensor x_in = x.contiguous(), w_in = weight.contiguous(), b_in = bias.contiguous();
  const int64_t width = x.size(-1), rows = width ? x.numel() / width : 0;
  at::Tensor y = at::empty_like(x_in), mask = at::empty(x_in.sizes(), x_in.options().dtype(at::kBool));
  at::Tensor mean = at::zeros({rows}, x_in.options()), rstd = at::zeros({rows}, x_in.options());
  if (x_in.numel() == 0) {
    return {y, mean, rstd, mask};
  }
  AT_DISPATCH_FLOATING_TYPES(x_in.scalar_type(), "layernorm_dropout", [&] {
    const auto args = std::make_tuple(x_in.data_ptr<scalar_t>(), w_in.data_ptr<scalar_t>(), b_in.data_ptr<scalar_t>(),
                                      y.data_ptr<scalar_t>(), mask.data_ptr<bool>(), mean.data_ptr<scalar_t>(),
                                      rstd.data_ptr<scalar_t>(), rows, width, eps, p, static_cast<uint32_t>(seed));
    if (x_in.is_cuda()) {
#ifdef WITH_CUDA
      const c10::cuda::CUDAGuard guard(x_in.device());
      std::apply([](auto... a) { launch_layernorm_dropout_forward<scalar_t>(a..., c10::cuda::getCurrentCUDAStream()); },
                 args);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
#endif
    } else {
      std::apply(forward_cpu<scalar_t>, args);
    }
  });
  return {y, mean, rstd, mask};
}

// (grad_x, grad_weight, grad_bias) from the gradient of y and what the forward saved.
std::tuple<at::Tensor, at::Tensor, at::Tensor> layernorm_dropout_backward(
    const at::Tensor& grad_y, const at::Tensor& x, const at::Tensor& weight, const at::Tensor& mean,
    const at::Tensor& rstd, const at::Tensor& mask, double p) {
  const char* op = "layernorm_dropout_backward";
  check_x(x, op);
  check_column_vector(x, weight, op, "weight");
  torchkata::check_same_layout(grad_y, x, op, "grad_y", "x");
  const int64_t width = x.size(-1), rows = width ? x.numel() / width : 0;
  torchkata::check_same_layout(mean, rstd, op, "mean", "rstd");
  TORCH_CHECK(mean.numel() == rows, op, ": mean and rstd must have one value per row (", rows, "), got ", mean.numel());
  TORCH_CHECK(mask.sizes() == x.sizes() && mask.scalar_type() == at::kBool, op,
              ": mask must be a bool tensor of x's shape ", x.sizes(), ", got ", mask.scalar_type(), " ", mask.sizes());
  const at::Tensor g_in = grad_y.contiguous(), x_in = x.contiguous(), w_in = weight.contiguous(),
                   m_in = mask.contiguous(), mean_in = mean.contiguous(), rstd_in = rstd.contiguous();
  at::Tensor grad_x = at::empty_like(x_in), grad_weight = at::zeros({width}, x_in.options()),
             grad_bias = at::zeros({width}, x_in.options());
  if (x_in.numel() == 0) {
    return {grad_x, grad_weight, grad_bias};
  }
  AT_DISPATCH_FLOATING_TYPES(x_in.scalar_type(), "layernorm_dropout", [&] {
    const scalar_t *gy = g_in.data_ptr<scalar_t>(), *xp = x_in.data_ptr<scalar_t>(), *wp = w_in.data_ptr<scalar_t>(),
                   *mp = mean_in.data_ptr<scalar_t>(), *rp = rstd_in.data_ptr<scalar_t>();
    scalar_t *gx = grad_x.data_ptr<scalar_t>(), *gw = grad_weight.data_ptr<scalar_t>(),
             *gb = grad_bias.data_ptr<scalar_t>();
    if (x_in.is_cuda()) {
#ifdef WITH_CUDA
      const c10::cuda::CUDAGuard guard(x_in.device());
      at::Tensor partial = at::empty({2 * ((rows + kChunkRows - 1) / kChunkRows), width}, x_in.options());
      launch_layernorm_dropout_backward(gy, xp, wp, mp, rp, m_in.data_ptr<bool>(), hash::keep_scale(p), rows, width,
                                        gx, partial.data_ptr<scalar_t>(), gw, gb, c10::cuda::getCurrentCUDAStream());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
#endif
    } else {
      backward_cpu(gy, xp, wp, mp, rp, m_in.data_ptr<bool>(), p, rows, width, gx, gw, gb);
    }
  });
  return {grad_x, grad_weight, grad_bias};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(torchkata, m) {
  m.def("layernorm_dropout_forward(Tensor x, Tensor weight, Tensor bias, float p, int seed, float eps)"
        " -> (Tensor, Tensor, Tensor, Tensor)");
  m.def("layernorm_dropout_backward(Tensor grad_y, Tensor x, Tensor weight, Tensor mean, Tensor rstd, Tensor mask,"
        " float p) -> (Tensor, Tensor, Tensor)");
  m.def("layernorm_dropout_has_cuda() -> bool", [] { return torchkata::kBuiltWithCuda; });
}

static void register_layernorm_dropout(torch::Library& m) {
  m.impl("layernorm_dropout_forward", &layernorm_dropout_forward);
  m.impl("layernorm_dropout_backward", &layernorm_dropout_backward);
}

TORCHKATA_KERNELS(register_layernorm_dropout)
