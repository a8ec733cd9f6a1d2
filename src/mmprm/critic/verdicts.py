"""Each step's P(correct) from a critic's verdicts.

A critic reviews steps up to the first wrong one, so its verdicts become one score a step
(`per_step`): after the first step judged wrong, that step's value (the solution is broken
there); past the critique's end (cut off), UNREACHED, no information. Where the critic runs
behind a chat API, the verdicts' probabilities come from the logprobs the server returns
(`from_token_logprobs`): vLLM and OpenAI give each generated token with its most likely
alternatives.
"""

from __future__ import annotations

import math

from mmprm.critic.critique import VERDICT_WORDS, verdict_offsets

UNREACHED = 0.5  # P(correct) of a step the critique never reached

TokenLogprobs = list[tuple[str, dict[str, float]]]  # each generated token, and its top alternatives' logprobs


def per_step(verdicts: list[float], n_steps: int) -> list[float]:
    scores: list[float] = []
    for p in verdicts[:n_steps]:
        scores.append(p)
        if p < 0.5:
            return scores + [p] * (n_steps - len(scores))
    return scores + [UNREACHED] * (n_steps - len(scores))


def from_token_logprobs(text: str, tokens: TokenLogprobs, layout: str) -> list[float] | None:
    """P(correct) at each verdict of `text`, from the generated tokens and their alternatives:
    the mass of alternatives that begin the right-step word against those that begin the
    wrong-step word, at the token where the verdict word starts. Where only one side is among
    the alternatives, the other gets what the listed ones leave. None if the tokens do not
    spell the text (the server detokenised otherwise) or a verdict cannot be placed."""
    if "".join(t for t, _ in tokens) != text:
        return None
    starts, at = [], 0
    for t, _ in tokens:
        starts.append(at)
        at += len(t)
    right_word, wrong_word = VERDICT_WORDS[layout]
    found = []
    for offset in verdict_offsets(text, layout):
        i = max(k for k, s in enumerate(starts) if s <= offset)
        lead = text[starts[i] : offset]  # what the token holds before the verdict word
        right = wrong = 0.0
        for alt, logprob in tokens[i][1].items():
            if len(alt) <= len(lead) or not alt.startswith(lead):
                continue
            piece = alt[len(lead) :]
            if right_word.startswith(piece) or piece.startswith(right_word):
                right += math.exp(logprob)
            elif wrong_word.startswith(piece) or piece.startswith(wrong_word):
                wrong += math.exp(logprob)
        if right + wrong == 0:
            return None
        if right == 0 or wrong == 0:  # the unlisted side gets at most what the listed ones leave
            rest = max(0.0, 1.0 - sum(math.exp(v) for v in tokens[i][1].values()))
            right, wrong = (right, rest) if wrong == 0 else (rest, wrong)
        found.append(right / (right + wrong) if right + wrong else 0.5)
    return found
