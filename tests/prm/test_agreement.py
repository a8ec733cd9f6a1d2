"""Masking the labels a judge disagrees with (mmprm.labels.agreement): with the committed
strong tiny policy as the judge, the labels it masks are mostly the ones made wrong."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
from synthetic import candidates

from mmprm.data import load_problems
from mmprm.data.synth import generate_synthetic
from mmprm.labels import LabelledPath
from mmprm.labels.agreement import mask_disagreements
from mmprm.prm.config import PRMTrainConfig
from mmprm.prm.likelihood import LikelihoodPRM
from mmprm.prm.train import train_prm
from mmprm.types import AnnotatedPath

STRONG = Path(__file__).resolve().parents[2] / "assets" / "tiny-policy-strong"
pytestmark = pytest.mark.skipif(not STRONG.is_dir(), reason="committed tiny policies missing")


@pytest.fixture(scope="module")
def noisy(tmp_path_factory):
    """Reference and corrupted solutions of 40 problems with their true step labels, and the
    same with one label in ten flipped: (true, noisy, flipped cells)."""
    folder = tmp_path_factory.mktemp("agreement")
    problems = load_problems(generate_synthetic(40, 5, folder, split="test", families=["bartotal"],
                                                min_steps=3, max_steps=3))
    rng = random.Random(0)
    true, noisy, flipped = [], [], set()
    for p in problems:
        for steps, labels in candidates(p, 2, rng):
            targets = [float(v) for v in labels]
            true.append(LabelledPath(p, steps, targets))
            flips = [rng.random() < 0.1 for _ in targets]
            flipped |= {(len(noisy), k) for k, f in enumerate(flips) if f}
            noisy.append(LabelledPath(p, steps, [1.0 - t if f else t for t, f in zip(targets, flips)]))
    return true, noisy, flipped


@pytest.fixture(scope="module")
def judge():
    prm = LikelihoodPRM.from_path(STRONG, batch_size=16)
    yield prm
    prm.close()


def test_the_masked_labels_are_mostly_the_flipped_ones(noisy, judge):
    true, paths, flipped = noisy
    labelled = sum(len(p.targets) for p in paths)
    kept, agreement = mask_disagreements(paths, judge, 0.1)
    assert agreement.labelled == labelled and agreement.masked == round(0.1 * labelled)
    assert agreement.scale > 0  # a likelier step is likelier right
    masked = {(i, k) for i, p in enumerate(paths) for k, t in enumerate(p.targets)} - {
        (i, k) for i, p in enumerate(kept) for k, t in enumerate(p.targets) if t is not None}
    assert len(kept) == len(paths)  # three steps each: no path lost every label here
    hits = len(masked & flipped)
    print(f"{len(flipped)} flipped of {labelled}; masked {len(masked)}, of them flipped {hits}")
    assert hits / len(masked) > 0.6  # chance: 0.1
    for i, (before, after) in enumerate(zip(paths, kept)):  # what stays is untouched, and the input too
        assert [t for k, t in enumerate(after.targets) if (i, k) not in masked] == \
            [t for k, t in enumerate(before.targets) if (i, k) not in masked]
        assert None not in before.targets


def test_bad_shares_are_refused(noisy, judge):
    with pytest.raises(ValueError, match="share"):
        mask_disagreements(noisy[1], judge, 0.0)
    with pytest.raises(ValueError, match="label_filter_share"):
        PRMTrainConfig(label_filter_share=1.0)


def _copied(image: str, folder: Path) -> str:
    (folder / "images").mkdir(exist_ok=True)
    shutil.copy(image, folder / "images")
    return f"images/{Path(image).name}"


def test_training_with_the_filter_records_it(noisy, tmp_path):
    """`label_filter` in a training run: the saved PRM names its labels with the filter."""
    _, paths, _ = noisy
    data = tmp_path / "paths.jsonl"
    data.write_text("".join(json.dumps(AnnotatedPath(f"{p.problem.id}-{i}", p.problem.question, p.steps, [1.0] * 3,
                                                     answer=p.problem.answer,
                                                     images=[_copied(i, tmp_path) for i in p.problem.images],
                                                     meta={"mc_counts": [[1, 1]] * 4}).to_dict()) + "\n"
                            for i, p in enumerate(paths[:12])))
    cfg = PRMTrainConfig(base=str(STRONG), data=str(data), labels="mc", label_filter=str(STRONG),
                         label_filter_share=0.25, max_steps=2, batch_size=4)
    train_prm(cfg, tmp_path / "prm")
    saved = json.loads((tmp_path / "prm" / "prm_config.json").read_text())
    assert saved["label_source"] == "mc, 0.25 masked by likelihood agreement" and saved["oracle_labels"] is False
