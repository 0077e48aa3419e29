// The launch shape both halves of the reductions share (a45, m3-deep-2), so that the CPU twin adds the elements in
// exactly the CUDA kernels' order: blocks of 256 threads, at most 1024 blocks, every thread summing its elements
// of a grid-stride loop before the block folds its 256 sums. Plain C++: included by the .cpp and the .cu file.
#pragma once

#include <cstdint>

namespace torchkata_reduce {

constexpr int64_t kBlock = 256;      // threads in a block
constexpr int64_t kWarp = 32;        // threads in a warp
constexpr int64_t kMaxBlocks = 1024;  // blocks of the first pass; the second pass folds their sums in one block

// Blocks of the first pass over n elements: one element a thread up to 2^18 elements, then a grid-stride loop.
inline int64_t blocks_for(int64_t n) {
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  return blocks < 1 ? 1 : (blocks > kMaxBlocks ? kMaxBlocks : blocks);
}

}  // namespace torchkata_reduce
