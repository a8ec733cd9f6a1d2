"""Stable seeds: every random choice of a stage derives from its inputs, so
reruns, resumed runs and differently batched runs draw the same samples."""

from __future__ import annotations

import hashlib


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from any parts (Python's hash() changes per process)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1
