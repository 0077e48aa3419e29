// a48: the kernels of a tiny NeRF, registered as torch.ops.torchkata.nerf_march (stratified samples along rays),
// nerf_composite (volume-rendering accumulation: each ray's colour, depth and opacity from its samples' densities
// and colours) and nerf_composite_backward (the gradients of sigma, rgb, deltas and t). The per-ray algorithm is
// volume_render.h, shared with the CUDA kernels (nerf_cuda.cu); here at::parallel_for splits the rays (the samples,
// for the march) over threads. Every ray writes only its own outputs: no races, the same bits every run.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>

#include <cmath>
#include <tuple>

#include "../common/kernel_checks.h"
#include "../common/op_library.h"
#include "volume_render.h"

#ifdef WITH_CUDA
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

template <typename T>
void launch_nerf_march(const T* origins, const T* directions, const T* jitter, int64_t rays, int64_t samples, T near,
                       T far, T* points, T* t, T* deltas, cudaStream_t stream);
template <typename T>
void launch_nerf_composite(const T* sigma, const T* rgb, const T* deltas, const T* t, int64_t rays, int64_t samples,
                           int64_t channels, T* colour, T* depth, T* opacity, cudaStream_t stream);
template <typename T>
void launch_nerf_composite_backward(const T* grad_colour, const T* grad_depth, const T* grad_opacity, const T* sigma,
                                    const T* rgb, const T* deltas, const T* t, int64_t rays, int64_t samples,
                                    int64_t channels, T* grad_sigma, T* grad_rgb, T* grad_deltas, T* grad_t,
                                    cudaStream_t stream);
#endif

namespace {

namespace vr = torchkata_nerf;

constexpr int64_t kGrain = 1 << 12;  // values to compute below which one thread does the work

// fn(r) for every ray r, the rays split over threads (`per_ray`: the values a ray computes, to size the tasks)
template <typename F>
void for_each_ray(int64_t rays, int64_t per_ray, const F& fn) {
  at::parallel_for(0, rays, kGrain / (per_ray + 1) + 1, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) fn(r);
  });
}

void check_rays(const at::Tensor& origins, const at::Tensor& directions, const at::Tensor& jitter, double near,
                double far) {
  torchkata::check_floating(origins, "nerf_march", "origins");
  TORCH_CHECK(origins.dim() == 2 && origins.size(1) == 3, "nerf_march: origins must be [rays, 3], got shape ",
              origins.sizes());
  torchkata::check_same_layout(origins, directions, "nerf_march", "origins", "directions");
  TORCH_CHECK(jitter.dim() == 2 && jitter.size(0) == origins.size(0),
              "nerf_march: jitter must be [rays, samples] with origins' ", origins.size(0), " rays, got shape ",
              jitter.sizes());
  TORCH_CHECK(jitter.scalar_type() == origins.scalar_type() && jitter.device() == origins.device(),
              "nerf_march: jitter must have origins' dtype and device, got ", jitter.scalar_type(), " on ",
              jitter.device(), " and ", origins.scalar_type(), " on ", origins.device());
  TORCH_CHECK(std::isfinite(near) && std::isfinite(far) && near < far,
              "nerf_march: near and far must be finite with near < far, got near=", near, " and far=", far);
}

// (points [R, S, 3], t [R, S], deltas [R, S]) of R rays with S samples each: sample i of ray r at
// t = near + (i + jitter[r, i]) (far - near) / S, deltas the gaps to the next sample (the last: to far).
std::tuple<at::Tensor, at::Tensor, at::Tensor> nerf_march(const at::Tensor& origins, const at::Tensor& directions,
                                                          const at::Tensor& jitter, double near, double far) {
  check_rays(origins, directions, jitter, near, far);
  const int64_t rays = jitter.size(0), samples = jitter.size(1);
  at::Tensor points = at::empty({rays, samples, 3}, origins.options());
  at::Tensor t = at::empty({rays, samples}, origins.options()), deltas = at::empty_like(t);
  if (t.numel() == 0) {
    return {points, t, deltas};
  }
  const at::Tensor o = origins.contiguous(), d = directions.contiguous(), u = jitter.contiguous();
  AT_DISPATCH_FLOATING_TYPES(origins.scalar_type(), "nerf_march", [&] {
    const scalar_t *o_ = o.data_ptr<scalar_t>(), *d_ = d.data_ptr<scalar_t>(), *u_ = u.data_ptr<scalar_t>();
    scalar_t *p_ = points.data_ptr<scalar_t>(), *t_ = t.data_ptr<scalar_t>(), *dt_ = deltas.data_ptr<scalar_t>();
    if (origins.is_cuda()) {
#ifdef WITH_CUDA
      const c10::cuda::CUDAGuard guard(origins.device());
      launch_nerf_march(o_, d_, u_, rays, samples, scalar_t(near), scalar_t(far), p_, t_, dt_,
                        c10::cuda::getCurrentCUDAStream());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
#endif
    } else {
      at::parallel_for(0, rays * samples, kGrain, [&](int64_t begin, int64_t end) {
        for (int64_t k = begin; k < end; ++k) {
          const int64_t r = k / samples;
          vr::march_sample(o_ + 3 * r, d_ + 3 * r, u_ + r * samples, k % samples, samples, scalar_t(near),
                           scalar_t(far), p_ + 3 * k, t_ + k, dt_ + k);
        }
      });
    }
  });
  return {points, t, deltas};
}

// sigma [R, S], rgb [R, S, C], deltas and t [R, S]: one floating dtype, one device.
void check_samples(const at::Tensor& sigma, const at::Tensor& rgb, const at::Tensor& deltas, const at::Tensor& t,
                   const char* op) {
  torchkata::check_floating(sigma, op, "sigma");
  TORCH_CHECK(sigma.dim() == 2, op, ": sigma must be 2-D [rays, samples], got shape ", sigma.sizes());
  TORCH_CHECK(rgb.dim() == 3 && rgb.size(0) == sigma.size(0) && rgb.size(1) == sigma.size(1), op,
              ": rgb must be [rays, samples, channels] with sigma's [rays, samples] = ", sigma.sizes(),
              ", got shape ", rgb.sizes());
  TORCH_CHECK(rgb.scalar_type() == sigma.scalar_type() && rgb.device() == sigma.device(), op,
              ": rgb must have sigma's dtype and device, got ", rgb.scalar_type(), " on ", rgb.device(), " and ",
              sigma.scalar_type(), " on ", sigma.device());
  torchkata::check_same_layout(sigma, deltas, op, "sigma", "deltas");
  torchkata::check_same_layout(sigma, t, op, "sigma", "t");
}

// (colour [R, C], depth [R], opacity [R]): volume_render.h's composite_ray for every ray.
std::tuple<at::Tensor, at::Tensor, at::Tensor> nerf_composite(const at::Tensor& sigma, const at::Tensor& rgb,
                                                              const at::Tensor& deltas, const at::Tensor& t) {
  check_samples(sigma, rgb, deltas, t, "nerf_composite");
  const int64_t rays = sigma.size(0), samples = sigma.size(1), channels = rgb.size(2);
  at::Tensor colour = at::empty({rays, channels}, sigma.options());
  at::Tensor depth = at::empty({rays}, sigma.options()), opacity = at::empty({rays}, sigma.options());
  if (rays == 0) {
    return {colour, depth, opacity};
  }
  const at::Tensor s = sigma.contiguous(), c = rgb.contiguous(), dt = deltas.contiguous(), z = t.contiguous();
  AT_DISPATCH_FLOATING_TYPES(sigma.scalar_type(), "nerf_composite", [&] {
    const scalar_t *s_ = s.data_ptr<scalar_t>(), *c_ = c.data_ptr<scalar_t>();
    const scalar_t *dt_ = dt.data_ptr<scalar_t>(), *z_ = z.data_ptr<scalar_t>();
    scalar_t *colour_ = colour.data_ptr<scalar_t>(), *depth_ = depth.data_ptr<scalar_t>();
    scalar_t* opacity_ = opacity.data_ptr<scalar_t>();
    if (sigma.is_cuda()) {
#ifdef WITH_CUDA
      const c10::cuda::CUDAGuard guard(sigma.device());
      launch_nerf_composite(s_, c_, dt_, z_, rays, samples, channels, colour_, depth_, opacity_,
                            c10::cuda::getCurrentCUDAStream());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
#endif
    } else {
      for_each_ray(rays, samples * (channels + 1), [&](int64_t r) {
        const int64_t first = r * samples;  // the ray's first sample
        vr::composite_ray(s_ + first, c_ + first * channels, dt_ + first, z_ + first, samples, channels,
                          colour_ + r * channels, depth_ + r, opacity_ + r);
      });
    }
  });
  return {colour, depth, opacity};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> nerf_composite_backward(
    const at::Tensor& grad_colour, const at::Tensor& grad_depth, const at::Tensor& grad_opacity,
    const at::Tensor& sigma, const at::Tensor& rgb, const at::Tensor& deltas, const at::Tensor& t) {
  const char* op = "nerf_composite_backward";
  check_samples(sigma, rgb, deltas, t, op);
  const int64_t rays = sigma.size(0), samples = sigma.size(1), channels = rgb.size(2);
  auto check_grad = [&](const at::Tensor& grad, const char* name, at::IntArrayRef shape) {
    TORCH_CHECK(grad.sizes() == shape, op, ": ", name, " must have shape ", shape, ", got ", grad.sizes());
    TORCH_CHECK(grad.scalar_type() == sigma.scalar_type() && grad.device() == sigma.device(), op, ": ", name,
                " must have sigma's dtype and device, got ", grad.scalar_type(), " on ", grad.device(), " and ",
                sigma.scalar_type(), " on ", sigma.device());
  };
  check_grad(grad_colour, "grad_colour", {rays, channels});
  check_grad(grad_depth, "grad_depth", {rays});
  check_grad(grad_opacity, "grad_opacity", {rays});
  at::Tensor grad_sigma = at::empty({rays, samples}, sigma.options());
  at::Tensor grad_rgb = at::empty({rays, samples, channels}, sigma.options());
  at::Tensor grad_deltas = at::empty_like(grad_sigma), grad_t = at::empty_like(grad_sigma);
  if (grad_sigma.numel() == 0) {  // no rays or no samples: nothing to differentiate
    return {grad_sigma, grad_rgb, grad_deltas, grad_t};
  }
  const at::Tensor gc = grad_colour.contiguous(), gd = grad_depth.contiguous(), go = grad_opacity.contiguous();
  const at::Tensor s = sigma.contiguous(), c = rgb.contiguous(), dt = deltas.contiguous(), z = t.contiguous();
  AT_DISPATCH_FLOATING_TYPES(sigma.scalar_type(), "nerf_composite_backward", [&] {
    const scalar_t *gc_ = gc.data_ptr<scalar_t>(), *gd_ = gd.data_ptr<scalar_t>(), *go_ = go.data_ptr<scalar_t>();
    const scalar_t *s_ = s.data_ptr<scalar_t>(), *c_ = c.data_ptr<scalar_t>();
    const scalar_t *dt_ = dt.data_ptr<scalar_t>(), *z_ = z.data_ptr<scalar_t>();
    scalar_t *gs_ = grad_sigma.data_ptr<scalar_t>(), *gr_ = grad_rgb.data_ptr<scalar_t>();
    scalar_t *gdt_ = grad_deltas.data_ptr<scalar_t>(), *gz_ = grad_t.data_ptr<scalar_t>();
    if (sigma.is_cuda()) {
#ifdef WITH_CUDA
      const c10::cuda::CUDAGuard guard(sigma.device());
      launch_nerf_composite_backward(gc_, gd_, go_, s_, c_, dt_, z_, rays, samples, channels, gs_, gr_, gdt_, gz_,
                                     c10::cuda::getCurrentCUDAStream());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
#endif
    } else {
      for_each_ray(rays, 2 * samples * (channels + 1), [&](int64_t r) {  // two passes over the samples
        const int64_t first = r * samples;
        vr::composite_ray_backward(gc_ + r * channels, gd_[r], go_[r], s_ + first, c_ + first * channels,
                                   dt_ + first, z_ + first, samples, channels, gs_ + first, gr_ + first * channels,
                                   gdt_ + first, gz_ + first);
      });
    }
  });
  return {grad_sigma, grad_rgb, grad_deltas, grad_t};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(torchkata, m) {
  m.def("nerf_march(Tensor origins, Tensor directions, Tensor jitter, float near, float far) -> (Tensor, Tensor, "
        "Tensor)");
  m.def("nerf_composite(Tensor sigma, Tensor rgb, Tensor deltas, Tensor t) -> (Tensor, Tensor, Tensor)");
  m.def("nerf_composite_backward(Tensor grad_colour, Tensor grad_depth, Tensor grad_opacity, Tensor sigma, "
        "Tensor rgb, Tensor deltas, Tensor t) -> (Tensor, Tensor, Tensor, Tensor)");
  m.def("nerf_has_cuda() -> bool", [] { return torchkata::kBuiltWithCuda; });
}

static void register_nerf(torch::Library& m) {
  m.impl("nerf_march", &nerf_march);
  m.impl("nerf_composite", &nerf_composite);
  m.impl("nerf_composite_backward", &nerf_composite_backward);
}

TORCHKATA_KERNELS(register_nerf)
