"""JSONL reading and writing that never loses a record silently.

Readers yield either a parsed record or a `Rejected` naming file, line and
reason; bulk commands write the rejections to `<output>.rejected.jsonl` and go
on. Writers append one line at a time and flush it to disk, so a killed job
keeps every line it finished and a rerun can skip them.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from mmprm.types import RecordError

T = TypeVar("T")


@dataclass
class Rejected:
    """A record that could not be used: where it was and why."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"

    def to_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "reason": self.reason}


def iter_json_lines(path: str | Path) -> Iterator[tuple[int, Any | Rejected]]:
    """Yield (line number, parsed JSON or Rejected) for each non-blank line."""
    path = Path(path)
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                yield lineno, Rejected(str(path), lineno, f"invalid UTF-8 at byte {e.start}")
                continue
            if not text.strip():
                continue
            try:
                yield lineno, json.loads(text)
            except json.JSONDecodeError as e:
                yield lineno, Rejected(str(path), lineno, f"invalid JSON: {e.msg} at column {e.colno}")


def read_records(
    path: str | Path, parse: Callable[[Any], T]
) -> Iterator[tuple[int, T | Rejected]]:
    """Parse every line of a JSONL file with `parse` (e.g. `Problem.from_dict`).

    A RecordError raised by `parse` becomes a Rejected for that line.
    """
    for lineno, obj in iter_json_lines(path):
        if isinstance(obj, Rejected):
            yield lineno, obj
            continue
        try:
            yield lineno, parse(obj)
        except RecordError as e:
            yield lineno, Rejected(str(path), lineno, str(e))


def load_records(path: str | Path, parse: Callable[[Any], T], *, strict: bool = True) -> list[T]:
    """All records of a file; with `strict`, the first bad line raises RecordError."""
    out: list[T] = []
    for _, rec in read_records(path, parse):
        if isinstance(rec, Rejected):
            if strict:
                raise RecordError(str(rec))
            continue
        out.append(rec)
    return out


def rejected_path(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(output.name.removesuffix(".jsonl").removesuffix(".json") + ".rejected.jsonl")


class JsonlAppender:
    """Append records to a JSONL file, one durable line at a time.

    A line cut short by a kill (no trailing newline) is removed on open, so
    the file always holds whole records.
    """

    def __init__(self, path: str | Path, *, fsync: bool = True):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _truncate_partial_line(self.path)
        self._f = open(self.path, "a", encoding="utf-8")
        self._fsync = fsync
        self.count = 0

    def write(self, record: Any) -> None:
        self.write_many([record])

    def write_many(self, records: Iterable[Any]) -> None:
        """Append records, then make them durable together: one flush and one fsync, not one per line."""
        for record in records:
            obj = record.to_dict() if hasattr(record, "to_dict") else record
            self._f.write(json.dumps(obj, ensure_ascii=False) + "\n")
            self.count += 1
        self._f.flush()
        if self._fsync:
            os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RejectLog:
    """Collects rejections for one output: echoes each and, when the output is
    a file, saves them beside it in `<output>.rejected.jsonl`. Every run reads
    its inputs afresh, so the file holds this run's rejections, each once."""

    def __init__(self, output: str | Path | None, *, echo: Callable[[str], None] | None = None):
        self.path = rejected_path(output) if output is not None else None
        if self.path is not None:
            self.path.unlink(missing_ok=True)
        self.count = 0
        self._echo = echo
        self._writer: JsonlAppender | None = None

    def add(self, rejected: Rejected) -> None:
        if self.path is not None:
            if self._writer is None:
                self._writer = JsonlAppender(self.path, fsync=False)
            self._writer.write(rejected)
        self.count += 1
        if self._echo is not None:
            self._echo(f"rejected {rejected}")

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def write_jsonl(path: str | Path, records: Iterable[Any]) -> int:
    """Write records atomically (temp file then rename); returns the count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    n = 0
    with open(tmp, "w", encoding="utf-8") as f:
        for record in records:
            obj = record.to_dict() if hasattr(record, "to_dict") else record
            f.write(json.dumps(obj, ensure_ascii=False) + "\n")
            n += 1
    os.replace(tmp, path)
    return n


def write_json_atomic(path: str | Path, obj: Any, *, indent: int | None = 2) -> None:
    """Write one JSON document so a reader sees the old file or the new, never half of one.
    `indent=None` writes it on one line, several times faster for large documents."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def _truncate_partial_line(path: Path) -> None:
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return
        f.seek(0)
        data = f.read()
        keep = data.rfind(b"\n") + 1
        f.truncate(keep)


# ---- images ---------------------------------------------------------------

def resolve_image(ref: str, base_dir: str | Path) -> Path | bytes:
    """Turn an image reference into a path inside `base_dir` or decoded bytes.

    Raises RecordError for a path that leaves `base_dir` (absolute or via
    `..`), a missing file, or a malformed data URI.
    """
    from mmprm.limits import limits, over_limit

    max_bytes = limits().max_image_bytes
    if ref.startswith("data:"):
        header, _, payload = ref.partition(",")
        if not header.endswith(";base64") or not payload:
            raise RecordError("image data URI must be base64 ('data:image/png;base64,...')")
        if reason := over_limit("the image's size in bytes", len(payload) * 3 // 4, max_bytes, "max_image_bytes"):
            raise RecordError(reason)
        try:
            return base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise RecordError("image data URI is not valid base64") from None
    base = Path(base_dir).resolve()
    if os.path.isabs(ref):
        raise RecordError(f"image path {ref!r} is absolute; use a path relative to the data file")
    path = (base / ref).resolve()
    if not path.is_relative_to(base):
        raise RecordError(f"image path {ref!r} escapes the data folder {base}")
    if not path.is_file():
        raise RecordError(f"image {ref!r} not found at {path}")
    if reason := over_limit(f"image {ref!r}'s size in bytes", path.stat().st_size, max_bytes, "max_image_bytes"):
        raise RecordError(reason)
    return path


def absolute_images(refs: list[str], base_dir: str | Path) -> list[str]:
    """A record's image references as a loader needs them: paths made absolute
    against the record file's folder (checked to exist inside it), data URIs kept."""
    return [ref if isinstance(found := resolve_image(ref, base_dir), bytes) else str(found) for ref in refs]


def open_image(ref: str, base_dir: str | Path):
    """Load an image reference as an RGB PIL image, or raise RecordError."""
    import io as _io

    from PIL import Image, UnidentifiedImageError

    from mmprm.limits import limits, over_limit

    source = resolve_image(ref, base_dir)
    try:
        img = Image.open(_io.BytesIO(source) if isinstance(source, bytes) else source)  # reads the header only
        if reason := over_limit(f"image {ref[:60]!r}'s pixel count", img.width * img.height,
                                limits().max_image_pixels, "max_image_pixels"):
            raise RecordError(reason)
        img.load()
    except (UnidentifiedImageError, OSError) as e:
        raise RecordError(f"image {ref[:60]!r} cannot be read: {e}") from None
    return img.convert("RGB")


def load_image(ref: str, cache: dict | None = None):
    """An RGB image from an absolute path or a base64 data URI (opened once per `cache`):
    how every model input reads the images that `load_problems` resolved."""
    from io import BytesIO

    from PIL import Image

    if cache is not None and ref in cache:
        return cache[ref]
    try:
        if ref.startswith("data:"):
            header, _, payload = ref.partition(",")
            if not header.endswith(";base64"):
                raise ValueError("only base64 data URIs are supported")
            source = BytesIO(base64.b64decode(payload, validate=True))
        else:
            source = Path(ref)
            if not source.is_absolute():
                raise ValueError("image paths must be absolute (mmprm.data.load_problems makes them so)")
        image = Image.open(source)
        image.load()
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot open image {ref[:80]!r}: {e}") from None
    image = image.convert("RGB")
    if cache is not None:
        cache[ref] = image
    return image


def image_data_uri(ref: str, cache: dict[str, str] | None = None) -> str:
    """A data URI for an image path (a data URI is passed through)."""
    if ref.startswith("data:"):
        return ref
    if cache is not None and ref in cache:
        return cache[ref]
    import mimetypes

    path = Path(ref)
    if not path.is_file():
        raise FileNotFoundError(f"image {ref} not found (problem images must be absolute paths or data: URIs)")
    mime = mimetypes.guess_type(path.name)[0] or "image/png"
    uri = f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"
    if cache is not None:
        cache[ref] = uri
    return uri


def link_image(source: Path, target: Path) -> None:
    """Place an image file at `target`: a hard link where the file system
    allows (no copy of big image sets), else a copy."""
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def rehome_images(images: list[str], out_dir: Path, image_dir: Path, stem: str) -> list[str]:
    """Give in-memory images (absolute paths or data URIs) a home inside
    `out_dir`, so a written record's paths are relative to its own folder."""
    refs = []
    for k, ref in enumerate(images):
        if ref.startswith("data:"):
            refs.append(ref)
            continue
        source = Path(ref)
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", stem)
        target = image_dir / f"{safe}_{k}{source.suffix.lower()}"
        link_image(source, target)
        refs.append(os.path.relpath(target, out_dir))
    return refs
