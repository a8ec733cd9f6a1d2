"""Synthetic multimodal math problems whose numbers live only in the figure.

`generate_synthetic` writes a split; `reference_text` gives a problem's
reference solution in the policy's step format; `check.local_step_labels`
judges each step of a model's solution against the figure's ground truth.
"""

from mmprm.data.synth.check import first_wrong_step, local_step_labels
from mmprm.data.synth.generate import FAMILIES, generate_synthetic, reference_text, split_of

__all__ = ["FAMILIES", "first_wrong_step", "generate_synthetic", "local_step_labels", "reference_text", "split_of"]
