"""Optimizers written by hand, each matching its torch.optim counterpart step for step."""
