"""One self-contained HTML page: results, problems with their figure, each
candidate's steps coloured by PRM score, and one annotation tree.

Images are embedded as data URIs, so the page works when opened from disk
and can be mailed around. No scripts are needed to read it; one small
script only records, for tests, how many images decoded.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path

from mmprm.types import Problem, Solution

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table.results { border-collapse: collapse; font-size: 0.85em; }
table.results td, table.results th { border: 1px solid #ccc; padding: 3px 7px; text-align: right; }
table.results td:first-child { text-align: left; }
.problem { display: flex; gap: 1.5em; margin: 1.5em 0; padding: 1em; border: 1px solid #e3e3e3; border-radius: 6px; }
.problem img { width: 168px; height: 168px; image-rendering: pixelated; border: 1px solid #ccc; }
.candidates { flex: 1; }
.candidate { margin: 0.4em 0; padding: 0.3em 0.5em; border-left: 4px solid #bbb; }
.candidate.right { border-left-color: #2a9d3a; } .candidate.wrong { border-left-color: #c0392b; }
.step { display: inline-block; margin: 2px; padding: 1px 6px; border-radius: 4px; font-family: monospace; }
.meta { font-size: 0.8em; color: #666; }
.critique { font-size: 0.75em; color: #444; margin: 2px 0 0 1em; white-space: pre-wrap; }
.tree ul { list-style: none; padding-left: 1.4em; border-left: 1px dotted #aaa; }
.tree li { margin: 3px 0; }
.legend span { padding: 1px 8px; margin-right: 4px; border-radius: 4px; font-size: 0.8em; }
"""


def _colour(score: float, bounded: bool) -> str:
    p = score if bounded else 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, score))))
    return f"hsl({120 * max(0.0, min(1.0, p)):.0f}, 70%, 82%)"


def _image_src(ref: str) -> str:
    if ref.startswith("data:"):
        return ref
    data = Path(ref).read_bytes()
    kind = "png" if data[:4] == b"\x89PNG" else "jpeg"
    return f"data:image/{kind};base64," + base64.b64encode(data).decode()


def _candidate(sol: Solution, bounded: bool) -> str:
    steps = "".join(
        f'<span class="step" style="background:{_colour(s, bounded)}" title="score {s:.3f}">{html.escape(t)}</span>'
        for t, s in zip(sol.steps, sol.step_scores or [0.5] * len(sol.steps)))
    verdict = "right" if sol.correct else "wrong"
    return (f'<div class="candidate {verdict}">{steps} <span class="meta">→ {html.escape(str(sol.answer))} '
            f'({verdict}; min score {min(sol.step_scores or [0]):.2f})</span>{_critique(sol)}</div>')


def _critique(sol: Solution) -> str:
    """A generative PRM's critique, shown beside the steps it judged."""
    text = sol.meta.get("critique")
    return f'<pre class="critique">{html.escape(text)}</pre>' if isinstance(text, str) and text else ""


def _tree(tree: dict) -> str:
    states = {s["id"]: s for s in tree["states"]}

    def node(sid: int, parent_len: int) -> str:
        s = states[sid]
        span = " / ".join(s["steps"][parent_len:]) or "(question)"
        mc = s["mc"]
        label = "?" if mc is None else f"{mc:.2f}"
        colour = "#eee" if mc is None else _colour(mc, True)
        kids = "".join(node(c, len(s["steps"])) for c in s["children"])
        return (f'<li><span class="step" style="background:{colour}">MC {label}</span> '
                f'{html.escape(span)} <span class="meta">({len(s["rollouts"])} rollouts, '
                f'{s["visits"]} visits)</span>' + (f"<ul>{kids}</ul>" if kids else "") + "</li>")

    return f'<div class="tree"><ul>{node(0, 0)}</ul></div>'


def render_page(title: str, results_html: str, problems: list[Problem],
                candidates: dict[str, list[Solution]], *, bounded: bool = True,
                tree: dict | None = None, tree_problem: Problem | None = None, notes: list[str] = ()) -> str:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{STYLE}</style></head><body>", f"<h1>{html.escape(title)}</h1>", results_html]
    parts += [f"<p class='meta'>{html.escape(n)}</p>" for n in notes]
    parts.append("<h2>Problems and candidate solutions</h2><p class='legend'>Step colour = PRM score: "
                 f"<span style='background:{_colour(0.05, True)}'>low</span>"
                 f"<span style='background:{_colour(0.5, True)}'>0.5</span>"
                 f"<span style='background:{_colour(0.95, True)}'>high</span></p>")
    for problem in problems:
        imgs = "".join(f'<img alt="figure of {html.escape(problem.id)}" src="{_image_src(r)}">'
                       for r in problem.images)
        cands = "".join(_candidate(s, bounded) for s in candidates.get(problem.id, []))
        parts.append(f'<div class="problem" id="p-{html.escape(problem.id)}">{imgs}<div class="candidates">'
                     f"<b>{html.escape(problem.question)}</b> <span class='meta'>reference answer "
                     f"{html.escape(problem.answer)}</span>{cands}</div></div>")
    if tree is not None and tree_problem is not None:
        parts.append(f"<h2>An OmegaPRM annotation tree: {html.escape(tree_problem.question)} "
                     f"(answer {html.escape(tree_problem.answer)})</h2>" + _tree(tree))
    parts.append("<script>addEventListener('load', () => { document.body.dataset.imagesLoaded = "
                 "[...document.images].filter(i => i.complete && i.naturalWidth > 0).length; });</script>")
    parts.append("</body></html>")
    return "\n".join(parts)


def results_table(rows: dict[str, dict[str, float]], columns: list[str]) -> str:
    """A plain HTML table: rows = method -> {column: accuracy in [0, 1]}."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        f"<tr><td>{html.escape(m)}</td>" + "".join(
            f"<td>{100 * v[c]:.1f}</td>" if c in v else "<td>–</td>" for c in columns) + "</tr>"
        for m, v in rows.items())
    return f'<table class="results"><tr><th>method</th>{head}</tr>{body}</table>'
