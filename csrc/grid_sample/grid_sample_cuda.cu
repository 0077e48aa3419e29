// a47: the CUDA half of bilinear sampling (mode="bilinear", padding_mode="zeros"). One thread per grid point: it
// computes the point's four corners and weights once and loops over the channels. Forward: a gather, each thread
// writes its own outputs. Backward: the same thread gathers the grid point's gradient over the channels (written once,
// no race), and scatters grad_output x weight into the four corners of grad_input with atomicAdd, as many grid points
// may share a pixel: the sum's order, so its last bits, may vary from run to run (the CPU twin is deterministic).
// Only cuda_runtime.h: grid_sample.cpp checks the tensors and passes raw contiguous pointers and the stream.
#include <cuda_runtime.h>

#include <cstdint>

namespace {

constexpr int kThreads = 256;

template <typename T>
struct Corners {
  T x, y;
  int64_t x0, y0;
  T w_nw, w_ne, w_sw, w_se;

  // [-1, 1] to pixels, as grid_sample.cpp: -1 and 1 are the corner pixels' centres (align_corners) or outer edges
  __device__ Corners(T gx, T gy, int64_t h, int64_t w, bool align_corners) {
    x = align_corners ? (gx + 1) / 2 * (w - 1) : ((gx + 1) * w - 1) / 2;
    y = align_corners ? (gy + 1) / 2 * (h - 1) : ((gy + 1) * h - 1) / 2;
    x0 = static_cast<int64_t>(floor(x));
    y0 = static_cast<int64_t>(floor(y));
    const T fx = x - x0, fy = y - y0;
    w_nw = (1 - fx) * (1 - fy);
    w_ne = fx * (1 - fy);
    w_sw = (1 - fx) * fy;
    w_se = fx * fy;
  }
};

__device__ __forceinline__ bool inside(int64_t y, int64_t x, int64_t h, int64_t w) {
  return y >= 0 && y < h && x >= 0 && x < w;
}

template <typename T>
__device__ __forceinline__ T pixel(const T* plane, int64_t y, int64_t x, int64_t h, int64_t w) {
  return inside(y, x, h, w) ? plane[y * w + x] : T(0);
}

template <typename T>
__device__ __forceinline__ void add_pixel(T* plane, int64_t y, int64_t x, int64_t h, int64_t w, T value) {
  if (inside(y, x, h, w)) atomicAdd(plane + y * w + x, value);  // other grid points may hit the same pixel
}

// consecutive threads take consecutive grid points: coalesced grid reads and output writes
template <typename T>
__global__ void __launch_bounds__(kThreads) forward_kernel(const T* __restrict__ input, const T* __restrict__ grid,
                                                           T* __restrict__ output, int64_t n, int64_t c, int64_t h,
                                                           int64_t w, int64_t points, bool align_corners) {
  const int64_t i = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  if (i >= n * points) return;
  const int64_t b = i / points, p = i % points;
  const Corners<T> k(grid[2 * i], grid[2 * i + 1], h, w, align_corners);
  for (int64_t ch = 0; ch < c; ++ch) {
    const T* plane = input + (b * c + ch) * h * w;
    output[(b * c + ch) * points + p] =
        pixel(plane, k.y0, k.x0, h, w) * k.w_nw + pixel(plane, k.y0, k.x0 + 1, h, w) * k.w_ne +
        pixel(plane, k.y0 + 1, k.x0, h, w) * k.w_sw + pixel(plane, k.y0 + 1, k.x0 + 1, h, w) * k.w_se;
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads) backward_kernel(const T* __restrict__ grad_output,
                                                            const T* __restrict__ input, const T* __restrict__ grid,
                                                            T* grad_input, T* __restrict__ grad_grid, int64_t n,
                                                            int64_t c, int64_t h, int64_t w, int64_t points,
                                                            bool align_corners) {
  const int64_t i = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  if (i >= n * points) return;
  const int64_t b = i / points, p = i % points;
  const Corners<T> k(grid[2 * i], grid[2 * i + 1], h, w, align_corners);
  const T fx = k.x - k.x0, fy = k.y - k.y0;
  T gx = 0, gy = 0;
  for (int64_t ch = 0; ch < c; ++ch) {
    const T* plane = input + (b * c + ch) * h * w;
    T* grad_plane = grad_input + (b * c + ch) * h * w;
    const T g = grad_output[(b * c + ch) * points + p];
    add_pixel(grad_plane, k.y0, k.x0, h, w, g * k.w_nw);
    add_pixel(grad_plane, k.y0, k.x0 + 1, h, w, g * k.w_ne);
    add_pixel(grad_plane, k.y0 + 1, k.x0, h, w, g * k.w_sw);
    add_pixel(grad_plane, k.y0 + 1, k.x0 + 1, h, w, g * k.w_se);
    const T nw = pixel(plane, k.y0, k.x0, h, w), ne = pixel(plane, k.y0, k.x0 + 1, h, w);
    const T sw = pixel(plane, k.y0 + 1, k.x0, h, w), se = pixel(plane, k.y0 + 1, k.x0 + 1, h, w);
    gx += g * ((ne - nw) * (1 - fy) + (se - sw) * fy);
    gy += g * ((sw - nw) * (1 - fx) + (se - ne) * fx);
  }
  // d(pixel x)/d(grid x): (W - 1) / 2 with align_corners, W / 2 without
  grad_grid[2 * i] = gx * (align_corners ? T(w - 1) / 2 : T(w) / 2);
  grad_grid[2 * i + 1] = gy * (align_corners ? T(h - 1) / 2 : T(h) / 2);
}

unsigned blocks_for(int64_t threads) {
  return static_cast<unsigned>((threads + kThreads - 1) / kThreads);
}

}  // namespace

template <typename T>
void launch_grid_sample(const T* input, const T* grid, T* output, int64_t n, int64_t c, int64_t h, int64_t w,
                        int64_t ho, int64_t wo, bool align_corners, cudaStream_t stream) {
  forward_kernel<T><<<blocks_for(n * ho * wo), kThreads, 0, stream>>>(input, grid, output, n, c, h, w, ho * wo,
                                                                      align_corners);
}

// grad_input arrives zeroed (grid_sample.cpp): the kernel only adds into it
template <typename T>
void launch_grid_sample_backward(const T* grad_output, const T* input, const T* grid, T* grad_input, T* grad_grid,
                                 int64_t n, int64_t c, int64_t h, int64_t w, int64_t ho, int64_t wo,
                                 bool align_corners, cudaStream_t stream) {
  backward_kernel<T><<<blocks_for(n * ho * wo), kThreads, 0, stream>>>(grad_output, input, grid, grad_input,
                                                                       grad_grid, n, c, h, w, ho * wo,
                                                                       align_corners);
}

template void launch_grid_sample<float>(const float*, const float*, float*, int64_t, int64_t, int64_t, int64_t,
                                        int64_t, int64_t, bool, cudaStream_t);
template void launch_grid_sample<double>(const double*, const double*, double*, int64_t, int64_t, int64_t, int64_t,
                                         int64_t, int64_t, bool, cudaStream_t);
template void launch_grid_sample_backward<float>(const float*, const float*, const float*, float*, float*, int64_t,
                                                 int64_t, int64_t, int64_t, int64_t, int64_t, bool, cudaStream_t);
template void launch_grid_sample_backward<double>(const double*, const double*, const double*, double*, double*,
                                                  int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool,
                                                  cudaStream_t);
