// What every kernel exercise checks before it touches memory, written once: the errors name the op and the operand.
// Light on purpose (ATen's Tensor and c10's checks only, no torch/extension.h): a source that includes this and
// torch/library.h compiles in a quarter of the time of a pybind11 module.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

namespace torchkata {

// One of the floating dtypes the op implements (float32 and float64; with_half: also float16 and bfloat16).
inline void check_floating(const at::Tensor& t, const char* op, const char* name, bool with_half = false) {
  const auto type = t.scalar_type();
  const bool full = type == at::kFloat || type == at::kDouble;
  const bool half = type == at::kHalf || type == at::kBFloat16;
  TORCH_CHECK(full || (with_half && half), op, ": ", name, " must be float32 or float64",
              with_half ? ", float16 or bfloat16" : "", ", got ", type);
}

// Two operands that a kernel reads element by element together: one shape, one dtype, one device.
inline void check_same_layout(const at::Tensor& a, const at::Tensor& b, const char* op, const char* name_a,
                              const char* name_b) {
  TORCH_CHECK(a.sizes() == b.sizes(), op, ": ", name_a, " and ", name_b, " must have one shape, got ", a.sizes(),
              " and ", b.sizes());
  TORCH_CHECK(a.scalar_type() == b.scalar_type(), op, ": ", name_a, " and ", name_b, " must have one dtype, got ",
              a.scalar_type(), " and ", b.scalar_type());
  TORCH_CHECK(a.device() == b.device(), op, ": ", name_a, " and ", name_b, " must be on one device, got ",
              a.device(), " and ", b.device());
}

}  // namespace torchkata
