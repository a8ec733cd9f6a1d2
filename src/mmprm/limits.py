"""Size limits on input records, checked at load.

One record past a limit (a 50 MB question, a 300-megapixel image, a
solution of ten thousand steps) is rejected with the limit named, like any
bad record, instead of exhausting memory or failing the batch it lands in.
The command line sets the limits of the process once (`--max-question-chars`
and the like on every pipeline command); library users call `set_limits`.
"""

from __future__ import annotations

from dataclasses import dataclass

from mmprm.config import setting


@dataclass(frozen=True)
class RecordLimits:
    max_question_chars: int = setting(20_000, "characters of a question")
    max_images: int = setting(16, "images of one problem")
    max_image_bytes: int = setting(20_000_000, "bytes of one image (file or data URI)")
    max_image_pixels: int = setting(40_000_000, "pixels of one image (width x height)")
    max_solution_steps: int = setting(200, "steps of one solution or annotated path")
    max_step_chars: int = setting(8_000, "characters of one step")

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")


_limits = RecordLimits()


def limits() -> RecordLimits:
    return _limits


def set_limits(new: RecordLimits) -> None:
    global _limits
    _limits = new


def over_limit(kind: str, size: int, limit: int, name: str) -> str | None:
    """The rejection reason when `size` exceeds `limit`, naming the flag that raises it."""
    if size <= limit:
        return None
    return f"{kind} is {size:,}, over the limit of {limit:,} (--{name.replace('_', '-')})"
