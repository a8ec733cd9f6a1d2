"""Read a Problem JSONL for use in memory, with every image checked.

Image references in the file are relative to it; in memory they become
absolute paths (data URIs stay as they are), so a backend can open them
wherever it runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from mmprm.io import Rejected, RejectLog, absolute_images, open_image, read_records
from mmprm.types import Problem, RecordError


def iter_problems(path: str | Path, *, check_images: bool = True) -> Iterator[Problem | Rejected]:
    """Problems of a JSONL file with absolute image paths, or Rejected lines
    (bad JSON, missing fields, images that are missing, unreadable or outside
    the file's folder, duplicate ids)."""
    path = Path(path)
    base = path.parent
    seen: dict[str, int] = {}
    for lineno, rec in read_records(path, Problem.from_dict):
        if isinstance(rec, Rejected):
            yield rec
            continue
        if rec.id in seen:
            yield Rejected(str(path), lineno, f"duplicate id {rec.id!r} (first on line {seen[rec.id]})")
            continue
        try:
            rec.images = [_absolute(ref, base, check_images) for ref in rec.images]
        except RecordError as e:
            yield Rejected(str(path), lineno, str(e))
            continue
        seen[rec.id] = lineno
        yield rec


def _absolute(ref: str, base: Path, check: bool) -> str:
    if check:
        open_image(ref, base)
    return absolute_images([ref], base)[0]


def load_problems(path: str | Path, *, check_images: bool = True, rejects: RejectLog | None = None,
                  strict: bool = False) -> list[Problem]:
    """All usable problems of a file. Bad lines go to `rejects` (if given);
    with `strict` the first bad line raises RecordError instead."""
    problems: list[Problem] = []
    for rec in iter_problems(path, check_images=check_images):
        if isinstance(rec, Rejected):
            if strict:
                raise RecordError(str(rec))
            if rejects is not None:
                rejects.add(rec)
            continue
        problems.append(rec)
    return problems
