"""Annotated paths whose MC counts are known: the critic tests' input."""

from __future__ import annotations

from pathlib import Path

from mmprm.data import load_problems
from mmprm.data.synth import generate_synthetic
from mmprm.io import write_jsonl
from mmprm.types import AnnotatedPath


def annotated(tmp_path: Path) -> Path:
    """Reference and one-misread paths of 10 problems, with MC counts that see each error,
    except the last problem's wrong path, whose MC disagrees (a lucky rollout)."""
    generate_synthetic(10, 5, tmp_path / "data", split="train", families=["bartotal"], min_steps=3, max_steps=3)
    paths = []
    for i, p in enumerate(load_problems(tmp_path / "data" / "problems.jsonl")):
        ref = [s["text"] for s in p.meta["reference_steps"]]
        wrong = [ref[0], ref[1].rsplit(" ", 1)[0] + " 99", ref[2]]
        for steps, counts in ((ref, [[5, 8], [6, 8], [7, 8], [1, 1]]),
                              (wrong, [[5, 8], [6, 8], [1 if i == 9 else 0, 8], [0, 1]])):
            path = AnnotatedPath.of(p, steps, [1.0] * 3, mc_counts=counts)
            path.images = [str(Path(ref_).relative_to(tmp_path / "data")) for ref_ in p.images]
            paths.append(path)
    write_jsonl(tmp_path / "data" / "paths.jsonl", paths)
    return tmp_path / "data" / "paths.jsonl"
