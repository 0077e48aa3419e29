// The warp's sum that the CUDA reductions fold their blocks with (a45 and m3-deep-2: reduce_cuda.cu; m3-deep-1:
// layernorm_dropout_cuda.cu). CUDA only (__shfl_down_sync): .cu files include it, the CPU twins do not.
#pragma once

#include <cuda_runtime.h>

namespace torchkata_cuda {

constexpr int kWarp = 32;  // threads in a warp

// Lane 0 ends with the sum of the warp's 32 values: at each step lane l adds lane l + offset (a lane past 31 reads
// its own value, which only lanes that lane 0 never reads again use).
template <typename T>
__device__ T warp_fold(T v) {
#pragma unroll
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    v += __shfl_down_sync(0xffffffffu, v, offset);
  }
  return v;
}

}  // namespace torchkata_cuda
