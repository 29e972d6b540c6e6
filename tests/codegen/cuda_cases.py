"""Formulas and reductions that the CUDA tests compile (here) and run (on a GPU).

``OP_GROUPS`` are the grouped formulas of the shared catalogue
(tests/op_cases.py): every case of every op, ~25 cases per kernel, so that a
handful of compiles covers the whole op table; each :class:`Group` draws its
inputs and gives every case's NumPy float64 reference. What is CUDA-specific
stays here: one formula per reduction (``REDUCTION_CASES``) over ``ALIASES``,
their inputs (uniform values in ``DOMAINS``) and their references
(``reduction_ref``), written out in NumPy float64.
"""

from __future__ import annotations

import numpy as np

from tests.op_cases import GROUPS, Group

__all__ = ["ALIASES", "DOMAINS", "OP_GROUPS", "REDUCTION_CASES", "inputs", "pair_values",
           "reduction_ref"]

OP_GROUPS: dict[str, Group] = GROUPS

ALIASES = ["x = Vi(3)", "y = Vj(3)", "u = Vi(1)", "v = Vj(1)", "w = Vj(9)", "p = Pm(1)"]

# (low, high) of the uniform values of each alias
DOMAINS = {"x": (-0.9, 0.9), "y": (-0.9, 0.9), "u": (0.2, 0.9), "v": (0.2, 0.9),
           "w": (-1.0, 1.0), "p": (0.5, 1.5)}


# reduction name -> (formula, formula2, opt_arg); formulas over ALIASES
REDUCTION_CASES = {
    "Sum": ("x * y + v", None, None),
    "Max": ("x * y + v", None, None),
    "Min": ("x * y + v", None, None),
    "ArgMax": ("x * y + v", None, None),
    "ArgMin": ("x * y + v", None, None),
    "Max_ArgMax": ("x * y + v", None, None),
    "Min_ArgMin": ("x * y + v", None, None),
    "KMin": ("x * y + v", None, 3),
    "ArgKMin": ("SqDist(x, y)", None, 5),
    "KMin_ArgKMin": ("x * y + v", None, 4),
    "LogSumExp": ("-SqDist(x, y)", None, None),
    "LogSumExpWeight": ("-SqDist(x, y)", "Exp(y) * v", None),
    "SumSoftMaxWeight": ("-SqDist(x, y)", "Exp(y) * v", None),
    "Max_SumShiftExp": ("-SqDist(x, y)", None, None),
    "Max_SumShiftExpWeight": ("-SqDist(x, y)", "Exp(y) * v", None),
}


def inputs(m: int, n: int, dtype, seed: int = 0) -> list[np.ndarray]:
    """Fresh random arguments for ALIASES: m rows (Vi), n columns (Vj)."""
    rng = np.random.default_rng(seed)
    out = []
    for alias in ALIASES:
        name, decl = (s.strip() for s in alias.split("="))
        kind, dim = decl[:2], int(decl[3:-1])
        lo, hi = DOMAINS[name]
        shape = (dim,) if kind == "Pm" else ((m if kind == "Vi" else n), dim)
        out.append(rng.uniform(lo, hi, size=shape).astype(dtype))
    return out


def pair_values(formula: str, args) -> np.ndarray:
    """F(x_i, y_j) for the REDUCTION_CASES formulas, in float64: (M, N, dim)."""
    x, y, u, v, w, p = (a.astype(np.float64) for a in args)
    xi, yj, vj = x[:, None, :], y[None, :, :], v[None, :, :]
    return {
        "x * y + v": xi * yj + vj,
        "SqDist(x, y)": ((xi - yj) ** 2).sum(-1, keepdims=True),
        "-SqDist(x, y)": -((xi - yj) ** 2).sum(-1, keepdims=True),
        "Exp(y) * v": np.broadcast_to(np.exp(yj) * vj, (x.shape[0], y.shape[0], 3)),
    }[formula]


def reduction_ref(name: str, args, axis: int = 1):
    """The finalized output of reduction ``name`` (over j, or over i for
    ``axis=0``) of REDUCTION_CASES, written out in NumPy float64."""
    formula, formula2, k = REDUCTION_CASES[name]
    f = pair_values(formula, args)
    if axis == 0:
        f = f.transpose(1, 0, 2)
    if name == "Sum":
        return f.sum(1)
    if name in ("Max", "Min"):
        return f.max(1) if name == "Max" else f.min(1)
    if name in ("ArgMax", "ArgMin", "Max_ArgMax", "Min_ArgMin"):
        best = f.argmax(1) if "Max" in name else f.argmin(1)
        val = np.take_along_axis(f, best[:, None, :], 1)[:, 0]
        return best if name.startswith("Arg") else (val, best)
    if name in ("KMin", "ArgKMin", "KMin_ArgKMin"):
        order = np.argsort(f, axis=1, kind="stable")[:, :k]
        val = np.take_along_axis(f, order, 1)
        if f.shape[2] == 1:
            val, order = val[..., 0], order[..., 0]
        return {"KMin": val, "ArgKMin": order, "KMin_ArgKMin": (val, order)}[name]
    m = f.max(1)  # (M, 1)
    e = np.exp(f - m[:, None, :])  # (M, N, 1)
    g = pair_values(formula2, args) if formula2 else np.ones_like(f)
    if formula2 and axis == 0:
        g = g.transpose(1, 0, 2)
    s = (e * g).sum(1)
    if name in ("LogSumExp", "LogSumExpWeight"):
        return m + np.log(s)
    if name == "SumSoftMaxWeight":
        return s / e.sum(1)
    return np.concatenate([m, s], axis=1)  # Max_SumShiftExp(Weight)
