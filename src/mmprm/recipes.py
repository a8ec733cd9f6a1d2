"""Recipes: YAML files of settings that override a config dataclass's defaults.

Order of precedence: the dataclass defaults (the papers'), then the recipe's
section, then explicit overrides (a CLI flag left unset is None and does not
override). Unknown keys are an error naming the file, not silently ignored.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import TypeVar

import yaml

C = TypeVar("C")


def from_recipe(cls: type[C], path: str | Path | None, section: str, **overrides) -> C:
    values: dict = {}
    if path is not None:
        loaded = yaml.safe_load(Path(path).read_text()) or {}
        settings = loaded.get(section, loaded)
        unknown = set(settings) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"{path}: unknown {section} settings {sorted(unknown)}")
        values.update(settings)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return cls(**values)
