"""The block planner: sizes, overrides, chunk alignment, caps."""

from __future__ import annotations

import os
import subprocess
import sys

import dask
import numpy as np
import pytest

from dredux import ShapeError
from dredux.backends import BACKENDS
from dredux.plan import BlockPlan, make_plan, split_sizes

CPU_SECONDS_PER_COST = BACKENDS["cpu"].seconds_per_cost


def tiles(plan: BlockPlan, m: int, n: int) -> None:
    """The plan's rows and column ranges tile [0, m) x [0, n) exactly."""
    assert sum(plan.rows) == m and all(r >= 0 for r in plan.rows)
    at = 0
    for c0, c1 in plan.cols:
        assert c0 == at and c1 >= c0
        at = c1
    assert at == n


@pytest.mark.parametrize("total,parts", [(10, 3), (7, 7), (5, 9), (0, 3), (1, 1), (100, 1)])
def test_split_sizes(total, parts):
    sizes = split_sizes(total, parts)
    assert sum(sizes) == total
    assert max(sizes) - min(sizes) <= 1


def test_small_problem_is_one_task():
    plan = make_plan(1000, 1000, 20.0, "cpu", workers=2)
    assert plan.n_tasks == 1 and plan.rows == (1000,) and plan.cols == ((0, 1000),)


def test_a_fraction_of_a_second_still_uses_every_worker():
    # 0.15 s of work on one thread: a single task would leave a core idle
    m = n = 30000
    cost = 0.15 / (m * n * CPU_SECONDS_PER_COST)
    assert make_plan(m, n, cost, "cpu", workers=2).n_tasks >= 2
    assert make_plan(m, n, cost, "cpu", workers=1).n_tasks == 1  # nothing to gain


@pytest.mark.parametrize("formula,aliases,work", [
    ("MatVecMult(a, x - y)", ["x = Vi(64)", "y = Vj(64)", "a = Pm(4096)"], 4096),
    ("VecMatMult(x - y, a)", ["x = Vi(64)", "y = Vj(64)", "a = Vi(192)"], 192),
    ("WeightedSqDist(s, x, y)", ["x = Vi(64)", "y = Vj(64)", "s = Pm(4096)"], 4096),
    ("TensorDot(a, y, [8, 16], [16], [1], [0])", ["a = Vi(128)", "y = Vj(16)"], 128),
    ("TensorDot(a, b, [4, 8], [8, 6], [1], [0])", ["a = Vi(32)", "b = Vj(48)"], 4 * 8 * 6),
])
def test_products_cost_their_multiply_adds(formula, aliases, work):
    """A product's cost counts its m x n multiply-adds, not its m outputs: a
    4,000 x 4,000 WeightedSqDist with a 64 x 64 metric (4096 per pair) was
    planned as one task, on one core of two."""
    from dredux import Genred
    from dredux.plan import pair_cost

    g = Genred(formula, aliases, axis=1)
    cost = pair_cost(g.formulas, g.reduction, "float32")
    assert work <= cost <= work + 400  # the element-wise ops and the sum add the rest
    assert make_plan(4000, 4000, cost, "cpu", workers=2).n_tasks >= 2 or work < 1000


def test_big_problem_has_work_for_every_worker():
    m = n = 10**6
    plan = make_plan(m, n, 20.0, "cpu", workers=4)
    tiles(plan, m, n)
    assert plan.n_tasks >= 4 * 4
    seconds = m * n * 20.0 * CPU_SECONDS_PER_COST / plan.n_tasks
    assert seconds >= 0.05  # tasks long enough to amortise Dask's overhead


@pytest.mark.parametrize("m,n,bm,bn", [(100, 100, 7, 9), (5, 3, 1, 1), (64, 64, 64, 64),
                                       (65, 63, 64, 64)])
def test_block_size_override(m, n, bm, bn):
    plan = make_plan(m, n, 1.0, "numpy", workers=2, block_size=(bm, bn))
    tiles(plan, m, n)
    assert max(plan.rows) <= bm and len(plan.rows) == -(-m // bm)
    assert max(c1 - c0 for c0, c1 in plan.cols) <= bn


def test_config_and_environment_overrides():
    with dask.config.set({"dredux.block-size": 10, "dredux.split-every": 3}):
        plan = make_plan(95, 40, 1.0, "numpy", workers=1)
    assert len(plan.rows) == 10 and len(plan.cols) == 4 and plan.split_every == 3
    code = ("from dredux.plan import make_plan; p = make_plan(95, 40, 1.0, 'numpy', 1); "
            "print(len(p.rows), len(p.cols), p.split_every)")
    env = dict(os.environ, DREDUX_BLOCK_SIZE="[20, 8]", DREDUX_SPLIT_EVERY="5")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == ["5", "5", "5"]


def test_explicit_arguments_beat_config():
    with dask.config.set({"dredux.block-size": 10}):
        plan = make_plan(95, 40, 1.0, "numpy", workers=1, block_size=(50, 40))
    assert len(plan.rows) == 2 and len(plan.cols) == 1


def test_dask_chunks_are_the_output_chunks_and_tasks_cut_them():
    plan = make_plan(100, 1000, 1.0, "numpy", 2, block_size=(10, 300),
                     row_chunks=(30, 30, 40), col_chunks=(100,) * 10)
    assert plan.chunks == (30, 30, 40)
    assert plan.rows == (10,) * 10  # row blocks of 10 rows, never across a chunk edge
    assert plan.blocks_per_chunk == (3, 3, 4)
    tiles(plan, 100, 1000)
    # column ranges are cut at the input's chunk edges
    assert all(c0 % 100 == 0 and c1 % 100 == 0 for c0, c1 in plan.cols)


@pytest.mark.parametrize("m, workers", [(200_000, 2), (200_000, 16), (10**7, 64)])
def test_one_input_chunk_still_gives_every_worker_tasks(m, workers):
    """Tasks follow the work, not the input's chunks: a single chunk of rows (and
    of columns) is cut into row blocks and column ranges like in-memory inputs."""
    cost = 20.0
    plan = make_plan(m, m, cost, "cpu", workers, row_chunks=(m,), col_chunks=(m,))
    free = make_plan(m, m, cost, "cpu", workers)
    assert plan.chunks == (m,)
    assert plan.n_tasks >= workers
    assert (plan.rows, plan.cols) == (free.rows, free.cols)
    tiles(plan, m, m)


def test_row_blocks_never_cross_chunk_edges():
    plan = make_plan(1000, 1000, 1.0, "numpy", 2, block_size=(64, 1000),
                     row_chunks=(100, 1, 899))
    at, edges = 0, {0, 100, 101, 1000}
    starts = []
    for size in plan.rows:
        starts.append(at)
        at += size
    assert edges - {1000} <= set(starts)
    assert max(plan.rows) <= 64
    assert sum(plan.blocks_per_chunk) == len(plan.rows)


def test_huge_chunk_is_cut():
    plan = make_plan(10, 10_000, 1.0, "numpy", 2, block_size=(10, 1000), col_chunks=(10_000,))
    tiles(plan, 10, 10_000)
    assert len(plan.cols) == 10


def test_memory_budget_bounds_blocks():
    with dask.config.set({"dredux.memory-per-task": "1 MiB"}):
        plan = make_plan(10**6, 10**6, 1.0, "cpu", 2, row_bytes=800, col_bytes=800,
                         state_bytes=800)
    assert max(plan.rows) * 1600 <= 2**20
    assert max(c1 - c0 for c0, c1 in plan.cols) * 800 <= 2**20


def test_graph_cap():
    with dask.config.set({"dredux.max-tasks-per-worker": 10}):
        plan = make_plan(10**5, 10**5, 1.0, "numpy", 2, block_size=(100, 100))
    assert plan.n_tasks <= 20


def test_bad_options():
    with pytest.raises(ShapeError, match=r"split_every .* must be an integer >= 2, got 1"):
        make_plan(10, 10, 1.0, "numpy", 1, split_every=1)
    with pytest.raises(ShapeError, match=r"block_size .* got \(0, 5\)"):
        make_plan(10, 10, 1.0, "numpy", 1, block_size=(0, 5))
    with pytest.raises(ShapeError, match="block_size must be an int or a pair"):
        make_plan(10, 10, 1.0, "numpy", 1, block_size="big")


def test_graph_size_counts_merges():
    plan = BlockPlan(rows=(5, 5), cols=tuple((k, k + 1) for k in range(9)), split_every=3)
    # per row block: 9 blocks, 3 merges, 1 top merge that also finalizes
    assert plan.graph_size() == 2 * (9 + 3 + 1)
    one_range = BlockPlan(rows=(5, 5, 5), cols=((0, 9),), split_every=3)
    assert one_range.graph_size() == 3  # each block task finalizes its row block
    # two output chunks of two row blocks each: a concatenation task per chunk
    joined = BlockPlan(rows=(5, 5, 5, 5), cols=((0, 9),), split_every=3, chunks=(10, 10))
    assert joined.graph_size() == 4 + 2


def test_numpy_integer_block_sizes_are_integers():
    """Sizes computed with NumPy (np.int64) are block sizes like Python ints."""
    for block in (np.int64(10), (np.int32(10), 25), [10, np.int64(25)]):
        plan = make_plan(95, 100, 1.0, "numpy", workers=1, block_size=block)
        assert plan.rows[0] == 10 and all(type(r) is int for r in plan.rows), block
    plan = make_plan(95, 100, 1.0, "numpy", workers=1, block_size=(np.int64(10), 25))
    assert plan.cols[0] == (0, 25)
