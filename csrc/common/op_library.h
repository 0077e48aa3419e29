// How every op library registers itself, written once. Its kernels dispatch on their tensors' device themselves
// (the CPU loop or, in a CUDA build, the CUDA launch), so one registering function serves both dispatch keys.
#pragma once

#include <torch/library.h>

namespace torchkata {

// Whether this build took the library's CUDA half (pipeline/extensions.py passes -DWITH_CUDA where it does): each
// library's `<name>_has_cuda()` op returns it, so Python can tell which halves ran.
#ifdef WITH_CUDA
inline constexpr bool kBuiltWithCuda = true;
#else
inline constexpr bool kBuiltWithCuda = false;
#endif

}  // namespace torchkata

#ifdef WITH_CUDA
#define TORCHKATA_CUDA_KERNELS(register_kernels) \
  TORCH_LIBRARY_IMPL(torchkata, CUDA, m) { register_kernels(m); }
#else
#define TORCHKATA_CUDA_KERNELS(register_kernels)
#endif

// TORCHKATA_KERNELS(register_relu): the m.impl calls of `void register_relu(torch::Library& m)` for CPU tensors
// and, in a CUDA build, for CUDA tensors.
#define TORCHKATA_KERNELS(register_kernels)                          \
  TORCH_LIBRARY_IMPL(torchkata, CPU, m) { register_kernels(m); }    \
  TORCHKATA_CUDA_KERNELS(register_kernels)
