// a49: the rasterizer of a simplified 3-D Gaussian splatting, for gaussians already projected to 2-D and sorted
// front to back (src/torchkata/extensions/splat.py does both in torch), registered as torch.ops.torchkata.splat_rasterize
// and its backward splat_rasterize_backward. On the CPU the algorithm of the CUDA kernels (splat_cuda.cu):
// - binning: the image is cut into 16 x 16 tiles; a tile's list is the gaussians whose square (mean +- radius)
//   overlaps it, in depth order;
// - blending: every pixel of the tile walks that list front to back, alpha = opacity x falloff (capped at 0.99,
//   skipped below 1/255), colour += colour_i alpha T, T *= 1 - alpha, and stops before T would fall below 1e-4;
//   it records how many list entries it used (`contributors`), where the backward stops;
// - backward: the same walk, front to back, with the forward's colour: the light behind gaussian k is the
//   output minus what the first k added. The CUDA kernel adds each pixel's gradients with atomicAdd; here each tile
//   gathers its own, and they are added in tile order afterwards: the same bits on any number of threads.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <ATen/ops/zeros_like.h>

#include <algorithm>
#include <tuple>
#include <utility>
#include <vector>

#include "../common/kernel_checks.h"
#include "../common/op_library.h"
#include "splat.h"

#ifdef WITH_CUDA
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

template <typename T>
void launch_splat_forward(const splat::Gaussians<T>& g, int h, int w, T background, T* image, int32_t* contributors,
                          cudaStream_t stream);
template <typename T>
void launch_splat_backward(const splat::Gaussians<T>& g, int h, int w, const T* grad_image, const T* image,
                           const int32_t* contributors, const splat::Grads<T>& grads, cudaStream_t stream);
#endif

namespace {

using splat::kTile;

int tiles_across(int pixels) { return (pixels + kTile - 1) / kTile; }

// A tile's list: the gaussians that overlap it, front to back (the order they come in).
template <typename T>
std::vector<int64_t> bin_tile(const splat::Gaussians<T>& g, int tx, int ty) {
  std::vector<int64_t> list;
  for (int64_t i = 0; i < g.n; ++i) {
    if (splat::touches_tile(g, i, tx, ty)) list.push_back(i);
  }
  return list;
}

// Calls pixel(x, y, list) for every pixel of every tile, the tiles split over threads, each binned once.
template <typename T, typename PixelFn>
void for_each_tile(const splat::Gaussians<T>& g, int h, int w, PixelFn pixel) {
  const int tiles_x = tiles_across(w);
  at::parallel_for(0, int64_t(tiles_x) * tiles_across(h), 1, [&](int64_t begin, int64_t end) {
    for (int64_t tile = begin; tile < end; ++tile) {
      const int tx = tile % tiles_x, ty = tile / tiles_x;
      const std::vector<int64_t> list = bin_tile(g, tx, ty);
      for (int y = ty * kTile; y < std::min(h, (ty + 1) * kTile); ++y) {
        for (int x = tx * kTile; x < std::min(w, (tx + 1) * kTile); ++x) pixel(tile, x, y, list);
      }
    }
  });
}

template <typename T>
void forward_cpu(const splat::Gaussians<T>& g, int h, int w, T background, T* image, int32_t* contributors) {
  const int c = g.channels;
  for_each_tile(g, h, w, [&](int64_t, int x, int y, const std::vector<int64_t>& list) {
    T transmittance = 1, colour[splat::kMaxChannels] = {};
    int32_t used = 0;
    for (size_t k = 0; k < list.size(); ++k) {
      const int64_t i = list[k];
      const T alpha = std::min(T(splat::kMaxAlpha), g.opacities[i] * splat::falloff(g.conics + 3 * i,
                                                                                    x + T(0.5) - g.means[2 * i],
                                                                                    y + T(0.5) - g.means[2 * i + 1]));
      if (alpha < T(splat::kMinAlpha)) continue;
      const T next = transmittance * (1 - alpha);
      if (next < T(splat::kMinTransmittance)) break;  // this one would leave too little light: stop before it
      const T weight = alpha * transmittance;
      for (int ch = 0; ch < c; ++ch) colour[ch] += g.colours[i * c + ch] * weight;
      transmittance = next;
      used = k + 1;
    }
    for (int ch = 0; ch < c; ++ch) image[(int64_t(ch) * h + y) * w + x] = colour[ch] + transmittance * background;
    contributors[int64_t(y) * w + x] = used;
  });
}

// Per tile, the gradients of its list's gaussians ([list size, 6 + channels]: mean x, y, conic a, b, c, opacity,
// colours), added into the outputs in tile order once all tiles are done.
template <typename T>
void backward_cpu(const splat::Gaussians<T>& g, int h, int w, const T* grad_image, const T* image,
                  const int32_t* contributors, const splat::Grads<T>& grads) {
  const int c = g.channels, stride = 6 + c;
  const int64_t tiles = int64_t(tiles_across(w)) * tiles_across(h);
  std::vector<std::vector<int64_t>> lists(tiles);
  std::vector<std::vector<T>> tile_grads(tiles);
  for_each_tile(g, h, w, [&](int64_t tile, int x, int y, const std::vector<int64_t>& list) {
    if (x % kTile == 0 && y % kTile == 0) {  // the tile's first pixel: keep its list, size its gradients
      lists[tile] = list;
      tile_grads[tile].assign(list.size() * stride, T(0));
    }
    const int64_t p = int64_t(y) * w + x;
    T transmittance = 1, front[splat::kMaxChannels] = {}, grad_out[splat::kMaxChannels], out[splat::kMaxChannels];
    for (int ch = 0; ch < c; ++ch) {
      grad_out[ch] = grad_image[ch * int64_t(h) * w + p];
      out[ch] = image[ch * int64_t(h) * w + p];
    }
    for (int32_t k = 0; k < contributors[p]; ++k) {
      const int64_t i = list[k];
      const T* conic = g.conics + 3 * i;
      const T dx = x + T(0.5) - g.means[2 * i], dy = y + T(0.5) - g.means[2 * i + 1];
      const T gauss = splat::falloff(conic, dx, dy), raw = g.opacities[i] * gauss;
      const T alpha = std::min(T(splat::kMaxAlpha), raw);
      if (alpha < T(splat::kMinAlpha)) continue;
      const T weight = alpha * transmittance;
      T* grad = tile_grads[tile].data() + k * stride;
      T grad_alpha = 0;
      for (int ch = 0; ch < c; ++ch) {
        front[ch] += g.colours[i * c + ch] * weight;
        grad[6 + ch] += grad_out[ch] * weight;
        // out = front + colour alpha T + (1 - alpha) x (the light behind, out - front after this one, / (1 - alpha))
        grad_alpha += grad_out[ch] * (g.colours[i * c + ch] * transmittance - (out[ch] - front[ch]) / (1 - alpha));
      }
      transmittance *= 1 - alpha;
      if (raw > T(splat::kMaxAlpha)) continue;  // capped: alpha does not move with opacity, mean or conic
      grad[5] += grad_alpha * gauss;
      const T grad_power = grad_alpha * raw;  // d alpha / d power = opacity x falloff
      grad[0] += grad_power * (conic[0] * dx + conic[1] * dy);
      grad[1] += grad_power * (conic[1] * dx + conic[2] * dy);
      grad[2] += grad_power * T(-0.5) * dx * dx;
      grad[3] += grad_power * -dx * dy;
      grad[4] += grad_power * T(-0.5) * dy * dy;
    }
  });
  for (int64_t tile = 0; tile < tiles; ++tile) {
    for (size_t k = 0; k < lists[tile].size(); ++k) {
      const int64_t i = lists[tile][k];
      const T* grad = tile_grads[tile].data() + k * stride;
      for (int j = 0; j < 2; ++j) grads.means[2 * i + j] += grad[j];
      for (int j = 0; j < 3; ++j) grads.conics[3 * i + j] += grad[2 + j];
      grads.opacities[i] += grad[5];
      for (int ch = 0; ch < c; ++ch) grads.colours[i * c + ch] += grad[6 + ch];
    }
  }
}

void check_gaussians(const at::Tensor& means2d, const at::Tensor& conics, const at::Tensor& colours,
                     const at::Tensor& opacities, const at::Tensor& radii, int64_t height, int64_t width,
                     const char* op) {
  torchkata::check_floating(means2d, op, "means2d");
  TORCH_CHECK(means2d.dim() == 2 && means2d.size(1) == 2, op, ": means2d must be [N, 2], got shape ", means2d.sizes());
  const int64_t n = means2d.size(0);
  TORCH_CHECK(conics.dim() == 2 && conics.size(0) == n && conics.size(1) == 3, op, ": conics must be [N, 3] with N = ",
              n, ", got shape ", conics.sizes());
  TORCH_CHECK(colours.dim() == 2 && colours.size(0) == n && colours.size(1) >= 1 &&
                  colours.size(1) <= splat::kMaxChannels,
              op, ": colours must be [N, C] with N = ", n, " and 1 <= C <= ", splat::kMaxChannels, ", got shape ",
              colours.sizes());
  TORCH_CHECK(opacities.dim() == 1 && opacities.size(0) == n, op, ": opacities must be [N] with N = ", n,
              ", got shape ", opacities.sizes());
  TORCH_CHECK(radii.dim() == 1 && radii.size(0) == n, op, ": radii must be [N] with N = ", n, ", got shape ",
              radii.sizes());
  TORCH_CHECK(radii.scalar_type() == at::kInt, op, ": radii must be int32, got ", radii.scalar_type());
  for (const auto& [t, name] : {std::pair{conics, "conics"}, {colours, "colours"}, {opacities, "opacities"}}) {
    TORCH_CHECK(t.scalar_type() == means2d.scalar_type(), op, ": ", name, " must have the dtype of means2d (",
                means2d.scalar_type(), "), got ", t.scalar_type());
  }
  for (const auto& [t, name] : {std::pair{conics, "conics"}, {colours, "colours"}, {opacities, "opacities"},
                                {radii, "radii"}}) {
    TORCH_CHECK(t.device() == means2d.device(), op, ": ", name, " must be on the device of means2d (",
                means2d.device(), "), got ", t.device());
  }
  TORCH_CHECK(height >= 1 && width >= 1 && height <= (1 << 20) && width <= (1 << 20), op,
              ": the image must be 1 to 2^20 pixels a side, got ", height, " x ", width);
}

// The views the kernels read: contiguous copies where the operands were not.
struct Operands {
  at::Tensor means2d, conics, colours, opacities, radii;

  template <typename T>
  splat::Gaussians<T> gaussians() const {
    return {means2d.data_ptr<T>(), conics.data_ptr<T>(), colours.data_ptr<T>(), opacities.data_ptr<T>(),
            radii.data_ptr<int32_t>(), means2d.size(0), static_cast<int>(colours.size(1))};
  }
};

Operands contiguous(const at::Tensor& means2d, const at::Tensor& conics, const at::Tensor& colours,
                    const at::Tensor& opacities, const at::Tensor& radii) {
  return {means2d.contiguous(), conics.contiguous(), colours.contiguous(), opacities.contiguous(), radii.contiguous()};
}

// Registered for the CPU and (WITH_CUDA) the CUDA dispatch key: one set of checks, the device's kernel.
// -> (image [C, H, W], contributors [H, W] int32: how many entries of its tile's list each pixel used)
std::tuple<at::Tensor, at::Tensor> splat_rasterize(const at::Tensor& means2d, const at::Tensor& conics,
                                                   const at::Tensor& colours, const at::Tensor& opacities,
                                                   const at::Tensor& radii, int64_t height, int64_t width,
                                                   double background) {
  check_gaussians(means2d, conics, colours, opacities, radii, height, width, "splat_rasterize");
  const int h = height, w = width;
  at::Tensor image = at::empty({colours.size(1), h, w}, colours.options());
  at::Tensor contributors = at::empty({h, w}, radii.options());
  const Operands in = contiguous(means2d, conics, colours, opacities, radii);
  AT_DISPATCH_FLOATING_TYPES(means2d.scalar_type(), "splat_rasterize", [&] {
    const auto g = in.gaussians<scalar_t>();
    if (means2d.is_cuda()) {
#ifdef WITH_CUDA
      const c10::cuda::CUDAGuard guard(means2d.device());
      launch_splat_forward(g, h, w, scalar_t(background), image.data_ptr<scalar_t>(), contributors.data_ptr<int32_t>(),
                           c10::cuda::getCurrentCUDAStream());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
#endif
    } else {
      forward_cpu(g, h, w, scalar_t(background), image.data_ptr<scalar_t>(), contributors.data_ptr<int32_t>());
    }
  });
  return {image, contributors};
}

// -> the gradients of means2d, conics, colours and opacities
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> splat_rasterize_backward(
    const at::Tensor& grad_image, const at::Tensor& image, const at::Tensor& contributors, const at::Tensor& means2d,
    const at::Tensor& conics, const at::Tensor& colours, const at::Tensor& opacities, const at::Tensor& radii) {
  const char* op = "splat_rasterize_backward";
  TORCH_CHECK(image.dim() == 3, op, ": image must be [C, H, W], got shape ", image.sizes());
  const int64_t h = image.size(1), w = image.size(2);
  check_gaussians(means2d, conics, colours, opacities, radii, h, w, op);
  TORCH_CHECK(image.size(0) == colours.size(1), op, ": image must have the ", colours.size(1),
              " channels of colours, got shape ", image.sizes());
  torchkata::check_same_layout(grad_image, image, op, "grad_image", "image");
  TORCH_CHECK(image.scalar_type() == means2d.scalar_type() && image.device() == means2d.device(), op,
              ": image must have the dtype and device of means2d");
  TORCH_CHECK(contributors.sizes() == at::IntArrayRef({h, w}) && contributors.scalar_type() == at::kInt &&
                  contributors.device() == means2d.device(),
              op, ": contributors must be the forward's int32 [", h, ", ", w, "] on its device, got ",
              contributors.scalar_type(), " ", contributors.sizes());
  const Operands in = contiguous(means2d, conics, colours, opacities, radii);
  at::Tensor grad_means = at::zeros_like(in.means2d), grad_conics = at::zeros_like(in.conics);
  at::Tensor grad_colours = at::zeros_like(in.colours), grad_opacities = at::zeros_like(in.opacities);
  const at::Tensor go = grad_image.contiguous(), out = image.contiguous(), used = contributors.contiguous();
  AT_DISPATCH_FLOATING_TYPES(means2d.scalar_type(), "splat_rasterize_backward", [&] {
    const auto g = in.gaussians<scalar_t>();
    const splat::Grads<scalar_t> grads{grad_means.data_ptr<scalar_t>(), grad_conics.data_ptr<scalar_t>(),
                                       grad_colours.data_ptr<scalar_t>(), grad_opacities.data_ptr<scalar_t>()};
    if (means2d.is_cuda()) {
#ifdef WITH_CUDA
      const c10::cuda::CUDAGuard guard(means2d.device());
      launch_splat_backward(g, h, w, go.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), used.data_ptr<int32_t>(),
                            grads, c10::cuda::getCurrentCUDAStream());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
#endif
    } else {
      backward_cpu(g, h, w, go.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), used.data_ptr<int32_t>(), grads);
    }
  });
  return {grad_means, grad_conics, grad_colours, grad_opacities};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(torchkata, m) {
  m.def("splat_rasterize(Tensor means2d, Tensor conics, Tensor colours, Tensor opacities, Tensor radii, int height, "
        "int width, float background) -> (Tensor, Tensor)");
  m.def("splat_rasterize_backward(Tensor grad_image, Tensor image, Tensor contributors, Tensor means2d, "
        "Tensor conics, Tensor colours, Tensor opacities, Tensor radii) -> (Tensor, Tensor, Tensor, Tensor)");
  m.def("splat_has_cuda() -> bool", [] { return torchkata::kBuiltWithCuda; });
}

static void register_splat(torch::Library& m) {
  m.impl("splat_rasterize", &splat_rasterize);
  m.impl("splat_rasterize_backward", &splat_rasterize_backward);
}

TORCHKATA_KERNELS(register_splat)
