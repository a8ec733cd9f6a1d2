"""`mmprm demo`: the whole MM-PRM pipeline on one laptop.

synthetic problems -> the tiny policy (committed checkpoints) -> OmegaPRM
annotation -> one PRM per label source from the strong checkpoint (MM-PRM's
MC values; first errors located from the MC values, the headline; the
generator's ground truth, an oracle ceiling) -> on held-out problems: samples
from the weak policy, scored by every PRM and by the strong policy's
likelihood -> every selection method at every N, beam search -> report.md,
report.json, accuracy.png and index.html. Every stage keeps its output under
`out/`; a rerun skips what is done and resumes what was cut off.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import asdict
from pathlib import Path

from mmprm.demo.config import DemoConfig
from mmprm.evaluate.report import compare, comparison_lines


def _stage(name: str) -> float:
    print(f"\n== {name}", flush=True)
    return time.time()


def _done(name: str, start: float, timings: dict) -> None:
    timings[name] = round(time.time() - start, 1)
    print(f"   {name}: {timings[name]} s", flush=True)


def run_demo(cfg: DemoConfig, out: str | Path) -> dict:
    import torch

    from mmprm.annotate.config import AnnotateConfig
    from mmprm.annotate.runner import annotate
    from mmprm.data import load_problems
    from mmprm.data.synth import generate_synthetic
    from mmprm.generate import generate
    from mmprm.grading import RuleGrader
    from mmprm.labels import get_source
    from mmprm.policy.base import SamplingParams
    from mmprm.policy.hf import HFPolicy
    from mmprm.prm.likelihood import LikelihoodPRM
    from mmprm.prm.score import StepPRM, score_file
    from mmprm.prm.train import PRMTrainConfig, train_prm

    if not torch.cuda.is_available():
        torch.set_num_threads(1)  # on 2 shared cores one thread is several times faster
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "demo_config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
    print("config: " + json.dumps(asdict(cfg)), flush=True)
    timings: dict[str, float] = {}
    grader = RuleGrader()
    synth = dict(min_steps=cfg.min_steps, max_steps=cfg.max_steps, families=cfg.families)

    t = _stage("synthetic problems")
    train_file, test_file = out / "data" / "train" / "problems.jsonl", out / "data" / "test" / "problems.jsonl"
    if not train_file.exists():
        generate_synthetic(cfg.annotate_problems, cfg.seed + 1000, train_file.parent, split="train", **synth)
    if not test_file.exists():
        generate_synthetic(cfg.test_problems, cfg.seed + 2000, test_file.parent, split="test", **synth)
    train, test = load_problems(train_file, strict=True), load_problems(test_file, strict=True)
    _done("synthetic problems", t, timings)

    policy = HFPolicy(cfg.weak_policy, batch_size=cfg.policy_batch)
    try:
        t = _stage(f"OmegaPRM annotation of {len(train)} problems (weak policy)")
        ann_cfg = AnnotateConfig(k=cfg.k, max_searches=cfg.searches, rollout_budget=cfg.rollout_budget,
                                 temperature=cfg.temperature, max_tokens=cfg.max_tokens, seed=cfg.seed,
                                 paths=cfg.paths)
        stats = annotate(train, policy, grader, out / "annotate", ann_cfg, inflight=16)
        print("   " + json.dumps({k: stats[k] for k in ("annotated", "skipped", "paths", "labels", "rollouts")}))
        _done("annotation", t, timings)

        t = _stage(f"{cfg.samples} samples for each of {len(test)} held-out problems (weak policy)")
        params = SamplingParams(n=cfg.samples, temperature=cfg.temperature, max_tokens=cfg.max_tokens, seed=cfg.seed)
        gen = generate(test, policy, grader, out / "samples.jsonl", params=params, batch_problems=16)
        print(f"   {gen}")
        _done("sampling", t, timings)
    finally:
        policy.close()

    for source in cfg.label_sources:
        t = _stage(f"train the PRM on {source} labels (from the strong policy)"
                   + (" [oracle: ground truth, a ceiling]" if get_source(source).oracle else ""))
        filtered = source == cfg.headline and cfg.headline_label_filter > 0
        prm_cfg = PRMTrainConfig(base=cfg.strong_policy, data=out / "annotate" / "paths.jsonl", labels=source,
                                 lr=cfg.prm_lr, batch_size=cfg.prm_batch, max_steps=cfg.prm_steps, seed=cfg.seed,
                                 warmup_ratio=cfg.prm_warmup_ratio, weight_decay=cfg.prm_weight_decay,
                                 label_filter=cfg.strong_policy if filtered else None,
                                 label_filter_share=cfg.headline_label_filter if filtered else 0.1)
        log = train_prm(prm_cfg, out / f"prm-{source}")
        print(f"   {_brief(log)}")
        _done(f"prm-{source} training", t, timings)

    if cfg.critic:
        t = _stage(f"train a generative critic on simulated-teacher critiques (noise {cfg.critic_teacher_noise:g}) "
                   "[ORACLE-derived: a stand-in for a teacher model]")
        _train_critic(cfg, out, ann_cfg, grader)
        _done("critic training", t, timings)

    for scorer in scorers(cfg):
        t = _stage(f"score the held-out samples with {scorer}")
        if scorer == "likelihood":
            prm = LikelihoodPRM.from_path(cfg.strong_policy)
        elif scorer == CRITIC:
            from mmprm.critic.model import HFCritic
            from mmprm.critic.prm import CriticPRM

            prm = CriticPRM(HFCritic(out / CRITIC, batch_size=32))
        else:
            prm = StepPRM.from_pretrained(out / scorer)
        try:
            print("   " + str(score_file(prm, test_file, out / "samples.jsonl", out / f"scored-{scorer}.jsonl")))
        finally:
            prm.close()
        _done(f"{scorer} scoring", t, timings)

    beam = {}
    for scorer in beam_scorers(cfg):
        t = _stage(f"beam search on {min(cfg.beam_problems, len(test))} problems (weak policy + {scorer})")
        beam[scorer] = _beam(cfg, out, scorer, test[: cfg.beam_problems], grader)
        _done(f"beam search ({scorer})", t, timings)

    t = _stage("report")
    report = build_report(cfg, out, grader, beam, timings)
    _done("report", t, timings)
    print(f"\nreport: {out / 'report' / 'report.md'}\n        {out / 'report' / 'index.html'}")
    return report


CRITIC = "critic"  # the trained critic's folder and scorer name


def scorers(cfg: DemoConfig) -> list[str]:
    return [f"prm-{source}" for source in cfg.label_sources] + ["likelihood"] + ([CRITIC] if cfg.critic else [])


def _train_critic(cfg: DemoConfig, out: Path, ann_cfg, grader) -> None:
    """Teacher critiques of the annotated paths (the demo's and `critic_extra_problems` more,
    annotated alike), kept where MC agrees, and a critic trained on them from the strong
    policy; a rerun keeps what is done."""
    from mmprm.annotate.runner import annotate
    from mmprm.critic.config import CriticTrainConfig
    from mmprm.critic.data import build_critic_data
    from mmprm.critic.teacher import SimulatedTeacher
    from mmprm.critic.train import train_critic
    from mmprm.data import load_problems
    from mmprm.data.synth import generate_synthetic
    from mmprm.policy.hf import HFPolicy

    folder = out / "critic-data"
    sources = [out / "annotate" / "paths.jsonl"]
    if cfg.critic_extra_problems:
        extra = folder / "problems" / "problems.jsonl"
        if not extra.exists():
            generate_synthetic(cfg.critic_extra_problems, cfg.seed + 3000, extra.parent, split="train",
                               min_steps=cfg.min_steps, max_steps=cfg.max_steps, families=cfg.families)
        policy = HFPolicy(cfg.weak_policy, batch_size=cfg.policy_batch)
        try:
            annotate(load_problems(extra, strict=True), policy, grader, folder / "annotate", ann_cfg, inflight=16)
        finally:
            policy.close()
        sources.append(folder / "annotate" / "paths.jsonl")
    data = folder / "critiques.jsonl"
    if not data.exists():
        teacher = SimulatedTeacher(cfg.critic_teacher_noise, seed=cfg.seed)
        parts = []
        for k, paths in enumerate(sources):
            part = folder / f"critiques-{k}.jsonl"
            print("   " + json.dumps(build_critic_data(paths, part, teacher)))
            parts.append(part.read_text())
        data.write_text("".join(parts))
    if (out / CRITIC / "train_log.json").exists():
        return
    log = train_critic(CriticTrainConfig(str(data), cfg.strong_policy, cfg.critic_steps, batch_size=cfg.critic_batch,
                                         lr=cfg.critic_lr, verdict_weight=cfg.critic_verdict_weight, seed=cfg.seed,
                                         save_every=200), out / CRITIC)
    print(f"   {_brief(log)}")


def beam_scorers(cfg: DemoConfig) -> list[str]:
    """The headline PRM, and the oracle-label PRM beside it as the ceiling."""
    return [f"prm-{cfg.headline}"] + [f"prm-{s}" for s in cfg.label_sources if s == "oracle"]


def label_source_of(scorer: str, out: Path) -> dict:
    """What a scorer learnt from, as its saved PRM names it (a label filter included)."""
    from mmprm.labels import get_source
    from mmprm.prm.model import PRM_CONFIG

    if scorer == "likelihood":
        return {"source": "none (untrained strong policy)", "oracle": False}
    if scorer == CRITIC:
        return {"source": "generative critic: simulated-teacher critiques (ground truth + seeded noise, a stand-in "
                          "for a teacher model), kept where MC agrees", "oracle": True}
    source = scorer.removeprefix("prm-")
    saved = out / scorer / PRM_CONFIG
    named = json.loads(saved.read_text()).get("label_source") if saved.is_file() else None
    return {"source": named or source, "oracle": get_source(source).oracle}


def _brief(log: dict) -> str:
    keep = ("steps", "examples", "final_loss", "time_s")
    return json.dumps({k: log[k] for k in keep if k in log})


def _beam(cfg: DemoConfig, out: Path, scorer: str, problems, grader) -> dict:
    from mmprm.policy.hf import HFPolicy
    from mmprm.prm.score import StepPRM
    from mmprm.search.runner import run_search
    from mmprm.search.tree_search import SearchConfig

    search_cfg = SearchConfig(method="beam", n=cfg.beam_n, width=cfg.beam_width, max_depth=cfg.beam_max_depth,
                              aggregation=cfg.beam_aggregation, temperature=cfg.temperature,
                              max_step_tokens=cfg.beam_step_tokens, seed=cfg.seed)
    policy = HFPolicy(cfg.weak_policy, batch_size=cfg.policy_batch)
    prm = StepPRM.from_pretrained(out / scorer)
    try:
        return run_search(problems, policy, prm, grader, search_cfg, out / f"search-beam-{scorer}")
    finally:
        policy.close()
        prm.close()


def build_report(cfg: DemoConfig, out: Path, grader, beam: dict, timings: dict) -> dict:
    from mmprm.data import load_problems
    from mmprm.evaluate.html import render_page, results_table
    from mmprm.evaluate.plot import plot_accuracy
    from mmprm.evaluate.report import build_pools, evaluate_pools, load_solutions, markdown

    names = scorers(cfg)
    combined: dict = {"methods": {}, "intervals": {}, "counts": {}, "notes": []}
    for scorer in names:
        pools = build_pools(load_solutions(out / f"scored-{scorer}.jsonl"), grader)
        rep = evaluate_pools(pools, cfg.n_values, bounded=None, seed=cfg.seed)
        for method, by_n in rep["methods"].items():
            shared = method in ("random", "majority", "pass@k")
            if shared and scorer != names[0]:
                continue
            name = method if shared else f"{scorer} {method}"
            combined["methods"][name] = by_n
            combined["intervals"][name] = rep["intervals"][method]
            combined.setdefault("per_problem", {})[name] = rep["per_problem"][method]
        combined["notes"] += [n for n in rep["notes"] if n not in combined["notes"]]
        combined["counts"] = rep["counts"]
    combined["label_sources"] = {scorer: label_source_of(scorer, out) for scorer in names}
    combined["headline"] = f"prm-{cfg.headline}"
    combined["ranking"] = _ranking(out, names)
    combined["notes"].append(_ranking_note(cfg, combined["ranking"]))
    combined["beam_search"] = beam
    combined["timings_seconds"] = timings
    for scorer, result in beam.items():
        combined["notes"].append(
            f"Beam search ({scorer} guides, width {cfg.beam_width}, {cfg.beam_n} samples a round) on "
            f"{result['problems']} problems: {100 * result['accuracy']['beam_min']:.1f}% (best final candidate by "
            f"min score), {result['tokens_per_problem']:.0f} generated tokens a problem.")
    combined["summary"] = summary_rows(cfg, combined)
    combined["comparisons"] = demo_comparisons(cfg, combined)
    report_dir = out / "report"
    report_dir.mkdir(exist_ok=True)
    (report_dir / "report.json").write_text(json.dumps(combined, indent=2) + "\n")
    title = f"mmprm demo ({cfg.variant}): selection on {combined['counts']['problems']} held-out problems"
    (report_dir / "report.md").write_text(summary_markdown(cfg, combined) + "\n" +
                                          markdown(combined, "Every method at every N"))
    shown = ["pass@k", "majority", "random"] + [f"{s} {m}" for s in names for m in ("bon_min", "weighted_min")]
    plot_accuracy(combined, report_dir / "accuracy.png", title=title, methods=shown)

    test = load_problems(out / "data" / "test" / "problems.jsonl")[:6]
    scored = {}
    for sol in load_solutions(out / f"scored-{combined['headline']}.jsonl"):
        scored.setdefault(sol.problem_id, []).append(sol)
    if cfg.critic:  # the critic's critique of each candidate, shown beside its steps
        critiques: dict[str, list] = {}
        for sol in load_solutions(out / f"scored-{CRITIC}.jsonl"):
            critiques.setdefault(sol.problem_id, []).append(sol.meta.get("critique"))
        for pid, sols in scored.items():
            for sol, text in zip(sols, critiques.get(pid, [])):
                sol.meta["critique"] = text
    tree = _interesting_tree(out / "annotate")
    train = {p.id: p for p in load_problems(out / "data" / "train" / "problems.jsonl")}
    largest = max(cfg.n_values)
    rows = {m: {f"N={n}": v for n, v in by_n.items() if int(n) in (1, largest)}
            for m, by_n in combined["methods"].items()}
    plot_uri = "data:image/png;base64," + base64.b64encode((report_dir / "accuracy.png").read_bytes()).decode()
    page = render_page(title, results_table(rows, ["N=1", f"N={largest}"]) +
                       f'<p><img alt="accuracy against N" src="{plot_uri}" style="max-width:100%"></p>',
                       test, {p.id: scored.get(p.id, [])[: cfg.samples] for p in test},
                       tree=tree, tree_problem=train.get(tree["problem_id"]) if tree else None,
                       notes=combined["notes"] + [f"Candidate steps are coloured by the {combined['headline']} PRM "
                                                  f"({cfg.headline} labels, no oracle)."])
    (report_dir / "index.html").write_text(page)
    return combined


def summary_rows(cfg: DemoConfig, report: dict) -> list[dict]:
    """One row a scorer: its label source, ranking figures, its best selection at the largest N, beam search."""
    n = str(max(cfg.n_values))
    rows = []
    for scorer, source in report["label_sources"].items():
        rank = report["ranking"][scorer]
        weighted = {m: v[n] for m, v in report["methods"].items() if m.startswith(f"{scorer} weighted_")}
        best = max(weighted, key=weighted.get)
        beam = report["beam_search"].get(scorer)
        rows.append({"scorer": scorer, **source, "within_problem_auroc": rank["within_problem_auroc_min"],
                     "within_problem_auroc_product": rank["within_problem_auroc_product"],
                     "step_auroc": rank.get("step_auroc_local"), "first_error_f1": rank.get("first_error_f1"),
                     "bon_min": report["methods"][f"{scorer} bon_min"][n],
                     "best_weighted": best.split(" ", 1)[1], "best_weighted_accuracy": weighted[best],
                     "beam": None if beam is None else beam["accuracy"]["beam_min"]})
    return rows


def summary_markdown(cfg: DemoConfig, report: dict) -> str:
    """The headline table: each scorer against pass@1, majority and pass@k, with its label source."""
    n = str(max(cfg.n_values))

    def pct(v):
        return "–" if v is None else f"{100 * v:.1f}"

    def num(v):
        return "–" if v is None else f"{v:.3f}"

    methods = report["methods"]
    lines = [f"# mmprm demo ({cfg.variant}): {report['counts']['problems']} held-out problems × {cfg.samples} samples",
             "", f"Baselines at N={n}: pass@1 {pct(methods['random'][n])}, majority vote "
             f"{pct(methods['majority'][n])}, pass@{n} (oracle: any sample right) {pct(methods['pass@k'][n])}.",
             f"The headline PRM is **{report['headline']}**: it learnt from the policy's own rollouts alone. "
             "Rows marked ORACLE learnt from the synthetic generator's ground truth, which no real user has: "
             "they are a ceiling, not a product.", "",
             f"| scorer | label source | within-problem AUROC, min / product | step AUROC | first-error F1 "
             f"| BoN-min@{n} | best weighted vote@{n} | beam search |", "|---|---|---|---|---|---|---|---|"]
    for row in report["summary"]:
        source = ("ORACLE: " if row["oracle"] else "") + row["source"]
        name = f"**{row['scorer']}**" if row["scorer"] == report["headline"] else row["scorer"]
        lines.append(f"| {name} | {source} | {num(row['within_problem_auroc'])} / "
                     f"{num(row['within_problem_auroc_product'])} | {num(row['step_auroc'])} | "
                     f"{num(row['first_error_f1'])} | {pct(row['bon_min'])} | {pct(row['best_weighted_accuracy'])} "
                     f"({row['best_weighted']}) | {pct(row['beam'])} |")
    lines += ["", "Step AUROC and first-error F1 are measured against the synthetic checker's verdicts "
              "(evaluation only). Beam search runs on the first "
              f"{cfg.beam_problems} problems.", "",
              f"What the demo claims, as paired comparisons of Best-of-{n} (min) over the same problems and subsets "
              "(difference in accuracy, 95% paired bootstrap interval; \"beats\" only where it excludes 0):", "",
              *comparison_lines(report["comparisons"]), ""]
    return "\n".join(lines)


def demo_comparisons(cfg: DemoConfig, report: dict) -> list[dict]:
    """The comparisons the demo's claims rest on, at the largest N: the headline PRM against
    majority vote and MM-PRM's MC labels, and the ceilings (oracle labels, the likelihood) against it."""
    n = str(max(cfg.n_values))
    head = f"prm-{cfg.headline} bon_min"
    pairs = [(head, "majority"), (head, "prm-mc bon_min"), ("prm-oracle bon_min", head), ("likelihood bon_min", head)]
    return [compare(report, a, b, n, seed=cfg.seed) for a, b in pairs if a in report["per_problem"]
            and b in report["per_problem"]]


def _ranking(out: Path, names: list[str]) -> dict:
    """How well each scorer ranks a problem's right samples above its wrong ones
    (what selection needs), and its step AUROC and first-error F1 against the synthetic checker."""
    from mmprm.prm.metrics import scored_summary

    ranking = {}
    for scorer in names:
        scored = out / f"scored-{scorer}.jsonl"
        ranking[scorer] = scored_summary(scored, out / "data" / "test" / "problems.jsonl")
        ranking[scorer].update(within_problem_auroc_product=scored_summary(scored, how="product")[
            "within_problem_auroc_product"])
    return ranking


def _ranking_note(cfg: DemoConfig, ranking: dict) -> str:
    def fmt(value):
        return "–" if value is None else f"{value:.3f}"

    within = ", ".join(f"{s} {fmt(r['within_problem_auroc_min'])}" for s, r in ranking.items())
    steps = ", ".join(f"{s} {fmt(r['step_auroc_local'])}" for s, r in ranking.items())
    ranked = next(iter(ranking.values()))["problems_ranked"]
    return (f"Within-problem AUROC (min aggregation, {ranked} problems with both right and wrong samples): "
            f"{within}. Step AUROC against the checker's labels: {steps}. The PRMs trained on the weak "
            f"policy's OmegaPRM annotation (--paths {cfg.paths}), {cfg.prm_steps} steps at lr {cfg.prm_lr:g}.")


def _interesting_tree(ann_dir: Path) -> dict | None:
    """The annotated tree with the most states (skipped problems have one)."""
    best = None
    for f in sorted((ann_dir / "trees").glob("*.json")):
        tree = json.loads(f.read_text())
        if not tree["skipped"] and (best is None or len(tree["states"]) > len(best["states"])):
            best = tree
    return best
