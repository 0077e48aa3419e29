// a42: out = a + alpha * b for two tensors of one shape, and its backward, as hand-written kernels: a loop over
// the elements here (the CPU half, split over threads with at::parallel_for), the CUDA kernel in add_cuda.cu (built
// in where torch has CUDA: WITH_CUDA). Bound with pybind11; built once by the build_extension_add rule.
#include <torch/extension.h>

#include <ATen/Parallel.h>

#ifdef WITH_CUDA
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

template <typename T>
void launch_axpy(const T* a, const T* b, T alpha, T* out, int64_t n, cudaStream_t stream);
#endif

namespace {

// out[i] = a[i] + alpha * b[i]; a == nullptr reads as zeros (the backward's alpha * grad).
template <typename T>
void axpy_cpu(const T* a, const T* b, T alpha, T* out, int64_t n) {
  at::parallel_for(0, n, 1 << 14, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      out[i] = (a ? a[i] : T(0)) + alpha * b[i];
    }
  });
}

void check_operand(const torch::Tensor& t, const char* name) {
  TORCH_CHECK(t.scalar_type() == torch::kFloat || t.scalar_type() == torch::kDouble,
              "add: ", name, " must be float32 or float64, got ", t.scalar_type());
}

// The one kernel both directions use: out = a + alpha * b (a undefined: out = alpha * b).
torch::Tensor axpy(const torch::Tensor& a, const torch::Tensor& b, double alpha) {
  check_operand(b, "b");
  torch::Tensor a_in;
  if (a.defined()) {
    check_operand(a, "a");
    TORCH_CHECK(a.sizes() == b.sizes(), "add: a and b must have one shape, got ", a.sizes(), " and ", b.sizes());
    TORCH_CHECK(a.scalar_type() == b.scalar_type(), "add: a and b must have one dtype, got ", a.scalar_type(),
                " and ", b.scalar_type());
    TORCH_CHECK(a.device() == b.device(), "add: a and b must be on one device, got ", a.device(), " and ",
                b.device());
    a_in = a.contiguous();  // the kernels index flat memory
  }
  const torch::Tensor b_in = b.contiguous();
  torch::Tensor out = torch::empty_like(b_in);
  const int64_t n = b_in.numel();
  if (n == 0) {
    return out;
  }
  AT_DISPATCH_FLOATING_TYPES(b_in.scalar_type(), "add", [&] {
    const scalar_t* a_ptr = a_in.defined() ? a_in.data_ptr<scalar_t>() : nullptr;
    const scalar_t* b_ptr = b_in.data_ptr<scalar_t>();
    scalar_t* out_ptr = out.data_ptr<scalar_t>();
    const auto alpha_t = static_cast<scalar_t>(alpha);
    if (b_in.is_cuda()) {
#ifdef WITH_CUDA
      const c10::cuda::CUDAGuard guard(b_in.device());
      launch_axpy<scalar_t>(a_ptr, b_ptr, alpha_t, out_ptr, n, c10::cuda::getCurrentCUDAStream());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
#else
      TORCH_CHECK(false, "add: this build has no CUDA kernel (torch without CUDA when it was built)");
#endif
    } else {
      axpy_cpu<scalar_t>(a_ptr, b_ptr, alpha_t, out_ptr, n);
    }
  });
  return out;
}

torch::Tensor add_forward(const torch::Tensor& a, const torch::Tensor& b, double alpha) {
  TORCH_CHECK(a.defined(), "add: a is undefined");
  return axpy(a, b, alpha);
}

// d out / d a = 1 and d out / d b = alpha: grad_a is grad_out itself, grad_b = alpha * grad_out.
std::vector<torch::Tensor> add_backward(const torch::Tensor& grad_out, double alpha) {
  return {grad_out, axpy(torch::Tensor(), grad_out, alpha)};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &add_forward, "a + alpha * b", pybind11::arg("a"), pybind11::arg("b"), pybind11::arg("alpha"));
  m.def("backward", &add_backward, "(grad_a, grad_b) of a + alpha * b", pybind11::arg("grad_out"),
        pybind11::arg("alpha"));
  m.def("has_cuda", [] {
#ifdef WITH_CUDA
    return true;
#else
    return false;
#endif
  }, "whether this build holds the CUDA kernel");
}
