"""Dataset readers and preparers: real on-disk formats (MNIST IDX, ...) turned into tensors under data/<name>/."""
