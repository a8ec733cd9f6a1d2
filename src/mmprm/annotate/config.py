"""Annotation settings, with the defaults of the OmegaPRM paper (Luo et al. 2024).

`recipes/mmprm-annotate.yaml` holds MM-PRM's run settings as overrides.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mmprm.config import from_recipe, setting

PATH_KINDS = ("traversal", "rollouts", "both")
DECISIONS = ("any", "survival", "floor")


@dataclass
class AnnotateConfig:
    method: str = setting("omegaprm", "omegaprm (tree search) or mc (Math-Shepherd per-step MC)",
                          choices=("omegaprm", "mc"))
    k: int = setting(8, "rollouts per MC estimate")
    alpha: float = setting(0.5, "OmegaPRM's Q = alpha^(1-MC) * beta^(len(r)/L)")
    beta: float = setting(0.9, "OmegaPRM's length penalty base")
    length_scale: int = setting(500, "L, in generated tokens")
    c_puct: float = setting(0.125, "U = c_puct * sqrt(sum N) / (1 + N(s))")
    max_searches: int = setting(100, "binary searches per problem", aliases=("--searches",))
    decision: str = setting("any", "when a prefix counts as still on track in the binary search: any (MC > 0, "
                            "MM-PRM's rule), survival (a sequential test of the prefix's MC between the root's "
                            "MC and `survival` times it: holds up where wrong steps can still reach the answer "
                            "by luck or guessing) or floor (a sequential test between the MC a right prefix keeps "
                            "at its depth, root MC ^ (steps left / steps), and `floor`, the MC a wrong one keeps "
                            "by luck: cheap where wrong steps rarely reach the answer)", choices=DECISIONS)
    survival: float = setting(0.5, "decision survival: a prefix's MC is tested against the root's MC and "
                              "this share of it")
    floor: float = setting(0.05, "decision floor: the MC a wrong prefix is taken to keep by luck or guessing (at "
                           "most `survival` times a right one's); at 0 one right rollout settles \"on track\", "
                           "which a lucky answer then fools")
    decision_error: float = setting(0.1, "decision survival or floor: the sequential test's chance of either mistake")
    decision_max: int = setting(32, "decision survival or floor: the most rollouts one decision draws")
    pool_survival: float = setting(0.75, "decision survival or floor (above 0): the share of the root's MC a "
                                   "prefix's rollouts must show before its wrong rollouts seed searches")
    root_k: int = setting(0, "rollouts for the root's MC (0: k); decision survival measures against it, so "
                          "a root MC off by chance misjudges every prefix of the problem")
    wave: int = setting(0, "rollouts drawn at a time in the binary search, stopping once the decision is "
                        "settled (0: all k at once, as MM-PRM)")
    fill_below: float = setting(0.0, "with wave: where the root's MC is at most this, a prefix found on track is "
                                "drawn up to k after its decision, and its wrong rollouts seed searches (0: never)")
    refill: int = setting(0, "when no wrong rollout is left to search, draw this many more from the root and go "
                          "on while budget and searches last (0: stop there, as MM-PRM)")
    complete_labels: bool = setting(True, "with wave: draw the estimates that stopped early up to k after the "
                                    "search, so every MC label is over k rollouts")
    blame_last_step: bool = setting(True, "a wrong rollout whose prefix before its last step is on track has "
                                    "its last step blamed without a rollout; safe where a wrong answer always "
                                    "means a wrong step, not where answers can be mis-stated or mis-extracted")
    rollout_budget: int = setting(10_000, "rollouts per problem", aliases=("--budget",))
    num_solutions: int = setting(4, "mc method: solutions annotated per problem", aliases=("--solutions",))
    temperature: float = setting(1.0, "sampling temperature of the rollouts")
    top_p: float = setting(1.0, "nucleus sampling")
    top_k: int = setting(0, "top-k sampling (0: off)")
    max_tokens: int = setting(512, "tokens per rollout")
    seed: int = setting(0, "every sample's seed derives from it, the problem and the prefix")
    min_path_steps: int = setting(2, "shorter training paths are dropped")
    paths: str = setting("traversal", "omegaprm's training paths: MM-PRM's tree traversal, every sampled solution "
                         "with MC labels (rollouts), or both", choices=PATH_KINDS)
    max_rollout_paths: int | None = setting(None, "with paths rollouts|both: keep at most N sampled solutions a "
                                            "problem, drawn at random (unset: all)")

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
        if self.decision not in DECISIONS:
            raise ValueError(f"decision must be one of {', '.join(DECISIONS)}, got {self.decision!r}")
        if not 0 < self.survival < 1 or not 0 < self.pool_survival <= 1:
            raise ValueError(f"survival must be in (0, 1) and pool_survival in (0, 1], got {self.survival}, "
                             f"{self.pool_survival}")
        if not 0 <= self.floor < 1 or not 0 <= self.fill_below <= 1 or self.refill < 0:
            raise ValueError(f"need 0 <= floor < 1, 0 <= fill_below <= 1 and refill >= 0, got {self.floor}, "
                             f"{self.fill_below}, {self.refill}")
        if not 0 < self.decision_error < 0.5 or self.decision_max < 1:
            raise ValueError(f"need 0 < decision_error < 0.5 and decision_max >= 1, got {self.decision_error}, "
                             f"{self.decision_max}")
        if self.root_k < 0:
            raise ValueError(f"root_k must be at least 0 (0: k), got {self.root_k}")
        if self.wave < 0:
            raise ValueError(f"wave must be at least 0 (0: all k at once), got {self.wave}")
        if self.k < 1 or self.max_searches < 0 or self.rollout_budget < self.k:
            raise ValueError("need k >= 1, max_searches >= 0 and rollout_budget >= k")

    @classmethod
    def from_recipe(cls, path: str | Path | None, **overrides) -> AnnotateConfig:
        """Defaults, then the recipe's `annotate:` section, then explicit overrides (None = unset)."""
        return from_recipe(cls, path, "annotate", **overrides)
