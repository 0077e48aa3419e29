// TORCHKATA_HOST_DEVICE marks a function of a plain header that both twins of a kernel call: the CPU one (g++, a .cpp
// file) and the CUDA one (nvcc, a .cu file), so that the arithmetic they share is written once and they compute
// alike. Inlined on both sides, as the loop body it stands for would be. Plain C++, no CUDA or torch header: a .cu file
// may include it and still compile anywhere with `nvcc -c`.
#pragma once

#ifdef __CUDACC__
#define TORCHKATA_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define TORCHKATA_HOST_DEVICE inline __attribute__((always_inline))
#endif
