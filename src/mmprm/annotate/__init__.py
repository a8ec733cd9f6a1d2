"""Step-level annotation: MC estimates, per-step MC, OmegaPRM, the runner."""
