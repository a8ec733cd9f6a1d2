"""The PRM schemes by name: how each PRM family marks its steps and reads their scores.

A light table (no torch), so the command line and the configs can name the
schemes; `mmprm.prm.formats` renders and encodes each one.
"""

from __future__ import annotations

from dataclasses import dataclass

STEP_SCORE = "<step_score>"


@dataclass(frozen=True)
class Scheme:
    """How one PRM family lays out a solution and where it reads each step's score.

    `tag` is the token placed after every step (None: chat turns mark the
    steps); `positive`/`negative` are the label tokens compared at the step
    positions (None: the model has a two-class head); `shows_images` says
    whether the problem's figures go into the input.
    """

    name: str
    tag: str | None
    positive: str | None
    negative: str | None
    shows_images: bool
    add_special_tokens: bool = False

    @property
    def readout(self) -> str:
        return "class" if self.positive is None else "tokens"

    def new_tokens(self) -> list[str]:
        """Tokens this scheme needs as single tokens in the vocabulary."""
        return [t for t in (self.tag, self.positive, self.negative) if t is not None]


SCHEMES: dict[str, Scheme] = {
    s.name: s
    for s in (
        Scheme("mmprm", STEP_SCORE, "+", "-", shows_images=True),
        Scheme("mm-prm", "<prm>", "Yes", "No", shows_images=True),
        Scheme("math-shepherd", "ки", "+", "-", shows_images=False, add_special_tokens=True),
        Scheme("qwen2.5-math-prm", "<extra_0>", None, None, shows_images=False),
        Scheme("visualprm", None, "+", "-", shows_images=True),
    )
}


def get_scheme(name: str) -> Scheme:
    if name not in SCHEMES:
        raise ValueError(f"unknown PRM scheme {name!r}; choose from {', '.join(SCHEMES)}")
    return SCHEMES[name]


SPEC_HELP = (f"PATH (a PRM trained by mmprm), SCHEME:PATH (a published PRM; SCHEME one of {', '.join(SCHEMES)}), "
             "likelihood:PATH (a policy's own step log-probabilities), http://HOST:PORT (mmprm serve-prm) "
             "or vllm:[SCHEME:]URL#MODEL (a PRM on vLLM's pooling endpoint)")
