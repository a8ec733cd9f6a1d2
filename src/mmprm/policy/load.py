"""Build a Policy from a command-line spec: `hf:PATH` or `openai:URL#MODEL`.

Only the CLI calls this; algorithms receive the Policy it returns.
"""

from __future__ import annotations

from mmprm.policy.base import Policy

SPEC_HELP = ("hf:PATH (a local transformers model), openai:URL#MODEL (an OpenAI-compatible server) "
             "or sim:OPTIONS (the simulated policy of tests and benchmarks)")


def load_policy(spec: str, **options) -> Policy:
    kind, sep, rest = spec.partition(":")
    if not sep or not rest:
        raise ValueError(f"policy spec {spec!r} is not {SPEC_HELP}")
    if kind == "hf":
        from mmprm.policy.hf import HFPolicy

        return HFPolicy(rest, **options)
    if kind == "openai":
        url, hash_, model = rest.partition("#")
        if not hash_ or not model:
            raise ValueError(f"policy spec {spec!r} names no model: use openai:URL#MODEL")
        from mmprm.policy.openai import OpenAIPolicy

        return OpenAIPolicy(url, model, **options)
    if kind == "sim":
        from mmprm.policy.simulated import SimulatedPolicy

        return SimulatedPolicy.from_spec(rest if rest != "default" else "")
    raise ValueError(f"unknown policy kind {kind!r} in {spec!r}; use {SPEC_HELP}")
