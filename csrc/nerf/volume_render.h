// a48: volume rendering along one ray, written once for both halves: nerf.cpp's CPU loop and nerf_cuda.cu's kernels
// call these functions per sample (march) or per ray (composite), so the CPU twin runs the CUDA kernels' algorithm
// to the same operation order. Plain C++ (host_device.h) with std::expm1, which nvcc also compiles for the device.
//
// A ray with samples at depths t_i, spaced delta_i, of density sigma_i >= 0 and colour c_i (C channels):
//   s_i = sigma_i * delta_i                  the optical depth of sample i's interval
//   alpha_i = 1 - exp(-s_i)                  the chance the ray stops in it (as -expm1(-s_i): exact for small s)
//   T_i = prod_{j<i} (1 - alpha_j)           the transmittance: the chance it gets that far
//   w_i = T_i * alpha_i                      the weight of sample i
//   colour = sum w_i c_i, depth = sum w_i t_i, opacity = sum w_i (= 1 - T_S)
#pragma once

#include <cmath>
#include <cstdint>

#include "../common/host_device.h"

namespace torchkata_nerf {

// Sample i of a ray's S stratified samples between near and far: bin i is [near + i step, near + (i + 1) step), and
// jitter u in [0, 1) places the sample in it. delta_i = t_{i+1} - t_i reads the next sample's jitter; the last
// interval ends at far.
template <typename T>
TORCHKATA_HOST_DEVICE void march_sample(const T* origin, const T* direction, const T* jitter, int64_t i,
                                        int64_t samples, T near, T far, T* point, T* t, T* delta) {
  const T step = (far - near) / T(samples);
  const T here = near + (T(i) + jitter[i]) * step;
  const T next = i + 1 < samples ? near + (T(i + 1) + jitter[i + 1]) * step : far;
  *t = here;
  *delta = next - here;
  for (int k = 0; k < 3; ++k) point[k] = origin[k] + here * direction[k];
}

// One ray, front to back: the transmittance is carried as a running product, so the cost is one pass over the
// samples and one transcendental (expm1) per sample: 1 - alpha is exp(-s) to within its rounding. The outputs are
// written, not added to.
template <typename T>
TORCHKATA_HOST_DEVICE void composite_ray(const T* sigma, const T* rgb, const T* delta, const T* t, int64_t samples,
                                         int64_t channels, T* colour, T* depth, T* opacity) {
  for (int64_t c = 0; c < channels; ++c) colour[c] = 0;
  T transmittance = 1, d = 0, o = 0;
  for (int64_t i = 0; i < samples; ++i) {
    const T alpha = -std::expm1(-sigma[i] * delta[i]);
    const T weight = transmittance * alpha;
    for (int64_t c = 0; c < channels; ++c) colour[c] += weight * rgb[i * channels + c];
    d += weight * t[i];
    o += weight;
    transmittance *= 1 - alpha;
  }
  *depth = d;
  *opacity = o;
}

// The gradients of one ray. With v_i = grad_colour . c_i + grad_depth t_i + grad_opacity (what sample i's weight is
// worth to the loss), the loss is sum w_i v_i, and since w_i = T_i - T_{i+1} with T_i = exp(-sum_{j<i} s_j):
//   d loss / d s_i = T_{i+1} v_i - sum_{j>i} w_j v_j
// (a denser sample i shows more of itself and hides everything behind it). The sum behind i is the total minus
// the sum up to i, so a first pass computes the total and a second the gradients, both front to back.
template <typename T>
TORCHKATA_HOST_DEVICE void composite_ray_backward(const T* grad_colour, T grad_depth, T grad_opacity,
                                                  const T* sigma, const T* rgb, const T* delta, const T* t,
                                                  int64_t samples, int64_t channels, T* grad_sigma, T* grad_rgb,
                                                  T* grad_delta, T* grad_t) {
  auto worth = [&](int64_t i) {  // v_i
    T v = grad_depth * t[i] + grad_opacity;
    for (int64_t c = 0; c < channels; ++c) v += grad_colour[c] * rgb[i * channels + c];
    return v;
  };
  T transmittance = 1, total = 0;
  for (int64_t i = 0; i < samples; ++i) {
    const T alpha = -std::expm1(-sigma[i] * delta[i]);
    total += transmittance * alpha * worth(i);
    transmittance *= 1 - alpha;
  }
  transmittance = 1;
  T so_far = 0;  // sum of w_j v_j for j <= i
  for (int64_t i = 0; i < samples; ++i) {
    const T alpha = -std::expm1(-sigma[i] * delta[i]);
    const T weight = transmittance * alpha, v = worth(i);
    transmittance *= 1 - alpha;  // now T_{i+1}
    so_far += weight * v;
    const T grad_s = transmittance * v - (total - so_far);
    grad_sigma[i] = grad_s * delta[i];
    grad_delta[i] = grad_s * sigma[i];
    grad_t[i] = weight * grad_depth;
    for (int64_t c = 0; c < channels; ++c) grad_rgb[i * channels + c] = weight * grad_colour[c];
  }
}

}  // namespace torchkata_nerf
