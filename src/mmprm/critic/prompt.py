"""What a critic is asked: its instructions, the problem's figures, the question and the
numbered steps, as chat messages in the policy's format (`{"type": "image", "image": REF}`
parts). A teacher writing training critiques, a trained critic generating one, and the
trainer encoding one all build the prompt here, so a critic is asked at test time exactly
what it was trained on.
"""

from __future__ import annotations

from mmprm.policy.prompt import question_text
from mmprm.types import Problem

PROSE_INSTRUCTIONS = """You are checking a step-by-step solution to a math problem about the figure.
For each step, in order, up to and including the first incorrect one, write:

Step k.
Intent: what the step is trying to do.
Alignment with the figure: whether what it reads or assumes matches the figure.
Logic: whether its reasoning and arithmetic are sound.
Verdict: \\boxed{correct} or \\boxed{incorrect}

Then write "First incorrect step: k" (or "First incorrect step: none" if every step is correct),
and, if there is an incorrect step, "Corrected step: " followed by that step rewritten correctly."""

# Short, for a tiny model: the layout itself is learned from the training critiques.
COMPACT_INSTRUCTIONS = "Check each step up to the first wrong one, then correct it."


def critic_messages(problem: Problem, steps: list[str], layout: str = "prose") -> list[dict]:
    instructions = PROSE_INSTRUCTIONS if layout == "prose" else COMPACT_INSTRUCTIONS
    solution = "\n".join(f"Step {k}: {s}" for k, s in enumerate(steps, 1))
    parts: list[dict] = [{"type": "image", "image": ref} for ref in problem.images]
    parts.append({"type": "text", "text": f"Problem: {question_text(problem)}\n\nSolution:\n{solution}"})
    return [{"role": "system", "content": instructions}, {"role": "user", "content": parts}]
