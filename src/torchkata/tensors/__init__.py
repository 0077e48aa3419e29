"""Tensor operations written by hand: softmax, broadcasting, elementwise ops."""
