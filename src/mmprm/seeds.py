"""Stable seeds: every random choice of a stage derives from its inputs, so
reruns, resumed runs and differently batched runs draw the same samples."""

from __future__ import annotations

import hashlib


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from any parts (Python's hash() changes per process)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def problem_seed(seed: int | None, problem_id: str) -> int | None:
    """A problem's own sampling seed: its samples then do not depend on which
    other problems share its batch, so a resumed run draws what an
    uninterrupted one did. None (unseeded) stays None."""
    return None if seed is None else derive_seed(seed, "problem", problem_id)
