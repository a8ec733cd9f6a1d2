"""Annotation settings, with the defaults of the OmegaPRM paper (Luo et al. 2024).

`recipes/mmprm-annotate.yaml` holds MM-PRM's run settings as overrides.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mmprm.recipes import from_recipe

PATH_KINDS = ("traversal", "rollouts", "both")


@dataclass
class AnnotateConfig:
    method: str = "omegaprm"      # omegaprm | mc (Math-Shepherd per-step MC)
    k: int = 8                    # rollouts per MC estimate
    alpha: float = 0.5            # Q = alpha^(1-MC) * beta^(len(r)/L)
    beta: float = 0.9
    length_scale: int = 500       # L, in generated tokens
    c_puct: float = 0.125         # U = c_puct * sqrt(sum N) / (1 + N(s))
    max_searches: int = 100       # binary searches per problem
    rollout_budget: int = 10_000  # rollouts per problem
    num_solutions: int = 4        # mc method: solutions annotated per problem
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    max_tokens: int = 512
    seed: int = 0
    min_path_steps: int = 2       # shorter training paths are dropped
    paths: str = "traversal"      # omegaprm: traversal (MM-PRM's) | rollouts (every sampled solution) | both
    max_rollout_paths: int | None = None  # per problem, drawn at random; None keeps every sampled solution

    def __post_init__(self) -> None:
        if self.method not in ("omegaprm", "mc"):
            raise ValueError(f"method must be omegaprm or mc, got {self.method!r}")
        if self.paths not in PATH_KINDS:
            raise ValueError(f"paths must be one of {', '.join(PATH_KINDS)}, got {self.paths!r}")
        if self.method == "mc" and self.paths != "traversal":
            raise ValueError("paths chooses OmegaPRM's training paths; per-step MC labels its own solutions")
        if self.max_rollout_paths is not None and self.max_rollout_paths < 1:
            raise ValueError(f"max_rollout_paths must be at least 1, got {self.max_rollout_paths}")
        if self.max_rollout_paths is not None and self.paths == "traversal":
            raise ValueError("max_rollout_paths needs paths rollouts or both")
        if self.k < 1 or self.max_searches < 0 or self.rollout_budget < self.k:
            raise ValueError("need k >= 1, max_searches >= 0 and rollout_budget >= k")

    @classmethod
    def from_recipe(cls, path: str | Path | None, **overrides) -> AnnotateConfig:
        """Defaults, then the recipe's `annotate:` section, then explicit overrides (None = unset)."""
        return from_recipe(cls, path, "annotate", **overrides)
