"""One resumable output for every command that writes records problem by problem.

generate, score, search and annotate append each problem's records as soon
as it is finished, then one line for it in a ledger; a problem counts as done
only once its ledger line is on disk, so a kill at any point loses at most
the problems in flight. Beside the records lie the settings that made them
and a lock:

    file output (samples.jsonl)    folder output (annotate/)
    samples.jsonl                  paths.jsonl          records
    samples.done.jsonl             done.jsonl           ledger
    samples.config.json            config.json          settings
    samples.lock                   .lock                lock

Opening an output refuses, with a message that says what to do:
- an output that is also one of the command's inputs;
- a records file without a ledger (another tool's file, or a file this
  command did not write): it is never appended to or trimmed;
- a rerun under other settings (the differences are named), so one file
  never mixes records of two kinds;
- a second run into the same output while the first still holds the lock.
The lock is an OS file lock: a killed run's lock goes with its process, so
a stale lock never blocks a rerun.
Records of the current input's problems that have no ledger line (cut off
mid-write) are removed to be redone; records of every other problem are kept
byte for byte.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmprm.io import JsonlAppender, iter_json_lines, write_json_atomic


class OutputError(ValueError):
    """The output cannot be written as asked; the message says why and what to do."""


@dataclass(frozen=True)
class OutputLayout:
    records: Path
    ledger: Path
    settings: Path
    lock: Path

    @classmethod
    def file(cls, path: str | Path) -> OutputLayout:
        """Sidecars of a records file `x.jsonl`: x.done.jsonl, x.config.json, x.lock."""
        path = Path(path)
        if path.is_dir():
            raise OutputError(f"{path} is a folder; give a .jsonl file to write")
        stem = path.name.removesuffix(".jsonl")
        return cls(path, path.with_name(stem + ".done.jsonl"), path.with_name(stem + ".config.json"),
                   path.with_name(stem + ".lock"))

    def ensure_folder(self) -> None:
        """Create the folder the output goes in, or say in one line why it cannot be."""
        try:
            self.records.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"cannot create the output folder {self.records.parent}: {e.strerror}") from None

    @classmethod
    def folder(cls, path: str | Path, records: str) -> OutputLayout:
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise OutputError(f"{path} is a file; the output must be a folder")
        return cls(path / records, path / "done.jsonl", path / "config.json", path / ".lock")


def refuse_input_as_output(outputs: Iterable[str | Path], inputs: Iterable[str | Path]) -> None:
    """Raise OutputError when a file to be written is also a file to be read."""
    read = {Path(p).resolve(): Path(p) for p in inputs if p is not None}
    for out in outputs:
        source = read.get(Path(out).resolve())
        if source is not None:
            raise OutputError(f"{out} is also an input ({source}); writing it would destroy what is read: "
                              "choose another output")


def settings_differences(saved: dict, current: dict, prefix: str = "") -> list[str]:
    """'key: old -> new' for every setting that differs, nested keys dotted."""
    out = []
    for key in sorted(set(saved) | set(current)):
        old, new = saved.get(key), current.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            out += settings_differences(old, new, f"{prefix}{key}.")
        elif old != new:
            out.append(f"{prefix}{key}: {old!r} -> {new!r}")
    return out


class ResumableOutput:
    """Records appended per problem, a ledger of finished problems, the settings and a lock.

    `key` is the record field that holds the problem id. Use as
    `with ResumableOutput(...).open(problem_ids) as out:`; `out.done` maps each
    finished problem to its ledger line.
    """

    def __init__(self, layout: OutputLayout, settings: dict, *, key: str = "problem_id",
                 inputs: Iterable[str | Path] = ()):
        self.layout = layout
        self.settings = json.loads(json.dumps(settings))  # the form it takes on disk (tuples become lists)
        self.key = key
        self.inputs = list(inputs)
        self.done: dict[str, dict] = {}
        self._lock_fd: int | None = None
        self._records: JsonlAppender | None = None
        self._ledger: JsonlAppender | None = None

    def open(self, problem_ids: Iterable[str]) -> ResumableOutput:
        layout = self.layout
        refuse_input_as_output([layout.records, layout.ledger, layout.settings], self.inputs)
        layout.ensure_folder()
        self._take_lock()
        try:
            self._check_existing()
            self.done = self._read_ledger()
            self._drop_unfinished(set(problem_ids) - set(self.done))
            write_json_atomic(layout.settings, self.settings)
            self._records = JsonlAppender(layout.records)
            self._ledger = JsonlAppender(layout.ledger)
        except BaseException:
            self.close()
            raise
        return self

    def write(self, problem_id: str, records: Iterable[Any], **ledger: Any) -> None:
        """Append a finished problem's records, then its ledger line."""
        assert self._records is not None and self._ledger is not None, "open() the output first"
        self._records.write_many(records)
        line = {"id": problem_id, **ledger}
        self._ledger.write(line)
        self.done[problem_id] = line

    def close(self) -> None:
        for sink in (self._records, self._ledger):
            if sink is not None:
                sink.close()
        self._records = self._ledger = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the lock
            self._lock_fd = None

    def __enter__(self) -> ResumableOutput:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _take_lock(self) -> None:
        path = self.layout.lock
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise OutputError(f"cannot write in {path.parent}: {e.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise OutputError(f"{self.layout.records} is being written by {holder}; wait for that run to end "
                              "(or stop it) before writing to the same output") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"process {os.getpid()}".encode())
        self._lock_fd = fd

    def _check_existing(self) -> None:
        layout = self.layout
        has_records = layout.records.exists() and layout.records.stat().st_size > 0
        if has_records and not layout.ledger.exists():
            raise OutputError(f"{layout.records} already holds records that no run of this command is resuming "
                              f"(no {layout.ledger.name} beside it); choose a new output, or delete it to start over")
        if layout.settings.exists() and (has_records or layout.ledger.exists()):
            try:
                saved = json.loads(layout.settings.read_text())
            except json.JSONDecodeError as e:
                raise OutputError(f"{layout.settings}: invalid JSON ({e.msg} at line {e.lineno}); "
                                  "it records the settings of the output beside it") from None
            changed = settings_differences(saved, self.settings)
            if changed:
                raise OutputError(f"{layout.records} holds records made with other settings ({'; '.join(changed)}); "
                                  "rerun with the same settings to resume, or choose a new output")

    def _read_ledger(self) -> dict[str, dict]:
        done: dict[str, dict] = {}
        if self.layout.ledger.exists():
            for _, line in iter_json_lines(self.layout.ledger):
                if isinstance(line, dict) and isinstance(line.get("id"), str):
                    done[line["id"]] = line
        return done

    def _drop_unfinished(self, unfinished: set[str]) -> None:
        """Remove the records of problems about to be redone; every other line stays as it is."""
        path = self.layout.records
        if not unfinished or not path.exists():
            return
        with open(path, "rb") as f:
            lines = f.readlines()
        keep = [raw for raw in lines if _record_key(raw, self.key) not in unfinished]
        if len(keep) != len(lines):
            tmp = path.with_name(path.name + ".tmp")
            with open(tmp, "wb") as f:
                f.writelines(keep)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)


def _record_key(raw: bytes, key: str) -> str | None:
    try:
        obj = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return obj.get(key) if isinstance(obj, dict) else None

