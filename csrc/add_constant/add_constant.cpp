// a41: the simplest C++ extension: out = x + c, with its backward (d out / d x = 1, d out / d c = sum).
// Bound with pybind11 through torch/extension.h; built once by the build_extension_add_constant rule.
#include <torch/extension.h>

torch::Tensor add_constant_forward(const torch::Tensor& x, double constant) {
  TORCH_CHECK(x.is_floating_point(), "add_constant: x must be a floating-point tensor, got ", x.scalar_type());
  return x + constant;
}

// The gradient of a sum with respect to x is the incoming gradient unchanged.
torch::Tensor add_constant_backward(const torch::Tensor& grad_out) {
  return grad_out.clone();
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &add_constant_forward, "x + constant", pybind11::arg("x"), pybind11::arg("constant"));
  m.def("backward", &add_constant_backward, "gradient of x + constant with respect to x",
        pybind11::arg("grad_out"));
}
