// a49: what both halves of the Gaussian-splatting rasterizer share, so that the CPU twin (splat.cpp) and the CUDA
// kernels (splat_cuda.cu) bin into the same tiles and blend with the same rules. Plain C++ (host_device.h): included
// by the .cpp and the .cu file.
#pragma once

#include <cmath>
#include <cstdint>

#include "../common/host_device.h"

namespace splat {

constexpr int kTile = 16;                  // tiles of 16 x 16 pixels: one CUDA block each, 256 threads
constexpr int kMaxChannels = 4;            // colour channels a pixel accumulates in registers
constexpr double kMinAlpha = 1.0 / 255;    // a gaussian fainter than this at a pixel is skipped there
constexpr double kMaxAlpha = 0.99;         // the cap: no gaussian is fully opaque, so 1 - alpha never divides by 0
constexpr double kMinTransmittance = 1e-4;  // blending stops before the light left would drop below this

// The gaussians of one image, sorted front to back by the caller; contiguous rows.
template <typename T>
struct Gaussians {
  const T* means;      // [n, 2] pixel coordinates (x, y)
  const T* conics;     // [n, 3] the inverse 2-D covariance (a, b, c): [[a, b], [b, c]]
  const T* colours;    // [n, channels]
  const T* opacities;  // [n]
  const int32_t* radii;  // [n] the square around the mean (pixels) outside which it is ignored; 0: culled
  int64_t n;
  int channels;
};

// Their gradients, same layout (the caller zeroes them; the kernels add).
template <typename T>
struct Grads {
  T* means;
  T* conics;
  T* colours;
  T* opacities;
};

// Binning: does gaussian i's square (mean +- radius) overlap tile (tx, ty)? The whole 16 x 16 tile counts, also
// where it sticks out of the image, so the answer does not depend on the image's size.
template <typename T>
TORCHKATA_HOST_DEVICE bool touches_tile(const Gaussians<T>& g, int64_t i, int tx, int ty) {
  const T x = g.means[2 * i], y = g.means[2 * i + 1];
  const int r = g.radii[i];
  return r > 0 && x + r >= tx * kTile && x - r < (tx + 1) * kTile && y + r >= ty * kTile && y - r < (ty + 1) * kTile;
}

// exp(-d^T conic d / 2) for d = (dx, dy), the pixel centre minus the mean: the gaussian's falloff, 1 at its mean
template <typename T>
TORCHKATA_HOST_DEVICE T falloff(const T* conic, T dx, T dy) {
#ifndef __CUDA_ARCH__
  using std::exp;  // the host's float and double overloads; device code has CUDA's
#endif
  return exp(T(-0.5) * (conic[0] * dx * dx + conic[2] * dy * dy) - conic[1] * dx * dy);
}

}  // namespace splat
