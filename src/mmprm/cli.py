"""The `mmprm` command line: parse arguments, call one library function each.

Every command is a Python function a user can call with the same arguments;
nothing here holds logic beyond building the objects those functions receive.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from mmprm.annotate.config import PATH_KINDS
from mmprm.labels import LABEL_SOURCES


def _grader(args: argparse.Namespace):
    from mmprm.grading import load_grader

    return load_grader(args.judge, hybrid=args.hybrid, timeout=args.timeout)


def _add_grader_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--timeout", type=float, default=5.0, help="seconds per answer (default 5)")
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
    from mmprm.policy.train import train_policy

    save_at = [int(s) for s in args.save_at.split(",")] if args.save_at else []
    result = train_policy(args.data, args.out, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                          seed=args.seed, eval_data=args.eval_data, save_at=save_at)
    result = {k: v for k, v in result.items() if k not in ("losses", "config")}
    print(json.dumps(result, indent=2), file=sys.stderr)
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from mmprm.data import load_problems
    from mmprm.generate import generate
    from mmprm.io import RejectLog
    from mmprm.policy.base import SamplingParams
    from mmprm.policy.load import load_policy

    params = SamplingParams(n=args.n, temperature=args.temperature, top_p=args.top_p, top_k=args.top_k,
                            max_tokens=args.max_tokens, seed=args.seed)
    from mmprm.output import refuse_input_as_output

    if params.n < 1:
        raise ValueError(f"--n must be at least 1 solution per problem, got {params.n}")
    refuse_input_as_output([args.out], [args.data])
    grader = _grader(args)
    rejects = RejectLog(args.out, echo=lambda m: print(m, file=sys.stderr))
    problems = _first(load_problems(args.data, rejects=rejects), args.limit)
    rejects.close()
    policy = load_policy(args.policy)
    try:
        summary = generate(problems, policy, grader, args.out, params=params, inputs=[args.data])
    finally:
        policy.close()
    print(f"{summary}; {rejects.count} problems rejected", file=sys.stderr)
    return 0


def _first(problems: list, limit: int | None) -> list:
    if limit is None:
        return problems
    if limit < 1:
        raise ValueError(f"--limit must be at least 1 problem, got {limit}")
    return problems[:limit]


def cmd_annotate(args: argparse.Namespace) -> int:
    from mmprm.annotate.config import AnnotateConfig

    cfg = AnnotateConfig.from_recipe(
        args.recipe, method=args.method, k=args.k, max_searches=args.searches, rollout_budget=args.budget,
        num_solutions=args.solutions, temperature=args.temperature, top_p=args.top_p, top_k=args.top_k,
        max_tokens=args.max_tokens, seed=args.seed, paths=args.paths, max_rollout_paths=args.max_rollout_paths)
    print("config: " + json.dumps(asdict(cfg)), file=sys.stderr)
    if args.ray:
        from mmprm.annotate.distributed import annotate_with_ray

        stats = annotate_with_ray(args.policy, args.data, args.out, cfg, shards=args.shards or 2,
                                  address=args.ray, inflight=args.inflight)
    else:
        from mmprm.annotate.runner import annotate, shard_of
        from mmprm.data import load_problems
        from mmprm.io import RejectLog
        from mmprm.policy.load import load_policy

        rejects = RejectLog(Path(args.out) / "problems.jsonl", echo=lambda m: print(m, file=sys.stderr))
        problems = shard_of(load_problems(args.data, rejects=rejects), _shard(args.shard))
        rejects.close()
        policy = load_policy(args.policy)
        try:
            stats = annotate(problems, policy, _grader(args), args.out, cfg, inflight=args.inflight,
                             inputs=[args.data], rejected_inputs=rejects.count)
        finally:
            policy.close()
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
    from mmprm.annotate.export import export_paths

    n = export_paths(args.paths, args.out, args.format, balance=args.balance, seed=args.seed, labels=args.labels)
    print(f"wrote {n} {args.format} records to {args.out}", file=sys.stderr)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from mmprm.evaluate.report import evaluate_file

    n_values = [int(n) for n in args.n.split(",")]
    report = evaluate_file(args.scored, n_values, args.out, _grader(args), subsets_per_n=args.subsets,
                           seed=args.seed)
    print((Path(args.out) / "report.md").read_text(), file=sys.stderr)
    print(f"report in {args.out}/report.json, report.md, accuracy.png "
          f"({report['counts']['rejected']} lines rejected)", file=sys.stderr)
    return 0


def cmd_evaluate_steps(args: argparse.Namespace) -> int:
    from mmprm.evaluate.steps import evaluate_steps, load_cases
    from mmprm.io import RejectLog
    from mmprm.output import refuse_input_as_output
    from mmprm.prm.load import load_prm

    if args.out:
        refuse_input_as_output([args.out], [args.data])
    rejects = RejectLog(args.out, echo=lambda m: print(m, file=sys.stderr))
    cases = load_cases(args.data, rejects)
    rejects.close()
    if not cases:
        raise ValueError(f"{args.data}: no usable cases ({rejects.count} rejected)")
    prm = load_prm(args.prm)
    try:
        report = evaluate_steps(prm, cases, threshold=args.threshold, seed=args.seed)
    finally:
        prm.close()
    report["rejected"] = rejects.count
    text = json.dumps(report, indent=2)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    print(text)
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from mmprm.data import load_problems
    from mmprm.policy.load import load_policy
    from mmprm.prm.load import load_prm
    from mmprm.search.runner import run_search
    from mmprm.search.tree_search import SearchConfig

    cfg = SearchConfig(method=args.method, n=args.n, width=args.width, max_depth=args.max_depth,
                       aggregation=args.aggregation, temperature=args.temperature, seed=args.seed)
    print("config: " + json.dumps(asdict(cfg)), file=sys.stderr)
    grader = _grader(args)
    problems = _first(load_problems(args.data), args.limit)
    policy, prm = load_policy(args.policy), load_prm(args.prm)
    try:
        report = run_search(problems, policy, prm, grader, cfg, args.out, inputs=[args.data])
    finally:
        policy.close()
        prm.close()
    print(json.dumps(report, indent=2), file=sys.stderr)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from mmprm.prm.train import train_prm

    options = {k: v for k, v in dict(samples=args.samples, problems=args.problems, bucket=args.bucket,
                                     lora=args.lora or None, save_every=args.save_every,
                                     min_rollouts=args.min_rollouts,
                                     first_error_threshold=args.first_error_threshold).items() if v is not None}
    log = train_prm(args.base, args.data, args.out, labels=args.labels, loss=args.loss, lr=args.lr,
                    epochs=args.epochs, batch_size=args.batch_size, scheme=args.scheme, head=args.head,
                    eval_data=args.eval_data, seed=args.seed, max_steps=args.max_steps, recipe=args.recipe,
                    **options)
    print(json.dumps(log, indent=2, default=str), file=sys.stderr)
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from mmprm.output import refuse_input_as_output
    from mmprm.prm.load import load_prm
    from mmprm.prm.score import score_file

    refuse_input_as_output([args.out], [args.data, args.samples])  # before a model is loaded
    prm = load_prm(args.prm, trust_remote_code=args.trust_remote_code, batch_size=args.batch_size)
    try:
        print(score_file(prm, args.data, args.samples, args.out), file=sys.stderr)
    finally:
        prm.close()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from mmprm.demo.config import demo_config
    from mmprm.demo.pipeline import run_demo

    variant = "quick" if args.quick else "full" if args.full else "default"
    run_demo(demo_config(variant), args.out or f"runs/demo-{variant}")
    return 0


def cmd_serve_policy(args: argparse.Namespace) -> int:
    from mmprm.serve.openai_server import serve

    serve(args.policy, host=args.host, port=args.port)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from mmprm.data.adapters import ADAPTERS

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
    p = policy.add_parser("train", help="train the tiny VLM policy on reference solutions")
    p.add_argument("--data", required=True, help="synthetic data folder or problems.jsonl")
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-data", help="held-out problems for greedy accuracy")
    p.add_argument("--save-at", help="comma-separated steps to keep checkpoint-STEP/ (e.g. a weak policy)")
    p.set_defaults(func=cmd_policy_train)

    p = sub.add_parser("generate", help="sample N graded solutions per problem")
    p.add_argument("--policy", required=True, help="hf:PATH or openai:URL#MODEL")
    p.add_argument("--data", required=True, help="problems.jsonl")
    p.add_argument("--out", required=True, help="samples.jsonl (appended; reruns skip done problems)")
    p.add_argument("--n", type=int, default=16)
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=0)
    p.add_argument("--max-tokens", type=int, default=512)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, help="only the first N problems")
    _add_grader_flags(p)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("annotate", help="label every step: OmegaPRM tree search or per-step MC")
    p.add_argument("--policy", required=True, help="hf:PATH, openai:URL#MODEL or sim:OPTIONS")
    p.add_argument("--data", required=True, help="problems.jsonl")
    p.add_argument("--out", required=True, help="output folder (rerunning resumes)")
    p.add_argument("--method", choices=["omegaprm", "mc"])
    p.add_argument("--recipe", help="YAML of settings, e.g. recipes/mmprm-annotate.yaml")
    p.add_argument("--k", type=int, help="rollouts per MC estimate (default 8)")
    p.add_argument("--searches", type=int, help="binary searches per problem (default 100)")
    p.add_argument("--budget", type=int, help="rollouts per problem (default 10000)")
    p.add_argument("--solutions", type=int, help="mc method: solutions per problem (default 4)")
    p.add_argument("--paths", choices=PATH_KINDS,
                   help="omegaprm's training paths: MM-PRM's tree traversal (default), every sampled "
                        "solution with MC labels, or both")
    p.add_argument("--max-rollout-paths", type=int, help="with --paths rollouts|both: keep at most N sampled "
                                                          "solutions a problem, drawn at random (default: all)")
    p.add_argument("--temperature", type=float)
    p.add_argument("--top-p", type=float)
    p.add_argument("--top-k", type=int)
    p.add_argument("--max-tokens", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--inflight", type=int, default=16, help="problems in flight at once")
    p.add_argument("--shard", help="i/n: annotate only every n-th problem from the i-th")
    p.add_argument("--ray", help="run shards as Ray tasks: auto, a cluster ADDRESS, or local")
    p.add_argument("--shards", type=int, help="with --ray: number of shards (default 2)")
    _add_grader_flags(p)
    p.set_defaults(func=cmd_annotate)

    p = sub.add_parser("export", help="write annotated paths in a trainer's format")
    p.add_argument("--paths", required=True, help="paths.jsonl from annotate")
    p.add_argument("--format", required=True, choices=["annotated", "stepwise", "internvl"])
    p.add_argument("--out", required=True)
    p.add_argument("--balance", action="store_true", help="as many positive as negative paths")
    p.add_argument("--labels", choices=list(LABEL_SOURCES), default="mc", metavar="SOURCE",
                   help="the label source written (see `mmprm train --help`); paths are cut before an unknown step")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("evaluate", help="every selection method at every N, with intervals and a plot")
    p.add_argument("--scored", required=True, help="scored.jsonl (graded solutions with step_scores)")
    p.add_argument("--n", default="1,2,4,8,16", help="comma-separated N values")
    p.add_argument("--out", required=True, help="folder for report.json, report.md, accuracy.png")
    p.add_argument("--subsets", type=int, default=200, help="random subsets per N below the pool size")
    p.add_argument("--seed", type=int, default=0)
    _add_grader_flags(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("evaluate-steps", help="step-error detection (ProcessBench metric)")
    p.add_argument("--prm", required=True, help="a PRM spec (see mmprm score)")
    p.add_argument("--data", required=True, help="ProcessBench JSON, or annotated paths JSONL")
    p.add_argument("--threshold", type=float, help="default: chosen for F1 on a held-out half")
    p.add_argument("--out", help="write the report JSON here too")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_evaluate_steps)

    p = sub.add_parser("search", help="PRM-guided search: bon, beam, dvts, greedy")
    p.add_argument("--method", required=True, choices=["bon", "beam", "dvts", "greedy"])
    p.add_argument("--policy", required=True)
    p.add_argument("--prm", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--n", type=int, default=16, help="samples per round per problem")
    p.add_argument("--width", type=int, default=4, help="beam width (beam) / expansions per subtree (dvts)")
    p.add_argument("--max-depth", type=int, default=12)
    p.add_argument("--aggregation", default="last", help="how partial solutions are ranked")
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int)
    _add_grader_flags(p)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("train", help="train a PRM on annotated paths (or graded samples)")
    p.add_argument("--base", help="a local VLM or causal LM folder to start from")
    p.add_argument("--data", help="paths.jsonl from annotate")
    p.add_argument("--samples", help="instead of --data: samples.jsonl (with --problems), for the arithmetic "
                   "or oracle label sources")
    p.add_argument("--problems", help="the problems.jsonl of --samples")
    p.add_argument("--out", required=True)
    p.add_argument("--recipe", help="YAML of settings, e.g. recipes/prm-mmprm.yaml")
    p.add_argument("--labels", choices=list(LABEL_SOURCES), metavar="SOURCE",
                   help="label source: " + "; ".join(f"{k}: {v.summary}" for k, v in LABEL_SOURCES.items()))
    p.add_argument("--min-rollouts", type=int, help="MC-derived labels: an MC estimate counts from this many rollouts")
    p.add_argument("--first-error-threshold", type=float,
                   help="first-error labels: the share of the last solvable prefix's MC a step must keep")
    p.add_argument("--loss", choices=["soft", "hard"])
    p.add_argument("--scheme", help="input format: mmprm, mm-prm, math-shepherd, qwen2.5-math-prm, visualprm")
    p.add_argument("--head", choices=["token", "value"])
    p.add_argument("--lr", type=float)
    p.add_argument("--epochs", type=float)
    p.add_argument("--max-steps", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--eval-data", help="held-out paths.jsonl for step-level metrics")
    p.add_argument("--bucket", action=argparse.BooleanOptionalAction, default=None, help="length bucketing")
    p.add_argument("--lora", action="store_true", help="train LoRA adapters (needs peft)")
    p.add_argument("--save-every", type=int)
    p.add_argument("--seed", type=int)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("score", help="fill step_scores of graded samples with a PRM")
    p.add_argument("--prm", required=True, help="PRM folder, SCHEME:PATH (published PRM) or likelihood:PATH")
    p.add_argument("--data", required=True, help="problems.jsonl")
    p.add_argument("--samples", required=True, help="samples.jsonl from generate")
    p.add_argument("--out", required=True, help="scored.jsonl (appended; reruns skip done problems)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--trust-remote-code", action="store_true", help="allow a published PRM's own code to run")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("demo", help="the whole pipeline on synthetic data with the tiny models")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="the smoke run the test suite uses (durations: README)")
    size.add_argument("--full", action="store_true", help="more annotation and candidates (durations: README)")
    p.add_argument("--out", help="default runs/demo-<variant>; rerunning resumes")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("serve-policy", help="serve a local model behind an OpenAI-compatible API")
    p.add_argument("--policy", required=True, help="path of a transformers model folder")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(func=cmd_serve_policy)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError) as e:  # RecordError, OutputError; missing or unwritable files
        print(f"mmprm: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nmmprm: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
