"""Serving test fixtures: a few synthetic problems and a tiny PRM saved as a folder.
Helpers shared by the serving tests live in serving.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from mmprm.data import load_problems
from mmprm.data.synth import generate_synthetic
from mmprm.policy.tiny.model import new_tiny_policy
from mmprm.prm.model import build_prm, save_prm
from mmprm.prm.schemes import get_scheme

sys.path.insert(0, str(Path(__file__).parent))  # serving.py

pytest.importorskip("uvicorn")
pytest.importorskip("fastapi")


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("serve-data")
    generate_synthetic(12, 5, d, split="test")
    return d


@pytest.fixture(scope="session")
def problems(data_dir):
    return load_problems(data_dir / "problems.jsonl")


@pytest.fixture(scope="session")
def prm_dir(tmp_path_factory, problems):
    """A tiny mmprm-scheme PRM with a random readout (so scores spread), saved as a folder."""
    model, processor = new_tiny_policy([p.question for p in problems], seed=3)
    prm = build_prm(model, processor, get_scheme("mmprm"), "token")
    emb = prm.backbone.get_input_embeddings().weight
    with torch.no_grad():
        emb.add_(0.5 * torch.randn(emb.shape, generator=torch.Generator().manual_seed(0)))
    return save_prm(prm, processor, get_scheme("mmprm"), tmp_path_factory.mktemp("served-prm") / "prm")
