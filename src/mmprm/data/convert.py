"""`mmprm data convert`: a benchmark's own file to a checked mmprm JSONL.

Images are re-homed beside the output (hard-linked where the file system
allows, copied otherwise) so the output folder is self-contained and its image
paths stay relative to it. Every bad record is named (file, line or item,
reason) in `<output>.rejected.jsonl`, and counted.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from mmprm.data.adapters import ADAPTERS
from mmprm.io import JsonlAppender, Rejected, RejectLog, iter_json_lines, link_image, open_image, resolve_image
from mmprm.types import RecordError


@dataclass
class ConvertSummary:
    source: str
    written: int
    rejected: int
    output: str
    rejected_file: str | None

    def __str__(self) -> str:
        text = f"{self.source}: wrote {self.written} records to {self.output}, rejected {self.rejected}"
        return text + (f" (see {self.rejected_file})" if self.rejected else "")


def iter_raw(path: Path) -> Iterator[tuple[int, Any]]:
    """(line or item number, raw dict or Rejected) from a .jsonl or .json file."""
    if path.suffix == ".jsonl":
        yield from iter_json_lines(path)
        return
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise RecordError(f"{path}: invalid UTF-8 at byte {e.start}") from None
    except json.JSONDecodeError as e:
        raise RecordError(f"{path}:{e.lineno}: invalid JSON: {e.msg}") from None
    if isinstance(data, dict):  # MathVista keys its records by pid
        items = [({"pid": key, **value} if isinstance(value, dict) else value) for key, value in data.items()]
    elif isinstance(data, list):
        items = data
    else:
        raise RecordError(f"{path}: expected a JSON list or object of records")
    yield from enumerate(items, start=1)


def convert(source: str, input_path: str | Path, output: str | Path, *,
            progress: bool = True, echo=print) -> ConvertSummary:
    if source not in ADAPTERS:
        raise ValueError(f"unknown source {source!r}; choose from {', '.join(sorted(ADAPTERS))}")
    adapter = ADAPTERS[source]
    input_path, output = Path(input_path), Path(output)
    if not input_path.is_file():
        raise FileNotFoundError(f"{input_path}: no such file")
    unit = "line" if input_path.suffix == ".jsonl" else "item"
    image_dir = output.with_name(output.name.removesuffix(".jsonl") + "_images")
    tmp = output.with_name(output.name + ".partial")
    tmp.unlink(missing_ok=True)
    rejects = RejectLog(output, echo=echo)
    rejects.path.unlink(missing_ok=True)
    seen: dict[str, int] = {}
    with JsonlAppender(tmp, fsync=False) as out:
        for where, raw in tqdm(iter_raw(input_path), desc=f"convert {source}", unit="rec",
                               disable=not progress):
            if isinstance(raw, Rejected):
                rejects.add(raw)
                continue
            try:
                if not isinstance(raw, dict):
                    raise RecordError(f"expected a JSON object, got {type(raw).__name__}")
                record = adapter(raw)
                if record.id in seen:
                    raise RecordError(f"duplicate id {record.id!r} (first at {unit} {seen[record.id]})")
                record.images = [_rehome(ref, input_path.parent, image_dir, output.parent, record.id, k)
                                 for k, ref in enumerate(record.images)]
            except RecordError as e:
                rejects.add(Rejected(str(input_path), where, f"{unit} {where}: {e}" if unit == "item" else str(e)))
                continue
            seen[record.id] = where
            out.write(record)
    os.replace(tmp, output)
    rejects.close()
    return ConvertSummary(source, out.count, rejects.count, str(output),
                          str(rejects.path) if rejects.count else None)


def _rehome(ref: str, src_dir: Path, image_dir: Path, out_dir: Path, record_id: str, k: int) -> str:
    open_image(ref, src_dir)  # raises RecordError if missing, unreadable or outside src_dir
    source = resolve_image(ref, src_dir)
    if isinstance(source, bytes):
        return ref
    safe_id = re.sub(r"[^A-Za-z0-9._-]", "_", record_id)
    target = image_dir / f"{safe_id}_{k}{source.suffix.lower()}"
    link_image(source, target)
    return os.path.relpath(target, out_dir)
