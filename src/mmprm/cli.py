"""The `mmprm` command line: parse arguments, call one library function each.

Every command is a Python function a user can call with the same arguments;
nothing here holds logic beyond building the objects those functions receive.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mmprm.config import add_flags, config_from_args
from mmprm.critic.base import SPEC_HELP as CRITIC_SPEC
from mmprm.labels import LABEL_SOURCES
from mmprm.limits import RecordLimits, set_limits
from mmprm.policy.load import SPEC_HELP as POLICY_SPEC
from mmprm.prm.schemes import SPEC_HELP as PRM_SPEC


def _grader(args: argparse.Namespace):
    from mmprm.grading import load_grader

    return load_grader(args.judge, hybrid=args.hybrid, timeout=args.timeout)


def _add_grader_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--timeout", type=float, default=5.0, help="seconds per answer (default: %(default)s)")
    p.add_argument("--judge", help="an LLM judge at an OpenAI-compatible endpoint: URL#MODEL")
    p.add_argument("--hybrid", action="store_true",
                   help="with --judge: rules first, the judge only where rules cannot parse")


def cmd_data_convert(args: argparse.Namespace) -> int:
    from mmprm.data import convert

    summary = convert(args.source, args.input, args.out)
    print(summary, file=sys.stderr)
    return 0


def cmd_grade(args: argparse.Namespace) -> int:
    grader = _grader(args)
    if args.file:
        from mmprm.grading.batch import grade_file

        counts = grade_file(args.file, grader, out=args.out, workers=args.workers)
        print(json.dumps(counts), file=sys.stderr)
        return 0
    if args.gold is None or args.pred is None:
        raise SystemExit("give --gold and --pred, or --file")
    choices = json.loads(args.choices) if args.choices else None
    print(json.dumps(grader.grade(args.gold, args.pred, choices).to_dict(), ensure_ascii=False))
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from mmprm.data.synth import generate_synthetic

    families = args.families.split(",") if args.families else None
    path = generate_synthetic(args.n, args.seed, args.out, split=args.split, min_steps=args.min_steps,
                              max_steps=args.max_steps, families=families, image_size=args.image_size)
    print(f"wrote {args.n} {args.split} problems to {path}", file=sys.stderr)
    return 0


def cmd_policy_train(args: argparse.Namespace) -> int:
    from mmprm.policy.config import TrainConfig
    from mmprm.policy.train import train_policy

    result = train_policy(config_from_args(TrainConfig, args, "policy"), args.out)
    print(json.dumps({k: v for k, v in result.items() if k not in ("losses", "config")}, indent=2), file=sys.stderr)
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from mmprm.generate import GenerateConfig, generate_file

    summary = generate_file(args.policy, args.data, args.out, config_from_args(GenerateConfig, args, "generate"),
                            grader=_grader(args))
    print(summary, file=sys.stderr)
    return 0


def cmd_annotate(args: argparse.Namespace) -> int:
    from mmprm.annotate.config import AnnotateConfig
    from mmprm.annotate.runner import annotate_file

    stats = annotate_file(args.policy, args.data, args.out, config_from_args(AnnotateConfig, args, "annotate"),
                          grader=_grader(args), inflight=args.inflight, shard=_shard(args.shard), ray=args.ray,
                          shards=args.shards)
    print(json.dumps(stats, indent=2), file=sys.stderr)
    print(f"paths in {Path(args.out) / 'paths.jsonl'}, trees in {Path(args.out) / 'trees'}", file=sys.stderr)
    return 0


def _shard(text: str | None) -> tuple[int, int]:
    if not text:
        return 0, 1
    i, _, n = text.partition("/")
    if not (i.isdigit() and n.isdigit()):
        raise ValueError(f"--shard must be i/n (e.g. 0/4), got {text!r}")
    return int(i), int(n)


def cmd_export(args: argparse.Namespace) -> int:
    from mmprm.prm.export import export_paths

    n = export_paths(args.paths, args.out, args.format, balance=args.balance, seed=args.seed, labels=args.labels)
    print(f"wrote {n} {args.format} records to {args.out}", file=sys.stderr)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from mmprm.evaluate.report import EvaluateConfig, evaluate_file

    report = evaluate_file(args.scored, args.out, config_from_args(EvaluateConfig, args, "evaluate"), _grader(args))
    print((Path(args.out) / "report.md").read_text(), file=sys.stderr)
    print(f"report in {args.out}/report.json, report.md, accuracy.png "
          f"({report['counts']['rejected']} lines rejected)", file=sys.stderr)
    return 0


def cmd_evaluate_steps(args: argparse.Namespace) -> int:
    from mmprm.evaluate.steps import evaluate_steps_file

    report = evaluate_steps_file(args.prm, args.data, out=args.out, threshold=args.threshold, seed=args.seed)
    print(json.dumps(report, indent=2))
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from mmprm.search.runner import search_file
    from mmprm.search.tree_search import SearchConfig

    report = search_file(args.policy, args.prm, args.data, args.out, config_from_args(SearchConfig, args, "search"),
                         grader=_grader(args), limit=args.limit, critic=args.critic)
    print(json.dumps(report, indent=2), file=sys.stderr)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from mmprm.prm.config import PRMTrainConfig
    from mmprm.prm.train import train_prm

    log = train_prm(config_from_args(PRMTrainConfig, args, "train"), args.out)
    print(json.dumps(log, indent=2, default=str), file=sys.stderr)
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from mmprm.prm.config import ScoreConfig
    from mmprm.prm.score import score_with

    print(score_with(args.prm, args.data, args.samples, args.out, config_from_args(ScoreConfig, args, "score"),
                     trust_remote_code=args.trust_remote_code), file=sys.stderr)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from mmprm.demo.config import demo_config
    from mmprm.demo.pipeline import run_demo

    variant = "quick" if args.quick else "full" if args.full else "default"
    run_demo(demo_config(variant, critic=args.critic or None), args.out or f"runs/demo-{variant}")
    return 0


def cmd_serve_policy(args: argparse.Namespace) -> int:
    from mmprm.serve.openai_server import serve

    serve(args.policy, host=args.host, port=args.port)
    return 0


def cmd_critic_build_data(args: argparse.Namespace) -> int:
    from mmprm.critic.data import build_critic_data
    from mmprm.critic.teacher import load_teacher

    layout = "prose" if args.teacher.startswith("chat:") else args.layout
    summary = build_critic_data(args.paths, args.out, load_teacher(args.teacher, layout), layout=layout,
                                min_rollouts=args.min_rollouts, filtered=not args.no_filter,
                                answer_negatives=args.answer_negatives)
    print(json.dumps(summary), file=sys.stderr)
    return 0


def cmd_critic_train(args: argparse.Namespace) -> int:
    from mmprm.critic.config import CriticTrainConfig
    from mmprm.critic.train import train_critic

    log = train_critic(config_from_args(CriticTrainConfig, args, "critic"), args.out)
    print(json.dumps({k: v for k, v in log.items() if k not in ("losses", "config")}, indent=2), file=sys.stderr)
    return 0


def cmd_serve_prm(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from mmprm.serve.prm_server import PRMServeConfig, serve_prm

    cfg = config_from_args(PRMServeConfig, args, "serve_prm")
    print("serve-prm config: " + json.dumps(asdict(cfg)), file=sys.stderr)
    serve_prm(args.prm, host=args.host, port=args.port, cfg=cfg, api_key=args.api_key, model_name=args.served_name)
    return 0


def _stage(sub, name: str, help: str, func, config: type, *, inputs: dict[str, str], section: str | None = None,
           grades: bool = True, example: str = "") -> argparse.ArgumentParser:
    """A pipeline command: its required paths, `--recipe`, one flag per setting of `config`, the grader flags."""
    p = sub.add_parser(name, help=help)
    for flag, text in inputs.items():
        p.add_argument(flag, required=True, help=text)
    p.add_argument("--recipe", help=f"YAML of settings (its `{section or name}:` section); flags override it"
                   + (f"; {example}" if example else ""))
    add_flags(p, config)
    add_flags(p.add_argument_group("input limits (a record past one is rejected, named)"), RecordLimits)
    if grades:
        _add_grader_flags(p)
    p.set_defaults(func=func)
    return p


def build_parser() -> argparse.ArgumentParser:
    from mmprm.annotate.config import AnnotateConfig
    from mmprm.critic.config import CriticTrainConfig
    from mmprm.data.adapters import ADAPTERS
    from mmprm.evaluate.report import EvaluateConfig
    from mmprm.generate import GenerateConfig
    from mmprm.policy.config import TrainConfig
    from mmprm.prm.config import PRMTrainConfig, ScoreConfig
    from mmprm.search.tree_search import SearchConfig

    parser = argparse.ArgumentParser(prog="mmprm", description="Process reward models for multimodal math.")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="dataset files").add_subparsers(dest="data_command", required=True)
    p = data.add_parser("convert", help="convert a benchmark's own file to mmprm JSONL")
    p.add_argument("--from", dest="source", required=True, choices=sorted(ADAPTERS))
    p.add_argument("input", help="the benchmark's JSON or JSONL file (images relative to it)")
    p.add_argument("--out", required=True, help="output JSONL; images go to <out>_images/")
    p.set_defaults(func=cmd_data_convert)

    p = sub.add_parser("grade", help="is a predicted answer equal to the reference?")
    p.add_argument("--gold")
    p.add_argument("--pred")
    p.add_argument("--choices", help="JSON list of option texts, for multiple choice")
    p.add_argument("--file", help="JSONL with gold, pred (and optional choices) per line")
    p.add_argument("--out", help="with --file: where to write results (default stdout)")
    p.add_argument("--workers", type=int, default=2)
    _add_grader_flags(p)
    p.set_defaults(func=cmd_grade)

    p = sub.add_parser("synth", help="generate synthetic multimodal math problems")
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p.add_argument("--split", choices=["train", "test"], default="train")
    p.add_argument("--min-steps", type=int, default=2)
    p.add_argument("--max-steps", type=int, default=8)
    p.add_argument("--families", help="comma-separated subset of families")
    p.add_argument("--image-size", type=int, default=112)
    p.set_defaults(func=cmd_synth)

    policy = sub.add_parser("policy", help="the tiny policy").add_subparsers(dest="policy_command", required=True)
    _stage(policy, "train", "train the tiny VLM policy on reference solutions", cmd_policy_train, TrainConfig,
           inputs={"--out": "the policy folder"}, section="policy", grades=False)

    _stage(sub, "generate", "sample N graded solutions per problem", cmd_generate, GenerateConfig,
           inputs={"--policy": POLICY_SPEC, "--data": "problems.jsonl",
                   "--out": "samples.jsonl (appended; reruns skip done problems)"})

    p = _stage(sub, "annotate", "label every step: OmegaPRM tree search or per-step MC", cmd_annotate,
               AnnotateConfig, inputs={"--policy": POLICY_SPEC, "--data": "problems.jsonl",
                                       "--out": "output folder (rerunning resumes)"},
               example="e.g. recipes/mmprm-annotate.yaml")
    p.add_argument("--inflight", type=int, default=16, help="problems in flight at once (default: %(default)s)")
    p.add_argument("--shard", help="i/n: annotate only every n-th problem from the i-th")
    p.add_argument("--ray", help="run shards as Ray tasks: auto, a cluster ADDRESS, or local")
    p.add_argument("--shards", type=int, default=2, help="with --ray: number of shards (default: %(default)s)")

    p = sub.add_parser("export", help="write annotated paths in a trainer's format")
    p.add_argument("--paths", required=True, help="paths.jsonl from annotate")
    p.add_argument("--format", required=True, choices=["annotated", "stepwise", "internvl"])
    p.add_argument("--out", required=True)
    p.add_argument("--balance", action="store_true", help="as many positive as negative paths")
    p.add_argument("--labels", choices=list(LABEL_SOURCES), default="mc", metavar="SOURCE",
                   help="the label source written (see `mmprm train --help`); paths are cut before an unknown step")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_export)

    _stage(sub, "evaluate", "every selection method at every N, with intervals and a plot", cmd_evaluate,
           EvaluateConfig, inputs={"--scored": "scored.jsonl (graded solutions with step_scores)",
                                   "--out": "folder for report.json, report.md, accuracy.png"})

    p = sub.add_parser("evaluate-steps", help="step-error detection (ProcessBench metric)")
    p.add_argument("--prm", required=True, help=PRM_SPEC)
    p.add_argument("--data", required=True, help="ProcessBench JSON, or annotated paths JSONL")
    p.add_argument("--threshold", type=float, help="default: chosen for F1 on a held-out half")
    p.add_argument("--out", help="write the report JSON here too")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_evaluate_steps)

    p = _stage(sub, "search", "PRM-guided search: bon, refined, beam, dvts, greedy", cmd_search, SearchConfig,
               inputs={"--policy": POLICY_SPEC, "--prm": PRM_SPEC, "--data": "problems.jsonl",
                       "--out": "output folder (rerunning resumes)"})
    p.add_argument("--limit", type=int, help="only the first N problems")
    p.add_argument("--critic", help=f"--method refined: the critic, {CRITIC_SPEC}")

    _stage(sub, "train", "train a PRM on annotated paths (or graded samples)", cmd_train, PRMTrainConfig,
           inputs={"--out": "the PRM folder"}, section="train", grades=False, example="e.g. recipes/prm-mmprm.yaml")

    p = _stage(sub, "score", "fill step_scores of graded samples with a PRM", cmd_score, ScoreConfig,
               inputs={"--prm": PRM_SPEC, "--data": "problems.jsonl", "--samples": "samples.jsonl from generate",
                       "--out": "scored.jsonl (appended; reruns skip done problems)"}, grades=False)
    p.add_argument("--trust-remote-code", action="store_true", help="allow a published PRM's own code to run")

    p = sub.add_parser("demo", help="the whole pipeline on synthetic data with the tiny models")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="the smoke run the test suite uses (durations: README)")
    size.add_argument("--full", action="store_true", help="more annotation and candidates (durations: README)")
    p.add_argument("--critic", action="store_true",
                   help="also train a generative critic (GM-PRM) and report it (roughly 30 minutes more by default)")
    p.add_argument("--out", help="default runs/demo-<variant>; rerunning resumes")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("serve-policy", help="serve a local model behind an OpenAI-compatible API")
    p.add_argument("--policy", required=True, help="path of a transformers model folder")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(func=cmd_serve_policy)

    critic = sub.add_parser("critic", help="the generative critic (GM-PRM): its data and its training").add_subparsers(
        dest="critic_command", required=True)
    p = critic.add_parser("build-data", help="teacher critiques of annotated paths, kept where MC agrees")
    p.add_argument("--paths", required=True, help="paths.jsonl from annotate (rollout paths carry MC counts)")
    p.add_argument("--teacher", required=True, help="sim:NOISE (synthetic problems) or chat:URL#MODEL")
    p.add_argument("--out", required=True, help="the critiques file (JSONL); a .report.json goes beside it")
    p.add_argument("--layout", choices=["compact", "prose"], default="compact",
                   help="the simulated teacher's layout (a chat teacher writes prose)")
    p.add_argument("--min-rollouts", type=int, default=2, help="MC estimates from fewer are not trusted")
    p.add_argument("--no-filter", action="store_true", help="keep every critique that parses (the unfiltered run)")
    p.add_argument("--answer-negatives", type=int, default=0,
                   help="per path MC calls right, N copies with the final result changed (graded wrong)")
    p.set_defaults(func=cmd_critic_build_data)
    _stage(critic, "train", "fine-tune a chat VLM into a critic on build-data's critiques", cmd_critic_train,
           CriticTrainConfig, inputs={"--out": "the critic folder"}, section="critic", grades=False,
           example="e.g. recipes/critic-qwen2.5-vl.yaml")

    from mmprm.serve.prm_client import API_KEY_ENV
    from mmprm.serve.prm_server import PRMServeConfig

    p = sub.add_parser("serve-prm", help="serve a PRM over HTTP: POST /v1/score (docs/serving.md)")
    p.add_argument("--prm", required=True, help=PRM_SPEC)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--api-key", help=f"require 'Authorization: Bearer KEY' (default: ${API_KEY_ENV} if set)")
    p.add_argument("--served-name", help="the name clients see and may send as `model` (default: the PRM's)")
    p.add_argument("--recipe", help="YAML of settings (its `serve_prm:` section); flags override it")
    add_flags(p, PRMServeConfig)
    p.set_defaults(func=cmd_serve_prm)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if hasattr(args, "max_question_chars"):  # a pipeline command: the input limits of this process
            set_limits(config_from_args(RecordLimits, args, "limits"))
        return args.func(args)
    except (ValueError, OSError) as e:  # RecordError, OutputError; missing or unwritable files
        print(f"mmprm: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nmmprm: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
