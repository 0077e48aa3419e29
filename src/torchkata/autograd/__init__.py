"""Gradients written by hand: custom autograd Functions with their own backward, and losses differentiated by hand."""
