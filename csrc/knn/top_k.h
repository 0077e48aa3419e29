// a46: the insertion into one query's k nearest neighbours so far, alike in both halves of kNN (knn.cpp and
// knn_cuda.cu) so that they order ties alike. Plain C++ (host_device.h): included by the .cpp and the .cu file.
#pragma once

#include <cstdint>

#include "../common/host_device.h"

namespace torchkata_knn {

// best_d/best_i: one query's top-k so far, sorted ascending. A candidate nearer than the k-th enters where it belongs
// and pushes the worst one out; strictly smaller only, so of two equal distances the earlier (lower) index stays
// ahead. The callers compare with best_d[k - 1] first: most candidates are farther, and cost that one compare.
template <typename T>
TORCHKATA_HOST_DEVICE void insert(T distance, int64_t index, T* best_d, int64_t* best_i, int64_t k) {
  int64_t slot = k - 1;
  while (slot > 0 && best_d[slot - 1] > distance) {
    best_d[slot] = best_d[slot - 1];
    best_i[slot] = best_i[slot - 1];
    --slot;
  }
  best_d[slot] = distance;
  best_i[slot] = index;
}

}  // namespace torchkata_knn
