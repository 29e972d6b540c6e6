"""Formulas and reductions that the CUDA tests compile (here) and run (on a GPU).

Every op of the formula language appears in one of ``OP_GROUPS``; each group
is one kernel whose formula concatenates its terms, so that a handful of
compiles covers the whole op table. Inputs come from ``DOMAINS``: values
where every term is defined, and discontinuous ops (Floor, comparisons...)
act on exactly rounded arithmetic only, so that float32 results agree
bit for bit at the jumps.
"""

from __future__ import annotations

import numpy as np

ALIASES = ["x = Vi(3)", "y = Vj(3)", "u = Vi(1)", "v = Vj(1)", "w = Vj(9)", "p = Pm(1)"]

# (low, high) of the uniform values of each alias
DOMAINS = {"x": (-0.9, 0.9), "y": (-0.9, 0.9), "u": (0.2, 0.9), "v": (0.2, 0.9),
           "w": (-1.0, 1.0), "p": (0.5, 1.5)}

OP_GROUPS = {
    "arith": [
        "x + y", "x - y", "x * y", "x / v", "-x",
        "Equal(Floor(4 * x), Floor(4 * y))", "NotEqual(Floor(4 * x), Floor(4 * y))",
        "LessThan(x, y)", "LessOrEqual(x, y)", "GreaterThan(x, y)", "GreaterOrEqual(x, y)",
        "Clamp(x, -v, v)", "ClampInt(4 * x, -1, 2)", "IfElse(x - y, x, y)",
        "Mod(4 * x, v + 1, 0.25)",
    ],
    "math": [
        "Exp(x)", "Log(v)", "XLogX(v)", "Sin(x)", "Cos(x)", "Asin(x)", "Acos(x)", "Atan(x)",
        "SinXDivX(x)", "Sqrt(v)", "Rsqrt(v)", "Square(x)", "Inv(v)", "Abs(x)", "Sign(x)",
        "Step(x)", "ReLU(x)", "Floor(4 * x)", "Round(x, 2)", "Pow(x, 3)", "Powf(v, p)",
        "Atan2(x, y)",
    ],
    "vector": [
        "Sum(x)", "SumT(u, 3)", "Max(x)", "Min(x)", "ArgMax(x)", "ArgMin(x)", "x | y",
        "Elem(x, 1)", "ElemT(u, 3, 1)", "Extract(Concat(x, y), 2, 3)", "ExtractT(u, 1, 3)",
        "OneHot(4 * v, 4)", "MatVecMult(w, x)", "VecMatMult(x, w)", "TensorProd(x, y)",
        "TensorDot(w, y, [3, 3], [3], [1], [0])",
    ],
}


def concat(terms: list[str]) -> str:
    """One formula holding every term: a balanced tree of Concat."""
    if len(terms) == 1:
        return terms[0]
    half = len(terms) // 2
    return f"Concat({concat(terms[:half])}, {concat(terms[half:])})"


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
