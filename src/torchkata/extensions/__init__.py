"""C++/CUDA extensions wrapped as autograd Functions (sources in csrc/, built by their own rules)."""
