"""a17 experiment: b02-05's (the same clipping module): hand-written clip_grad_norm_ and clip_grad_value_ against
torch.nn.utils' for every norm type, their effect on a training that diverges without clipping, and their time."""
from torchkata.experiments.b02_05 import SCALES, run  # noqa: F401
