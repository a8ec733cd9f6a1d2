"""Configuration first: settings live in dataclasses; recipes and flags only override them.

A config field declared with `setting(default, help)` carries its help in
the field's metadata, so the command line derives its flags from the
dataclass (`add_flags`), as TRL's parser does, and the help shows the
dataclass's own default: no default is written twice.

Order of precedence: the dataclass defaults (the papers'), then the recipe's
section (a YAML file), then explicit overrides (a flag left unset is None and
does not override). Unknown recipe keys are an error naming the file.
"""

from __future__ import annotations

import argparse
import types
import typing
from dataclasses import MISSING, field, fields
from pathlib import Path
from typing import Any, TypeVar

import yaml

C = TypeVar("C")


def setting(default: Any = MISSING, help: str = "", *, factory: Any = MISSING, choices: tuple | None = None,
            aliases: tuple[str, ...] = (), flag: bool = True) -> Any:
    """A config field with its help; `flag=False` keeps it off the command line."""
    meta = {"help": help, "choices": choices, "aliases": aliases, "flag": flag}
    if factory is not MISSING:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def from_recipe(cls: type[C], path: str | Path | None, section: str, **overrides) -> C:
    values: dict = {}
    if path is not None:
        loaded = yaml.safe_load(Path(path).read_text()) or {}
        if section in loaded:
            settings = loaded[section] or {}
        elif any(isinstance(v, dict) for v in loaded.values()):
            settings = {}  # a recipe of sections, none of them this one
        else:
            settings = loaded  # a flat recipe of one section's settings
        unknown = set(settings) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"{path}: unknown {section} settings {sorted(unknown)}")
        values.update(settings)
    values.update({k: v for k, v in overrides.items() if v is not None})
    missing = [f.name for f in fields(cls) if f.name not in values and f.default is MISSING
               and f.default_factory is MISSING]
    if missing:
        raise ValueError(f"missing {section} settings: {', '.join(missing)} (give them as flags or in a recipe)")
    return cls(**values)


def add_flags(parser: argparse.ArgumentParser, cls: type, *, skip: tuple[str, ...] = ()) -> None:
    """One `--field-name` flag per config field, typed from the annotation, help from the metadata."""
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        if f.name in skip or not f.metadata.get("flag", True):
            continue
        kind, is_list = _flag_type(hints[f.name])
        if kind is None:
            continue
        names = [f"--{f.name.replace('_', '-')}", *f.metadata.get("aliases", ())]
        help_text = f.metadata.get("help", "")
        if f.default is MISSING and f.default_factory is MISSING:
            help_text += " (required, here or in the recipe)"
        elif f.default is not None:
            default = f.default if f.default is not MISSING else f.default_factory()
            help_text += f" (default: {_shown(default)})"
        options: dict = {"dest": f.name, "default": None, "help": help_text.replace("%", "%%")}
        if kind is bool:
            options["action"] = argparse.BooleanOptionalAction
        elif is_list:
            options["type"] = _comma_list(kind)
            options["metavar"] = "A,B,..."
        else:
            options["type"] = kind
            if f.metadata.get("choices"):
                options["choices"] = f.metadata["choices"]
        parser.add_argument(*names, **options)


def config_from_args(cls: type[C], args: argparse.Namespace, section: str, **extra) -> C:
    """The config a command runs with: defaults, then `--recipe`, then the flags given, then `extra`."""
    flags = {f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)}
    return from_recipe(cls, getattr(args, "recipe", None), section, **{**flags, **extra})


def _flag_type(hint: Any) -> tuple[type | None, bool]:
    """(element type, is a list) of a field, None for types a flag cannot carry (dicts)."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _flag_type(inner[0]) if len(inner) == 1 else (None, False)
    if typing.get_origin(hint) is list and args and args[0] in (int, float, str):
        return args[0], True
    return (hint, False) if hint in (int, float, str, bool) else (None, False)


def _comma_list(kind: type):
    def parse(text: str) -> list:
        return [kind(x) for x in text.split(",") if x.strip()]
    return parse


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value)) or "none"
    return str(value)
