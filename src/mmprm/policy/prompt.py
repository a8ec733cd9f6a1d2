"""Chat messages for a policy: the problem, its images, and the steps so far.

Shared by every backend so that a local model and a served one see the same
prompt. Messages follow the OpenAI chat format; images are given as
`{"type": "image", "image": REF}` where REF is a path or data URI, and each
backend turns them into what it sends (PIL images, base64 data URIs).
"""

from __future__ import annotations

import string

from mmprm.steps import render_steps
from mmprm.types import Problem

DEFAULT_SYSTEM = (
    "Solve the problem step by step. Put each step in <step></step> and the final "
    "answer in <answer></answer>."
)


def question_text(problem: Problem) -> str:
    """The question, with lettered choices appended for multiple-choice problems."""
    if not problem.choices:
        return problem.question
    letters = string.ascii_uppercase
    options = "\n".join(f"({letters[i]}) {c}" for i, c in enumerate(problem.choices))
    return f"{problem.question}\nChoices:\n{options}"


def build_messages(
    problem: Problem, prefix_steps: list[str] | None = None, *, system: str | None = DEFAULT_SYSTEM
) -> list[dict]:
    """Messages for (problem, prefix). With a prefix, the last message is the
    assistant's partial answer, to be continued (vLLM: `continue_final_message`)."""
    messages: list[dict] = []
    if system:
        messages.append({"role": "system", "content": system})
    content: list[dict] = [{"type": "image", "image": ref} for ref in problem.images]
    content.append({"type": "text", "text": question_text(problem)})
    messages.append({"role": "user", "content": content})
    if prefix_steps:
        messages.append({"role": "assistant", "content": render_steps(prefix_steps)})
    return messages


def flatten_content(content: str | list[dict]) -> str:
    """A message's text alone: what a text-only chat template, which expects a string, is given."""
    return content if isinstance(content, str) else "".join(p.get("text", "") for p in content if p["type"] == "text")
