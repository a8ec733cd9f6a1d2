"""Does the PRM read the figure? Errors that only the image can reveal.

Each corrupted solution reads one bar as another height and carries that
reading consistently through every running sum, so its text is as coherent
as the reference's: only the chart shows the misreading. A PRM trains on the
reference and three such misreadings per problem (labels: 1 before the
misread step, 0 from it on; the generator's truth, so ORACLE labels: this
measures the model, not a label source), from the strong tiny policy, which
learnt to read these charts; then ranks held-out problems' reference against
their misreadings. The control trains and scores the same data with every
image replaced by one blank image: what the text alone supports.

Run by hand:  .venv/bin/python benchmarks/prm_image_use.py [--steps 1000] [--lr 1e-3]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from dataclasses import replace
from pathlib import Path

from PIL import Image

from mmprm.data import load_problems
from mmprm.data.synth import generate_synthetic
from mmprm.data.synth.common import compute, read
from mmprm.io import write_jsonl
from mmprm.prm.load import load_prm
from mmprm.prm.metrics import within_problem_auroc
from mmprm.prm.train import PRMTrainConfig, train_prm
from mmprm.types import AnnotatedPath, Problem

ROOT = Path(__file__).resolve().parents[1]


def misread(problem: Problem, rng: random.Random) -> tuple[list[str], list[float]]:
    """A bartotal solution with one bar read as another height and every running sum
    (and the final constant, if any) recomputed from it: coherent text, wrong reading."""
    ref = problem.meta["reference_steps"]
    reads = [s for s in ref if s["kind"] == "read"]
    names = [s["text"].rsplit(" is ", 1)[0] for s in reads]
    heights = [s["value"] for s in reads]
    wrong = rng.randrange(len(heights))
    heights[wrong] = rng.choice([h for h in range(1, 13) if h != heights[wrong]])
    steps = [read(n, h).text for n, h in zip(names, heights)]
    total = heights[0]
    for h in heights[1:]:
        steps.append(compute(total, "+", h).text)
        total += h
    for s in ref[2 * len(reads) - 1:]:  # the constant added at the end
        constant = int(s["text"].split(" + ")[1].split(" = ")[0])
        steps.append(compute(total, "+", constant).text)
        total += constant
    return steps, [1.0] * wrong + [0.0] * (len(steps) - wrong)


def run(root: Path, blank: bool, steps: int, lr: float, seed: int) -> dict:
    synth = dict(families=["bartotal"], min_steps=3, max_steps=3)
    generate_synthetic(200, 11, root / "train", split="train", **synth)
    generate_synthetic(60, 12, root / "test", split="test", **synth)
    train, test = (load_problems(root / s / "problems.jsonl") for s in ("train", "test"))
    blank_image = root / "train" / "blank.png"
    Image.new("RGB", (112, 112), "white").save(blank_image)
    rng = random.Random(seed)
    paths = []
    for p in train:
        ref = [s["text"] for s in p.meta["reference_steps"]]
        for solution, labels in [(ref, [1.0] * len(ref))] + [misread(p, rng) for _ in range(3)]:
            path = AnnotatedPath.of(p, solution, labels)
            path.images = ["blank.png"] if blank else [str(Path(i).relative_to(root / "train")) for i in p.images]
            paths.append(path)
    write_jsonl(root / "train" / "paths.jsonl", paths)
    cfg = PRMTrainConfig(base=ROOT / "assets" / "tiny-policy-strong", data=root / "train" / "paths.jsonl",
                         labels="mc", lr=lr, batch_size=8, max_steps=steps, seed=seed, log_every=100)
    log = train_prm(cfg, root / "prm")
    prm = load_prm(str(root / "prm"))
    items = []
    for p in test:
        shown = replace(p, images=[str(blank_image)]) if blank else p
        items.append((shown, [[s["text"] for s in p.meta["reference_steps"]]] + [misread(p, rng)[0]
                                                                                 for _ in range(3)]))
    ids, scores, correct = [], [], []
    for (p, _), per in zip(items, prm.score_many(items)):
        for k, s in enumerate(per):
            ids.append(p.id)
            scores.append(s)
            correct.append(k == 0)
    prm.close()
    auroc, problems = within_problem_auroc(ids, scores, correct, how="min")
    return {"within_problem_auroc_min": round(auroc, 3), "problems": problems,
            "final_loss": round(log["losses"][-1]["loss"], 4)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    out = {}
    for name, blank in (("with the figure", False), ("blank image (control)", True)):
        with tempfile.TemporaryDirectory() as tmp:
            out[name] = run(Path(tmp), blank, args.steps, args.lr, args.seed)
        print(json.dumps({name: out[name]}), flush=True)


if __name__ == "__main__":
    main()
