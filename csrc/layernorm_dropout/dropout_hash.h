// m3-deep-1: the dropout mask of the fused LayerNorm + Dropout, a counter-based hash both halves (layernorm_dropout.cpp
// and layernorm_dropout_cuda.cu) and the Python side (torchkata.extensions.layernorm_dropout.keep_mask) compute alike.
// Element (row, col) is kept iff
//     mix32(row_key(seed, row) ^ col) >= threshold(p),   row_key(seed, row) = mix32(seed ^ mix32(row)),
// threshold(p) = floor(p * 2^32), mix32 = Chris Wellons' "lowbias32" (xor-shift, multiply, three times: a bijection
// of 32-bit words whose output bits each flip with probability ~1/2 when one input bit flips). A hash of the
// element's coordinates instead of a generator's stream: no state to carry between threads, any thread draws its own
// element's bit in any order, and the backward (or a test) can redraw the same bits from (seed, p) alone.
#pragma once

#include <cstdint>

#include "../common/host_device.h"

namespace torchkata_dropout {

TORCHKATA_HOST_DEVICE uint32_t mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}

// Rows past 2^32 reuse the keys of rows 2^32 earlier (the row is taken modulo 2^32).
TORCHKATA_HOST_DEVICE uint32_t row_key(uint32_t seed, int64_t row) {
  return mix32(seed ^ mix32(static_cast<uint32_t>(row)));
}

// floor(p * 2^32) as a 64-bit number: 0 keeps everything, 2^32 (p = 1) nothing.
TORCHKATA_HOST_DEVICE uint64_t threshold(double p) {
  return static_cast<uint64_t>(p * 4294967296.0);
}

TORCHKATA_HOST_DEVICE bool keep(uint32_t key, int64_t col, uint64_t threshold) {
  return mix32(key ^ static_cast<uint32_t>(col)) >= threshold;
}

// What a kept element is multiplied by: 1 / (1 - p), and 0 for p = 1 (nothing is kept; F.dropout gives zeros).
TORCHKATA_HOST_DEVICE double keep_scale(double p) {
  return p < 1.0 ? 1.0 / (1.0 - p) : 0.0;
}

}  // namespace torchkata_dropout
