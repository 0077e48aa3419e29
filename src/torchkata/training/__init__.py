"""What the trainings share: one loop over in-memory tensors (loop.py) and one plot of its curves."""
