"""Step-label sources for PRM training: MC-derived (from the policy's own
rollouts), a sympy arithmetic check, and the synthetic oracle (a ceiling)."""

from mmprm.labels.sources import (
    LABEL_SOURCES,
    LabelledPath,
    LabelSource,
    get_source,
    label_paths,
    load_labelled,
    reference_verdicts,
    step_targets,
)

__all__ = ["LABEL_SOURCES", "LabelSource", "LabelledPath", "get_source", "label_paths", "load_labelled",
           "reference_verdicts", "step_targets"]
