"""One input layout per PRM scheme, shared by training and scoring.

`encode(scheme, processor, problem, steps)` is the only place where a
(problem, steps) pair becomes token ids and the positions whose outputs
score each step; `collate` is the only place where encoded rows become a
batch. Training and scoring both call them, so a PRM can never be trained on
one layout and scored on another (the reference trained MM-PRM with
`<prm>\\n\\n` between steps and scored it with `<prm>` alone).

Schemes:
- `mmprm`: the policy's own chat prompt, then `<step>s</step><step_score>\\n`
  per step; score = P(+) of the softmax over [+, -] at `<step_score>`.
- `mm-prm`: `Question: q\\nProcess: s1<prm>\\n\\ns2<prm>` in the user turn; Yes/No.
- `math-shepherd`: `q Step 1: s1 ки\\nStep 2: s2 ки\\n`, plain text; +/-.
- `qwen2.5-math-prm`: system, question, then `s1<extra_0>s2<extra_0>` as
  the assistant turn; a two-class head, score = P(class 1).
- `visualprm`: each step a user turn answered `+` by the assistant; the score
  is P(+) read where the assistant's answer is predicted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from mmprm.backbone import is_multimodal, tokenizer_of
from mmprm.io import load_image
from mmprm.policy.prompt import build_messages, flatten_content, question_text
from mmprm.prm.schemes import Scheme, get_scheme
from mmprm.steps import STEP_CLOSE, STEP_OPEN
from mmprm.types import Problem

QWEN_PRM_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."


@dataclass
class Encoded:
    """One row: token ids, the index of the token whose output scores each step, image refs."""

    input_ids: list[int]
    positions: list[int]
    images: list[str] = field(default_factory=list)


def encode(scheme: Scheme, processor, problem: Problem, steps: list[str],
           image_cache: dict | None = None) -> Encoded:
    """Token ids of (problem, steps) in `scheme`'s layout and the step-score positions."""
    images = list(problem.images) if scheme.shows_images else []
    if images and not is_multimodal(processor):
        raise ValueError(f"problem {problem.id!r} has {len(images)} image(s) but the PRM backbone is text-only; "
                         f"use an image-text-to-text backbone or a text scheme (math-shepherd, qwen2.5-math-prm)")
    steps = without_tag(scheme, steps)
    text = _RENDER[scheme.name](scheme, processor, problem, steps, images)
    ids = tokenizer_of(processor)(text, add_special_tokens=scheme.add_special_tokens)["input_ids"]
    if images:
        ids = expand_images(processor, text, ids, images, scheme.add_special_tokens, image_cache)
    positions = _locate(scheme, processor, ids)
    if len(positions) != len(steps):
        marker = scheme.tag or "the chat header"
        raise ValueError(f"scheme {scheme.name}: found {len(positions)} step positions for {len(steps)} steps "
                         f"of problem {problem.id!r}; the tokenizer must keep {marker!r} whole")
    return Encoded(ids, positions, images)


def expand_images(processor, text: str, ids: list[int], images: list[str], special: bool, cache: dict | None
                 ) -> list[int]:
    """`ids` with each image placeholder expanded as the processor expands it. The expansion
    of an image depends on the image alone, so it is computed once per image (per cache)
    instead of once per candidate; processors without a single placeholder token run whole."""
    cache = {} if cache is None else cache
    token = getattr(processor, "image_token", None)
    token_id = tokenizer_of(processor).convert_tokens_to_ids(token) if token else None
    if token_id is None or ids.count(token_id) != len(images):
        pics = [load_image(ref, cache) for ref in images]
        return [int(i) for i in processor(text=[text], images=pics, add_special_tokens=special)["input_ids"][0]]
    out, k = [], 0
    for t in ids:
        if t != token_id:
            out.append(t)
            continue
        key = ("image tokens", images[k])
        if key not in cache:
            pic = load_image(images[k], cache)
            expanded = processor(text=[token], images=[pic], add_special_tokens=False)["input_ids"][0]
            cache[key] = [int(i) for i in expanded]
        out += cache[key]
        k += 1
    return out


def collate(rows: list[Encoded], processor, *, padding_side: str = "right",
            pixel_cache: dict | None = None) -> dict:
    """Pad rows into a batch. `step_rows`/`step_cols` index the step positions,
    in row order then step order, so a flat score tensor splits back by row."""
    if padding_side not in ("left", "right"):
        raise ValueError(f"padding_side must be left or right, got {padding_side!r}")
    tok = tokenizer_of(processor)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    width = max(len(r.input_ids) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    step_rows, step_cols = [], []
    for i, r in enumerate(rows):
        off = width - len(r.input_ids) if padding_side == "left" else 0
        ids[i, off : off + len(r.input_ids)] = torch.tensor(r.input_ids)
        mask[i, off : off + len(r.input_ids)] = 1
        step_rows += [i] * len(r.positions)
        step_cols += [off + p for p in r.positions]
    batch = {"input_ids": ids, "attention_mask": mask,
             "step_rows": torch.tensor(step_rows, dtype=torch.long),
             "step_cols": torch.tensor(step_cols, dtype=torch.long)}
    refs = [ref for r in rows for ref in r.images]
    if refs:
        batch.update(pixels(refs, processor, pixel_cache))
        image_token = getattr(processor, "image_token_id", None)
        if "image_grid_thw" in batch and image_token is not None:
            batch["mm_token_type_ids"] = (ids == image_token).long()
    return batch


def pixels(refs: list[str], processor, cache: dict | None = None) -> dict:
    """The image processor's tensors for `refs`, in order, each image processed once per cache."""
    parts = []
    for ref in refs:
        if cache is not None and ref in cache:
            parts.append(cache[ref])
            continue
        out = processor.image_processor(images=[load_image(ref)], return_tensors="pt")
        out = {k: v for k, v in out.items() if isinstance(v, torch.Tensor)}
        if cache is not None:
            cache[ref] = out
        parts.append(out)
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


# ---- rendering, one function per scheme -----------------------------------------

def _chat(processor, messages: list[dict], *, generation_prompt: bool) -> str:
    if not is_multimodal(processor):  # text chat templates expect string content
        messages = [{**m, "content": flatten_content(m["content"])} for m in messages]
    return processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)


def _user(images: list[str], text: str) -> dict:
    parts = [{"type": "image", "image": r} for r in images]
    return {"role": "user", "content": [*parts, {"type": "text", "text": text}]}


def _render_mmprm(scheme, processor, problem, steps, images) -> str:
    prompt = _chat(processor, build_messages(problem), generation_prompt=True)
    return prompt + "".join(f"{STEP_OPEN}{s}{STEP_CLOSE}{scheme.tag}\n" for s in steps)


def mm_prm_text(problem: Problem, steps: list[str]) -> str:
    """MM-PRM's user turn: the question, then the steps each closed by `<prm>`
    (also what `mmprm export --format internvl` writes for MM-PRM's trainer)."""
    tag = get_scheme("mm-prm").tag
    process = "\n\n".join(s + tag for s in steps)
    return f"Question: {question_text(problem)}\nProcess: {process}"


def _render_mm_prm(scheme, processor, problem, steps, images) -> str:
    return _chat(processor, [_user(images, mm_prm_text(problem, steps))], generation_prompt=False)


def math_shepherd_text(problem: Problem, steps: list[str]) -> str:
    """Math-Shepherd's plain-text input (also what `vllm:math-shepherd:` sends to vLLM)."""
    tag = get_scheme("math-shepherd").tag
    body = "".join(f"Step {k}: {s} {tag}\n" for k, s in enumerate(steps, start=1))
    return f"{question_text(problem)} {body}"


def qwen_prm_messages(problem: Problem, steps: list[str]) -> list[dict]:
    """Qwen2.5-Math-PRM's chat, the steps in the assistant turn each closed by `<extra_0>`
    (also what `vllm:` sends to vLLM, whose server applies the same chat template)."""
    tag = get_scheme("qwen2.5-math-prm").tag
    return [{"role": "system", "content": QWEN_PRM_SYSTEM},
            {"role": "user", "content": question_text(problem)},
            {"role": "assistant", "content": "".join(s + tag for s in steps)}]


def without_tag(scheme: Scheme, steps: list[str]) -> list[str]:
    """Steps with the scheme's tag removed: a step that contained it would add a position."""
    return steps if scheme.tag is None else [s.replace(scheme.tag, "") for s in steps]


def _render_math_shepherd(scheme, processor, problem, steps, images) -> str:
    return math_shepherd_text(problem, steps)


def _render_qwen_prm(scheme, processor, problem, steps, images) -> str:
    return _chat(processor, qwen_prm_messages(problem, steps), generation_prompt=False)


def _render_visualprm(scheme, processor, problem, steps, images) -> str:
    messages: list[dict] = []
    for k, s in enumerate(steps):
        messages.append(_user(images, f"{question_text(problem)}\n\n{s}") if k == 0
                        else {"role": "user", "content": [{"type": "text", "text": s}]})
        messages.append({"role": "assistant", "content": [{"type": "text", "text": scheme.positive}]})
    if not steps:
        messages.append(_user(images, question_text(problem)))
    return _chat(processor, messages, generation_prompt=False)


_RENDER = {"mmprm": _render_mmprm, "mm-prm": _render_mm_prm, "math-shepherd": _render_math_shepherd,
           "qwen2.5-math-prm": _render_qwen_prm, "visualprm": _render_visualprm}


def _locate(scheme: Scheme, processor, ids: list[int]) -> list[int]:
    if scheme.tag is not None:
        tag = tag_id(tokenizer_of(processor), scheme.tag)
        return [i for i, t in enumerate(ids) if t == tag]
    header = _assistant_header(processor)  # visualprm: the token that predicts each answer
    n = len(header)
    return [i + n - 1 for i in range(len(ids) - n + 1) if ids[i : i + n] == header]


def tag_id(tokenizer, tag: str) -> int:
    """The id the tag gets in context: its last token when encoded alone (as Math-Shepherd's
    reference finds `ки`, which a SentencePiece vocabulary may split off a leading space)."""
    return tokenizer(tag, add_special_tokens=False)["input_ids"][-1]


def _assistant_header(processor) -> list[int]:
    """Tokens the chat template puts before an assistant answer (its generation prompt)."""
    turn = [{"role": "user", "content": [{"type": "text", "text": "x"}]}]
    with_prompt = _chat(processor, turn, generation_prompt=True)
    without = _chat(processor, turn, generation_prompt=False)
    header = with_prompt[len(without):]
    if not with_prompt.startswith(without) or not header:
        raise ValueError("the chat template has no generation prompt to mark assistant turns (visualprm)")
    return tokenizer_of(processor)(header, add_special_tokens=False)["input_ids"]
