// a47: the bilinear arithmetic of one grid point that both halves of grid_sample compute alike (grid_sample.cpp and
// grid_sample_cuda.cu): where the point falls, its four neighbours and their weights, its output in every channel and
// its share of both gradients. The halves differ only in how they walk the points and in how they add into a pixel
// of grad_input that other points may share (the CPU: in the grid's order, one thread a batch item; the GPU:
// atomicAdd), which the backward takes as `add`. Plain C++ (host_device.h): included by the .cpp and the .cu file.
#pragma once

#include <cmath>
#include <cstdint>

#include "../common/host_device.h"

namespace torchkata_bilinear {

// One grid point's pixel coordinates and its four neighbours: (x0, y0) the north-west corner, weights of the four.
template <typename T>
struct Corners {
  T x, y;
  int64_t x0, y0;
  T w_nw, w_ne, w_sw, w_se;

  // [-1, 1] to pixels: -1 and 1 are the centres of the corner pixels (align_corners) or their outer edges
  TORCHKATA_HOST_DEVICE Corners(T gx, T gy, int64_t h, int64_t w, bool align_corners) {
    x = align_corners ? (gx + 1) / 2 * (w - 1) : ((gx + 1) * w - 1) / 2;
    y = align_corners ? (gy + 1) / 2 * (h - 1) : ((gy + 1) * h - 1) / 2;
    x0 = static_cast<int64_t>(std::floor(x));
    y0 = static_cast<int64_t>(std::floor(y));
    const T fx = x - x0, fy = y - y0;  // how far past the north-west corner
    w_nw = (1 - fx) * (1 - fy);
    w_ne = fx * (1 - fy);
    w_sw = (1 - fx) * fy;
    w_se = fx * fy;
  }
};

TORCHKATA_HOST_DEVICE bool inside(int64_t y, int64_t x, int64_t h, int64_t w) {
  return y >= 0 && y < h && x >= 0 && x < w;
}

// the pixel (y, x) of one channel, or 0 outside the image (padding_mode="zeros")
template <typename T>
TORCHKATA_HOST_DEVICE T pixel(const T* plane, int64_t y, int64_t x, int64_t h, int64_t w) {
  return inside(y, x, h, w) ? plane[y * w + x] : T(0);
}

// add(&pixel, value) for the pixel (y, x) of one channel's plane, nothing outside the image
template <typename T, typename Add>
TORCHKATA_HOST_DEVICE void add_pixel(T* plane, int64_t y, int64_t x, int64_t h, int64_t w, T value, Add add) {
  if (inside(y, x, h, w)) add(plane + y * w + x, value);
}

// Grid point i of the N x points (contiguous [N, C, H, W] input, [N, Ho, Wo, 2] grid, [N, C, Ho, Wo] output): its
// corners and weights once, then its output in each of the c channels.
template <typename T>
TORCHKATA_HOST_DEVICE void sample_point(const T* input, const T* grid, T* output, int64_t i, int64_t c, int64_t h,
                                        int64_t w, int64_t points, bool align_corners) {
  const int64_t b = i / points, p = i % points;
  const Corners<T> k(grid[2 * i], grid[2 * i + 1], h, w, align_corners);
  for (int64_t ch = 0; ch < c; ++ch) {
    const T* plane = input + (b * c + ch) * h * w;
    output[(b * c + ch) * points + p] =
        pixel(plane, k.y0, k.x0, h, w) * k.w_nw + pixel(plane, k.y0, k.x0 + 1, h, w) * k.w_ne +
        pixel(plane, k.y0 + 1, k.x0, h, w) * k.w_sw + pixel(plane, k.y0 + 1, k.x0 + 1, h, w) * k.w_se;
  }
}

// Grid point i's backward: its own gradient, a gather over the channels written once to grad_grid, and
// grad_output x weight scattered into its four corners of grad_input through add(&pixel, value).
template <typename T, typename AddPixel>
TORCHKATA_HOST_DEVICE void backward_point(const T* grad_output, const T* input, const T* grid, T* grad_input,
                                          T* grad_grid, int64_t i, int64_t c, int64_t h, int64_t w, int64_t points,
                                          bool align_corners, AddPixel add) {
  const int64_t b = i / points, p = i % points;
  const Corners<T> k(grid[2 * i], grid[2 * i + 1], h, w, align_corners);
  const T fx = k.x - k.x0, fy = k.y - k.y0;
  T gx = 0, gy = 0;
  for (int64_t ch = 0; ch < c; ++ch) {
    const T* plane = input + (b * c + ch) * h * w;
    T* grad_plane = grad_input + (b * c + ch) * h * w;
    const T g = grad_output[(b * c + ch) * points + p];
    add_pixel(grad_plane, k.y0, k.x0, h, w, g * k.w_nw, add);
    add_pixel(grad_plane, k.y0, k.x0 + 1, h, w, g * k.w_ne, add);
    add_pixel(grad_plane, k.y0 + 1, k.x0, h, w, g * k.w_sw, add);
    add_pixel(grad_plane, k.y0 + 1, k.x0 + 1, h, w, g * k.w_se, add);
    const T nw = pixel(plane, k.y0, k.x0, h, w), ne = pixel(plane, k.y0, k.x0 + 1, h, w);
    const T sw = pixel(plane, k.y0 + 1, k.x0, h, w), se = pixel(plane, k.y0 + 1, k.x0 + 1, h, w);
    gx += g * ((ne - nw) * (1 - fy) + (se - sw) * fy);
    gy += g * ((sw - nw) * (1 - fx) + (se - ne) * fx);
  }
  // d(pixel x)/d(grid x): (W - 1) / 2 with align_corners, W / 2 without
  grad_grid[2 * i] = gx * (align_corners ? T(w - 1) / 2 : T(w) / 2);
  grad_grid[2 * i + 1] = gy * (align_corners ? T(h - 1) / 2 : T(h) / 2);
}

}  // namespace torchkata_bilinear
