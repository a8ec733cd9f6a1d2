"""Build a PRM from a command-line spec. Only the CLI (and scripts) call this;
search and evaluation receive the PRM it returns.

Specs:
- `PATH`: a PRM folder written by `mmprm train` (it holds prm_config.json);
- `SCHEME:PATH`: a published PRM read through its scheme's adapter, e.g.
  `math-shepherd:/models/math-shepherd-mistral-7b-prm`,
  `qwen2.5-math-prm:/models/Qwen2.5-Math-PRM-7B`, `mm-prm:PATH`, `visualprm:PATH`;
- `likelihood:PATH`: the untrained likelihood baseline of a causal LM or VLM;
- `http://HOST:PORT`: a PRM served by `mmprm serve-prm` (key: $MMPRM_PRM_API_KEY);
- `vllm:[SCHEME:]URL#MODEL`: a published PRM on a vLLM server's pooling endpoint;
- `critic:PATH` (a critic from `mmprm critic train`) or `critic:CRITIC_SPEC` (e.g.
  `critic:oracle`, `critic:chat:URL#MODEL`): a generative critic's P(correct) per step.
Checkpoints that ship their own model code load only with `trust_remote_code=True`.
"""

from __future__ import annotations

from pathlib import Path

from mmprm.backbone import load_backbone, tokenizer_of
from mmprm.prm.base import PRM
from mmprm.prm.formats import tag_id
from mmprm.prm.model import PRMModel, is_prm_folder, label_ids
from mmprm.prm.schemes import SCHEMES, SPEC_HELP, get_scheme


def load_prm(spec: str, *, trust_remote_code: bool = False, batch_size: int = 16, device: str | None = None) -> PRM:
    if spec.startswith(("http://", "https://")):
        from mmprm.serve.prm_client import RemotePRM

        return RemotePRM(spec)
    kind, sep, rest = spec.partition(":")
    if sep and kind == "vllm":
        from mmprm.serve.vllm_prm import VLLMPoolingPRM

        return VLLMPoolingPRM.from_spec(rest)
    if sep and kind == "critic":
        from mmprm.critic.prm import CriticPRM

        return CriticPRM.from_spec(rest, device=device)
    if sep and kind == "likelihood":
        from mmprm.prm.likelihood import LikelihoodPRM

        return LikelihoodPRM.from_path(_existing(rest, spec), trust_remote_code=trust_remote_code,
                                       batch_size=batch_size, device=device)
    if sep and kind in SCHEMES:
        return load_published(kind, _existing(rest, spec), trust_remote_code=trust_remote_code,
                              batch_size=batch_size, device=device)
    from mmprm.prm.score import StepPRM

    if is_prm_folder(spec):
        return StepPRM.from_pretrained(spec, trust_remote_code=trust_remote_code, batch_size=batch_size, device=device)
    if Path(spec).is_dir():
        raise ValueError(f"{spec} is a model folder but not an mmprm PRM; for a published PRM name its scheme "
                         f"(e.g. math-shepherd:{spec}), for a policy's likelihood use likelihood:{spec}")
    raise ValueError(f"PRM spec {spec!r} is not {SPEC_HELP}")


def load_published(scheme_name: str, path: str | Path, *, trust_remote_code: bool = False, **options) -> PRM:
    """A published PRM, scored with its own layout: its tag token and label tokens (or its
    two-class head) must already be in its vocabulary; nothing is added."""
    from mmprm.prm.score import StepPRM

    scheme = get_scheme(scheme_name)
    kind = "class" if scheme.readout == "class" else "auto"
    backbone, processor = load_backbone(path, trust_remote_code=trust_remote_code, kind=kind)
    tok = tokenizer_of(processor)
    if scheme.tag is not None and tok.convert_ids_to_tokens(tag_id(tok, scheme.tag)).lstrip("▁Ġ") != scheme.tag:
        raise ValueError(f"{path}: its vocabulary lacks the {scheme.name} step tag {scheme.tag!r}; "
                         f"is this a {scheme.name} checkpoint?")
    model = PRMModel(backbone, "class") if kind == "class" else PRMModel(backbone, "tokens", label_ids(tok, scheme))
    return StepPRM(model, processor, scheme, name=f"{scheme.name}:{path}", **options)


def _existing(path: str, spec: str) -> str:
    if not Path(path).exists():
        raise FileNotFoundError(f"{path} (from PRM spec {spec!r}) does not exist; models load from local folders")
    return path
