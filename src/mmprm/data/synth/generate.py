"""Generate a synthetic split: problems.jsonl plus one PNG per problem.

The split of a problem is a function of its content (family, figure values,
question), and the generator draws candidates until one belongs to the asked
split, so a train file and a test file never share a problem whatever their
seeds. Layout jitter is not content: the same values drawn twice are the same
problem.
"""

from __future__ import annotations

import random
from pathlib import Path

from tqdm import tqdm

from mmprm.data.synth import bars, bartotal, counting, geometry, numberline
from mmprm.data.synth.common import Candidate
from mmprm.data.synth.render import Canvas
from mmprm.io import write_jsonl
from mmprm.steps import render_steps
from mmprm.types import Problem

FAMILIES = {m.NAME: m for m in (bars, geometry, counting, numberline, bartotal)}
SPLITS = ("train", "test")
TEST_SHARE = 5  # one content hash in 5 belongs to test
STEP_RANGE = (2, 8)
MAX_TRIES = 500  # candidates per problem before accepting a repeat


def split_of(content_key: str) -> str:
    return "test" if int(content_key[:8], 16) % TEST_SHARE == 0 else "train"


def generate_synthetic(
    n: int,
    seed: int,
    out_dir: str | Path,
    *,
    split: str = "train",
    min_steps: int = 2,
    max_steps: int = 8,
    families: list[str] | None = None,
    image_size: int = 112,
) -> Path:
    """Write `n` problems to `out_dir`/problems.jsonl and `out_dir`/images/; return the JSONL path.

    Same arguments, byte-identical output. Families take turns in the order
    given (all four by default); each problem's step count is drawn
    uniformly from [min_steps, max_steps].
    """
    names = _check_args(n, split, min_steps, max_steps, families, image_size)
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"mmprm-synth:{seed}")
    seen: set[str] = set()
    problems = []
    for index in tqdm(range(n), desc=f"synth {split}", unit="problem"):
        family = FAMILIES[names[index % len(names)]]
        n_steps = rng.randint(min_steps, max_steps)
        cand, key = _draw_candidate(rng, family, n_steps, split, seen)
        seen.add(key)
        pid = f"syn-{split}-{seed}-{index:06d}"
        image = f"images/{pid}.png"
        canvas = Canvas(image_size)
        family.draw(cand, rng, canvas)
        canvas.save(out / image)
        problems.append(_problem(cand, pid, image, key, split, seed, index, image_size))
    path = out / "problems.jsonl"
    write_jsonl(path, problems)
    return path


def reference_text(problem: Problem) -> str:
    """The reference solution as the policy should write it (its training target)."""
    ref = problem.meta.get("reference_steps")
    if not ref:
        raise ValueError(f"problem {problem.id!r} has no meta.reference_steps (not a synthetic problem?)")
    return render_steps([s["text"] for s in ref], problem.answer)


def _draw_candidate(rng: random.Random, family, n_steps: int, split: str, seen: set[str]) -> tuple[Candidate, str]:
    """A candidate of the asked split, new to this run when one turns up within MAX_TRIES.

    Some small corners (two-step geometry: about a hundred problems in all)
    run out in a large run; they then repeat a problem of the same split
    rather than fail, so the split rule still holds.
    """
    repeat = None
    for _ in range(MAX_TRIES):
        cand = family.build(rng, n_steps)
        if cand is None or not cand.valid():
            continue
        key = cand.content_key()
        if split_of(key) != split:
            continue
        if key not in seen:
            return cand, key
        repeat = repeat or (cand, key)
    if repeat is None:
        raise RuntimeError(f"no {split} problem of family {family.NAME!r} with {n_steps} steps in {MAX_TRIES} tries")
    return repeat


def _problem(c: Candidate, pid: str, image: str, key: str, split: str, seed: int, index: int, size: int) -> Problem:
    meta = {
        "family": c.family,
        "task": c.task,
        "split": split,
        "seed": seed,
        "index": index,
        "n_steps": len(c.steps),
        "reference_steps": [s.to_dict() for s in c.steps],
        "objects": c.objects,
        "content_hash": key,
        "image_size": size,
    }
    return Problem(pid, c.question, str(c.answer), [image], source=f"synthetic/{c.family}", meta=meta)


def _check_args(n, split, min_steps, max_steps, families, image_size) -> list[str]:
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    lo, hi = STEP_RANGE
    if not lo <= min_steps <= max_steps <= hi:
        raise ValueError(f"need {lo} <= min_steps <= max_steps <= {hi}, got {min_steps} and {max_steps}")
    if image_size % 28 or image_size < 112:
        raise ValueError(f"image_size must be a multiple of 28 and at least 112, got {image_size}")
    names = list(FAMILIES) if families is None else list(families)
    unknown = [f for f in names if f not in FAMILIES]
    if unknown or not names:
        raise ValueError(f"unknown families {unknown}; choose from {sorted(FAMILIES)}")
    return names
