"""Plots of the benchmark results, for the documentation's performance page.

    python benchmarks/plots.py [--results benchmarks/results] [--out benchmarks/results]

Reads the tables the benchmark scripts wrote (``benchmarks/results/*.md``: the
numbers of their own runs, nothing re-measured here) and draws one PNG per
table:

* ``latency.png``: pairs per second per call against the size M x N, dredux,
  pykeops and NumPy;
* ``cpu_vs_keops.png``: pairs per second of dredux and pykeops per case (log scale);
* ``highdim.png``: pairs per second against D, dredux, the BLAS baseline and pykeops;
* ``ranges.png``: time of a block-sparse call (fraction of the dense call) against
  the fraction of pairs kept, with the proportional line;
* ``scaling.png``: medians of the Dask scaling runs.

A table that is missing is skipped with a message.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def tables(text: str) -> list[list[dict]]:
    """The markdown tables of ``text``, each a list of {header: cell} rows."""
    out, block = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            block.append([c.strip() for c in line.strip().strip("|").split("|")])
            continue
        if len(block) > 2:
            header = block[0]
            out.append([dict(zip(header, row)) for row in block[2:]])
        block = []
    return out


def number(cell: str) -> float:
    found = re.search(r"[-+]?\d[\d,]*\.?\d*(?:e[-+]?\d+)?", cell.replace("**", ""))
    if not found:
        raise ValueError(f"no number in {cell!r}")
    return float(found.group(0).replace(",", ""))


def seconds(cell: str) -> float:
    value = number(cell)
    return value / 1e3 if "ms" in cell else value / 1e6 if "us" in cell else value


def plot_cpu_vs_keops(rows, plt, path: Path) -> None:
    labels = [f"{r['case']}\n{r['dtype']}" for r in rows]
    ours = [number(r["dredux pairs/s"]) for r in rows]
    theirs = [number(r["KeOps pairs/s"]) for r in rows]
    fig, ax = plt.subplots(figsize=(9, 4))
    xs = range(len(rows))
    ax.bar([x - 0.2 for x in xs], ours, 0.4, label="dredux (CPU)")
    ax.bar([x + 0.2 for x in xs], theirs, 0.4, label="pykeops 2.3 (CPU)")
    ax.set_yscale("log")
    ax.set_xticks(list(xs), labels, fontsize=7)
    ax.set_ylabel("pairs per second")
    ax.set_title("CPU backend vs pykeops (benchmarks/cpu_vs_keops.py)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_highdim(rows, plt, path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8), sharey=True)
    for ax, dtype in zip(axes, ("float32", "float64")):
        sel = [r for r in rows if r["dtype"] == dtype and r["case"] == "gaussian"]
        ds = [number(r["D"]) for r in sel]
        for column, label in (("dredux pairs/s", "dredux"), ("BLAS pairs/s", "NumPy + BLAS"),
                              ("KeOps pairs/s", "pykeops")):
            ax.plot(ds, [number(r[column]) for r in sel], "o-", label=label)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("D")
        ax.set_title(f"Gaussian matvec, {dtype}")
    axes[0].set_ylabel("pairs per second")
    axes[0].legend(fontsize=8)
    fig.suptitle("High dimensions (benchmarks/highdim.py)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_ranges(rows, plt, path: Path) -> None:
    sparse = [r for r in rows if r["cutoff"] != "dense"]
    kept = [number(r["kept fraction"]) for r in sparse]
    ratio = [number(r["time / dense"]) for r in sparse]
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(kept, ratio, "o-", label="dredux, ranges=")
    top = max(kept + ratio) * 1.1
    ax.plot([0, top], [0, top], "k--", lw=1, label="time proportional to kept pairs")
    ax.set_xlabel("fraction of pairs kept")
    ax.set_ylabel("time / dense time")
    ax.set_title("Block-sparse reductions (benchmarks/ranges.py)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_scaling(rows, plt, path: Path) -> None:
    runs = [r for r in rows if "median (s)" in r]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.barh([r["run"] for r in runs], [number(r["median (s)"]) for r in runs])
    ax.invert_yaxis()
    ax.set_xlabel("median seconds")
    ax.set_title("Dask scaling (benchmarks/scaling.py)", fontsize=10)
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_latency(rows, plt, path: Path) -> None:
    sizes = [tuple(int(v.replace(",", "")) for v in r["M x N"].split(" x ")) for r in rows]
    pairs = [m * n for m, n in sizes]
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for column, label in (("dredux", "dredux (CPU)"), ("pykeops", "pykeops (CPU)"),
                          ("NumPy", "NumPy")):
        ax.plot(pairs, [p / seconds(r[column]) for p, r in zip(pairs, rows)], "o-",
                label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("pairs M x N")
    ax.set_ylabel("pairs per second (per call)")
    ax.set_title("Seed formula, float64: throughput vs size\n(benchmarks/latency.py)",
                 fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


PLOTS = {"latency": plot_latency, "cpu_vs_keops": plot_cpu_vs_keops,
         "highdim": plot_highdim, "ranges": plot_ranges, "scaling": plot_scaling}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--out", type=Path, default=None, help="default: --results")
    args = parser.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = args.out or args.results
    out.mkdir(parents=True, exist_ok=True)
    for name, draw in PLOTS.items():
        source = args.results / f"{name}.md"
        if not source.exists():
            print(f"skipped {name}: no {source}", file=sys.stderr)
            continue
        found = tables(source.read_text())
        if not found:
            print(f"skipped {name}: no table in {source}", file=sys.stderr)
            continue
        draw(found[0], plt, out / f"{name}.png")
        plt.close("all")
        print(f"wrote {out / f'{name}.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
