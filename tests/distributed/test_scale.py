"""Graph size at scale: the plans of the Gaussian matvec for M = N = 10^6, 10^7,
10^8 stay under a few thousand tasks per worker, and the graph the API builds
has exactly the tasks the plan counts.

No process is started here; the tier is the one of cluster-sized problems.
Run with ``-s`` to see the table.
"""

from __future__ import annotations

import numpy as np
import pytest

from dredux import Genred, config
from dredux.backends import BACKENDS
from dredux.plan import make_plan

pytestmark = pytest.mark.distributed

FORMULA = "Exp(-g * SqDist(x, y)) * b"
ALIASES = ["x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "g = Pm(1)"]
FEW_THOUSAND = 5000  # graph tasks per worker: blocks + merges + finalizes


def gaussian_plan(size: int, workers: int):
    routine = Genred(FORMULA, ALIASES, axis=1)
    # bytes per row: x (3 float32), y and b (4 float32), the state (1 float64)
    return make_plan(size, size, routine._cost(), "cpu", workers,
                     row_bytes=12, col_bytes=16, state_bytes=8)


def test_task_counts_for_huge_problems(capsys):
    cap = int(config.get("max-tasks-per-worker"))
    rows = []
    for workers in (2, 16, 128):
        for exponent in (6, 7, 8):
            size = 10**exponent
            plan = gaussian_plan(size, workers)
            # the plan tiles the whole plane
            assert sum(plan.rows) == size and plan.cols[0][0] == 0
            assert all(a[1] == b[0] for a, b in zip(plan.cols, plan.cols[1:]))
            assert plan.cols[-1][1] == size
            per_worker = plan.graph_size() / workers
            assert plan.n_tasks <= cap * workers
            assert per_worker <= FEW_THOUSAND, (size, workers, per_worker)
            assert plan.n_tasks >= 2 * workers  # every worker has work
            seconds = size * size * Genred(FORMULA, ALIASES, axis=1)._cost() \
                * BACKENDS["cpu"].seconds_per_cost / plan.n_tasks
            rows.append((workers, exponent, len(plan.rows), len(plan.cols), plan.n_tasks,
                         plan.graph_size(), per_worker, seconds))
    with capsys.disabled():
        print("\nGaussian matvec plans (cpu backend)")
        print(f"{'workers':>7} {'M=N':>6} {'row blocks':>10} {'col ranges':>10} "
              f"{'block tasks':>11} {'graph tasks':>11} {'per worker':>10} {'s/task':>8}")
        for w, e, r, c, t, g, pw, s in rows:
            print(f"{w:>7} {'1e' + str(e):>6} {r:>10} {c:>10} {t:>11} {g:>11} {pw:>10.0f} "
                  f"{s:>8.2f}")


def test_the_graph_has_the_planned_tasks():
    da = pytest.importorskip("dask.array")
    size, workers = 10**6, 2
    plan = gaussian_plan(size, workers)
    routine = Genred(FORMULA, ALIASES, axis=1)
    widths = tuple(c1 - c0 for c0, c1 in plan.cols)
    x = da.zeros((size, 3), chunks=(plan.rows, 3), dtype=np.float32)
    y = da.zeros((size, 3), chunks=(widths, 3), dtype=np.float32)
    b = da.zeros((size, 1), chunks=(widths, 1), dtype=np.float32)
    g = np.ones(1, dtype=np.float32)
    out = routine(x, y, b, g, backend="numpy",
                  block_size=(max(plan.rows), max(widths)))  # lazy: nothing is computed
    graph = dict(out.__dask_graph__())
    inputs = sum(len(a.__dask_graph__()) for a in (x, y, b))
    ours = len(graph) - inputs
    kernel_and_params = 2  # the last task of a row block is its output chunk
    assert ours == plan.graph_size() + kernel_and_params, (
        ours, plan.graph_size())
