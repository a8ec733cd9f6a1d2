"""Sizes of the demo's three variants.

quick: the test suite's smoke run; default: the README's main command; full:
more annotated problems and candidates where the effect needs data. The
README states how long each takes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

ASSETS = "assets"


@dataclass
class DemoConfig:
    variant: str = "default"
    families: list[str] = field(default_factory=lambda: ["bartotal"])  # what the tiny policy was trained on
    min_steps: int = 3
    max_steps: int = 3
    weak_policy: str = f"{ASSETS}/tiny-policy-weak"      # samples and annotates
    strong_policy: str = f"{ASSETS}/tiny-policy-strong"  # the PRMs start from it; the likelihood baseline
    # annotation (OmegaPRM with the weak policy)
    annotate_problems: int = 400
    k: int = 8
    searches: int = 6
    rollout_budget: int = 120
    paths: str = "rollouts"   # every sampled solution: the traversal alone never ends on a right answer here
    max_tokens: int = 96      # per solution or rollout: the tiny policy's solutions are about 60 tokens
    # PRM training: one PRM per label source (mmprm.labels), same paths, same settings. The
    # headline PRM is the best oracle-free one; "oracle" reads the generator's ground truth
    # and is only a ceiling.
    label_sources: list[str] = field(default_factory=lambda: ["mc", "first-error-vote", "oracle"])
    headline: str = "first-error-vote"
    # the headline's labels that the strong policy's own step likelihood disagrees with most,
    # this share of them, are masked before training (mmprm.labels.agreement; 0: off)
    headline_label_filter: float = 0.1
    prm_steps: int = 1000
    prm_lr: float = 5e-4      # 2e-3 and 1e-3 left the MC-derived labels' PRMs well behind (docs/results.md)
    prm_batch: int = 16
    prm_warmup_ratio: float = 0.05
    prm_weight_decay: float = 0.0
    # held-out evaluation
    test_problems: int = 300
    samples: int = 8
    n_values: list[int] = field(default_factory=lambda: [1, 2, 4, 8])
    # step-level beam search, guided by the headline PRM and by the oracle-label one
    beam_problems: int = 100
    beam_n: int = 8
    beam_width: int = 2
    beam_max_depth: int = 6   # rounds: the 3 steps and the answer, with room to spare
    beam_step_tokens: int = 32
    beam_aggregation: str = "min"
    temperature: float = 1.0
    policy_batch: int = 64
    seed: int = 0
    # the generative critic (GM-PRM), behind `mmprm demo --critic`: critiques from the
    # simulated teacher (ORACLE + seeded noise: a stand-in for a teacher model) of the weak
    # policy's annotated solutions, kept where MC agrees; a critic trained on them from the
    # strong policy; its rows in the report. The demo's own 400 annotated problems give about
    # 640 critiques, too few for the tiny critic to learn to compare (docs/results.md), so
    # `critic_extra_problems` more training problems are annotated the same way for it.
    critic: bool = False
    critic_teacher_noise: float = 0.2
    critic_extra_problems: int = 1600
    critic_steps: int = 2000
    critic_lr: float = 1e-3
    critic_batch: int = 16
    critic_verdict_weight: float = 10.0


VARIANTS = {
    "quick": dict(annotate_problems=12, k=4, searches=3, rollout_budget=40, prm_steps=20, test_problems=24,
                  samples=4, n_values=[1, 2, 4], beam_problems=6, beam_n=4, beam_width=2, critic_steps=10,
                  critic_extra_problems=8),
    "default": {},
    "full": dict(annotate_problems=2000, k=8, searches=8, rollout_budget=160, prm_steps=2000,
                 test_problems=500, samples=16, n_values=[1, 2, 4, 8, 16], beam_problems=300, beam_n=16,
                 beam_width=4),
}


def demo_config(variant: str = "default", **overrides) -> DemoConfig:
    if variant not in VARIANTS:
        raise ValueError(f"unknown demo variant {variant!r}; choose from {', '.join(VARIANTS)}")
    cfg = replace(DemoConfig(variant=variant, **VARIANTS[variant]),
                  **{k: v for k, v in overrides.items() if v is not None})
    from mmprm.labels import get_source

    for name in cfg.label_sources:
        get_source(name)
    if cfg.headline not in cfg.label_sources or get_source(cfg.headline).oracle:
        raise ValueError(f"the headline PRM ({cfg.headline!r}) must be one of the trained label sources "
                         f"{cfg.label_sources} and must not be an oracle")
    return cfg
