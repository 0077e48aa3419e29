"""Modules and network basics, written by hand: LayerNorm, tied weights, a simple RNN, ModuleList, an MLP."""
