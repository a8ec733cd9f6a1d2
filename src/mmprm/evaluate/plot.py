"""The accuracy-against-N plot of a report (PNG, no display needed)."""

from __future__ import annotations

from pathlib import Path

SHOWN = ("pass@k", "majority", "random", "bon_min", "bon_last", "bon_product", "weighted_min", "weighted_last")


def plot_accuracy(report: dict, path: Path, *, title: str, methods: list[str] | None = None) -> None:
    """One line per method (default: the PRM-free ones and a few PRM rules),
    with its bootstrap interval as a band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for method, by_n in report["methods"].items():
        if method not in (methods or SHOWN):
            continue
        ns = sorted(int(n) for n in by_n)
        acc = [100 * by_n[str(n)] for n in ns]
        lo = [100 * report["intervals"][method][str(n)][0] for n in ns]
        hi = [100 * report["intervals"][method][str(n)][1] for n in ns]
        style = "--" if method in ("pass@k", "random") else "-"
        (line,) = ax.plot(ns, acc, style, marker="o", markersize=3, label=method)
        ax.fill_between(ns, lo, hi, color=line.get_color(), alpha=0.12)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("N (candidates per problem)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
