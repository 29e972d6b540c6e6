"""Reductions: identity, block update, merge and finalize of partial states.

A *partial state* is a tuple of arrays whose first axis is the output row.
Every backend produces the same state for a block (i rows x j columns), and
the same :meth:`Reduction.merge` combines two states, whether they come from
two tiles of one kernel, two blocks of one worker, or two branches of the Dask
tree. The host functions here take the array module ``xp`` so they run on
NumPy and CuPy arrays alike.

=================  ======================================  =====================
family             state per output row                    merge
=================  ======================================  =====================
sum                acc[D] (+ comp[D] for Kahan)            a + b (two-sum)
max / min          val[D]                                  max / min
argmax / argmin    val[D], idx[D]                          better; tie: smaller idx
kmin               val[K, D], idx[K, D] (sorted)           merge sorted lists
lse                m[1], s[E] (+ comp[E] for Kahan)        M = max(m, m'); rescale
=================  ======================================  =====================

NaN values of the formula are treated as -inf by Max-type reductions and as
+inf by Min-type ones (they never win); Sum and LogSumExp propagate them.
Indices are global (the block's offset is added), int64, and -1 where no
column was seen (K > N, or N = 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import DtypeError, FormulaError

__all__ = ["Reduction", "make_reduction", "REDUCTIONS", "IDX_NONE", "SUM_SCHEMES"]

IDX_NONE = np.iinfo(np.int64).max  # "no index yet": loses every tie
SUM_SCHEMES = ("direct_sum", "block_sum", "kahan_scheme")

# KeOps name -> (family, output layout)
REDUCTIONS: dict[str, tuple[str, str]] = {
    "Sum": ("sum", "sum"),
    "Max": ("max", "val"),
    "Min": ("min", "val"),
    "ArgMax": ("argmax", "idx"),
    "ArgMin": ("argmin", "idx"),
    "Max_ArgMax": ("argmax", "val_idx"),
    "Min_ArgMin": ("argmin", "val_idx"),
    "KMin": ("kmin", "val"),
    "ArgKMin": ("kmin", "idx"),
    "KMin_ArgKMin": ("kmin", "val_idx"),
    "LogSumExp": ("lse", "log"),
    "LogSumExpWeight": ("lse", "log"),
    "SumSoftMaxWeight": ("lse", "softmax"),
    "Max_SumShiftExp": ("lse", "raw"),
    "Max_SumShiftExpWeight": ("lse", "raw"),
}
_SPELLINGS = {"MaxArgMax": "Max_ArgMax", "MinArgMin": "Min_ArgMin",
              "KMinArgKMin": "KMin_ArgKMin", "SoftMax": "SumSoftMaxWeight"}
_NEEDS_WEIGHT = {"LogSumExpWeight", "SumSoftMaxWeight", "Max_SumShiftExpWeight"}
_TAKES_WEIGHT = _NEEDS_WEIGHT | {"LogSumExp"}


@dataclass(frozen=True)
class Reduction:
    """One reduction, fully specified for a formula.

    Attributes
    ----------
    name : str
        KeOps name, e.g. ``"ArgKMin"``.
    family : str
        ``sum``, ``max``, ``min``, ``argmax``, ``argmin``, ``kmin`` or ``lse``.
    dim : int
        Dimension D of the formula F.
    weight_dim : int
        Dimension E of the weights (``formula2``), 0 when there are none.
    k : int
        K of the KMin family, else 1.
    kahan : bool
        Carry compensation terms (``sum_scheme="kahan_scheme"``).
    """

    name: str
    family: str
    dim: int
    weight_dim: int = 0
    k: int = 1
    kahan: bool = False

    # layout -------------------------------------------------------------
    @property
    def layout(self) -> str:
        return REDUCTIONS[self.name][1]

    @property
    def sum_dim(self) -> int:
        """Length of the ``s`` field of an lse state."""
        if self.name == "SumSoftMaxWeight":
            return 1 + self.weight_dim
        return self.weight_dim or 1

    def fields(self) -> list[tuple[str, tuple[int, ...], str]]:
        """The state's arrays as (name, shape after the row axis, 'acc' or 'idx')."""
        d, k = self.dim, self.k
        fam = self.family
        if fam == "sum":
            f = [("acc", (d,), "acc")]
            return f + [("comp", (d,), "acc")] if self.kahan else f
        if fam in ("max", "min"):
            return [("val", (d,), "acc")]
        if fam in ("argmax", "argmin"):
            return [("val", (d,), "acc"), ("idx", (d,), "idx")]
        if fam == "kmin":
            return [("val", (k, d), "acc"), ("idx", (k, d), "idx")]
        e = self.sum_dim
        f = [("m", (1,), "acc"), ("s", (e,), "acc")]
        return f + [("comp", (e,), "acc")] if self.kahan else f

    def outputs(self) -> list[tuple[tuple[int, ...], str]]:
        """Shape after the row axis and kind ('val' or 'idx') of each output."""
        d, k = self.dim, self.k
        layout = self.layout
        if self.family == "kmin":
            shape = (k,) if d == 1 else (k, d)
        elif self.family == "lse":
            shape = {"log": (self.sum_dim,), "softmax": (self.weight_dim,),
                     "raw": (1 + self.sum_dim,)}[layout]
        else:
            shape = (d,)
        if layout == "idx":
            return [(shape, "idx")]
        if layout == "val_idx":
            return [(shape, "val"), (shape, "idx")]
        return [(shape, "val")]

    # identity -------------------------------------------------------------
    def identity(self, rows: int, acc_dtype, xp=np) -> tuple:
        """The state of a block with no column."""
        out = []
        for name, shape, kind in self.fields():
            full = (rows, *shape)
            if kind == "idx":
                out.append(xp.full(full, IDX_NONE, dtype=np.int64))
            elif name == "val" or name == "m":
                low = self.family in ("max", "argmax", "lse")
                out.append(xp.full(full, -np.inf if low else np.inf, dtype=acc_dtype))
            else:
                out.append(xp.zeros(full, dtype=acc_dtype))
        return tuple(out)

    # reference block update ---------------------------------------------------
    def block_state(self, f, g, j0: int, acc_dtype, xp=np) -> tuple:
        """State of one block from formula values.

        Parameters
        ----------
        f : array (rows, cols, D)
            Values of the formula for every pair of the block.
        g : array (rows, cols, E) or None
            Values of ``formula2`` (weights), for the weighted lse reductions.
        j0 : int
            Global index of the block's first column.
        """
        rows, cols = f.shape[0], f.shape[1]
        if cols == 0:
            return self.identity(rows, acc_dtype, xp)
        fam = self.family
        f = f.astype(acc_dtype, copy=False)
        if fam == "sum":
            acc = f.sum(axis=1)
            return (acc, xp.zeros_like(acc)) if self.kahan else (acc,)
        if fam in ("max", "min", "argmax", "argmin", "kmin"):
            low = fam in ("max", "argmax")
            clean = xp.where(xp.isnan(f), -np.inf if low else np.inf, f)
            if fam == "max":
                return (clean.max(axis=1),)
            if fam == "min":
                return (clean.min(axis=1),)
            if fam in ("argmax", "argmin"):
                best = clean.argmax(axis=1) if low else clean.argmin(axis=1)
                val = xp.take_along_axis(clean, best[:, None, :], axis=1)[:, 0, :]
                return (val, best.astype(np.int64) + j0)
            order = xp.argsort(clean, axis=1, kind="stable")[:, : self.k, :]
            val = xp.take_along_axis(clean, order, axis=1)
            idx = order.astype(np.int64) + j0
            if cols < self.k:
                pad = self.identity(rows, acc_dtype, xp)
                val = xp.concatenate([val, pad[0][:, : self.k - cols]], axis=1)
                idx = xp.concatenate([idx, pad[1][:, : self.k - cols]], axis=1)
            return (val, idx)
        # lse family: f is scalar, the weights g are (rows, cols, E)
        if self.name == "SumSoftMaxWeight":
            ones = xp.ones(g.shape[:2] + (1,), dtype=acc_dtype)
            g = xp.concatenate([ones, g.astype(acc_dtype, copy=False)], axis=2)
        elif g is None:
            g = xp.ones(f.shape, dtype=acc_dtype)
        else:
            g = g.astype(acc_dtype, copy=False)
        m = f.max(axis=1)  # (rows, 1)
        shift = xp.where(xp.isneginf(m), 0, m)
        s = (xp.exp(f - shift[:, None, :]) * g).sum(axis=1)
        return (m, s, xp.zeros_like(s)) if self.kahan else (m, s)

    # merge ------------------------------------------------------------------
    def merge(self, a: tuple, b: tuple, xp=np) -> tuple:
        """Combine two states of the same rows (associative and commutative)."""
        fam = self.family
        if fam == "sum":
            if not self.kahan:
                return (a[0] + b[0],)
            s, err = _two_sum(a[0], b[0])
            return (s, a[1] + b[1] + err)
        if fam == "max":
            return (xp.maximum(a[0], b[0]),)
        if fam == "min":
            return (xp.minimum(a[0], b[0]),)
        if fam in ("argmax", "argmin"):
            first = a[0] > b[0] if fam == "argmax" else a[0] < b[0]
            keep_a = first | ((a[0] == b[0]) & (a[1] <= b[1]))
            return (xp.where(keep_a, a[0], b[0]), xp.where(keep_a, a[1], b[1]))
        if fam == "kmin":
            val = xp.concatenate([a[0], b[0]], axis=1)
            idx = xp.concatenate([a[1], b[1]], axis=1)
            by_idx = xp.argsort(idx, axis=1, kind="stable")
            val = xp.take_along_axis(val, by_idx, axis=1)
            idx = xp.take_along_axis(idx, by_idx, axis=1)
            by_val = xp.argsort(val, axis=1, kind="stable")[:, : self.k]
            return (xp.take_along_axis(val, by_val, axis=1),
                    xp.take_along_axis(idx, by_val, axis=1))
        m = xp.maximum(a[0], b[0])
        scale_a = _rescale(a[0], m, xp)
        scale_b = _rescale(b[0], m, xp)
        sa, sb = a[1] * scale_a, b[1] * scale_b
        if not self.kahan:
            return (m, sa + sb)
        s, err = _two_sum(sa, sb)
        return (m, s, a[2] * scale_a + b[2] * scale_b + err)

    # finalize -----------------------------------------------------------------
    def finalize(self, state: tuple, dtype, xp=np):
        """Output array(s) of a state, in the KeOps layout: an array or a tuple."""
        fam = self.family
        layout = self.layout
        if fam == "sum":
            acc = state[0] + state[1] if self.kahan else state[0]
            return acc.astype(dtype)
        if fam in ("max", "min"):
            return state[0].astype(dtype)
        if fam in ("argmax", "argmin", "kmin"):
            val = state[0].astype(dtype)
            idx = xp.where(state[1] == IDX_NONE, -1, state[1])
            if fam == "kmin" and self.dim == 1:
                val, idx = val[..., 0], idx[..., 0]
            return {"val": val, "idx": idx, "val_idx": (val, idx)}[layout]
        m, s = state[0], state[1]
        if self.kahan:
            s = s + state[2]
        if layout == "log":
            with np.errstate(divide="ignore"):
                out = m + xp.log(s)
        elif layout == "softmax":
            with np.errstate(invalid="ignore", divide="ignore"):
                out = s[:, 1:] / s[:, :1]
        else:
            out = xp.concatenate([m, s], axis=1)
        return out.astype(dtype)


def _two_sum(a, b):
    """s = fl(a + b) and the exact rounding error (Knuth's TwoSum)."""
    s = a + b
    bp = s - a
    err = (a - (s - bp)) + (b - bp)
    return s, err


def _rescale(m, new_m, xp):
    """exp(m - new_m), with empty partials (m = -inf) giving 0, never NaN."""
    with np.errstate(invalid="ignore", over="ignore"):
        return xp.where(xp.isneginf(m), 0, xp.exp(m - xp.where(xp.isneginf(new_m), 0, new_m)))


def make_reduction(reduction_op: str, dim: int, weight_dim: int = 0,
                   opt_arg: int | None = None, sum_scheme: str = "auto") -> Reduction:
    """Validate the user's reduction options and build the :class:`Reduction`.

    Parameters
    ----------
    reduction_op : str
        A KeOps reduction name (``"Sum"``, ``"ArgKMin"``, ``"LogSumExp"``...).
    dim, weight_dim : int
        Dimensions of the formula and of ``formula2`` (0 if none).
    opt_arg : int, optional
        K for the KMin family.
    sum_scheme : str
        ``"auto"``, ``"direct_sum"``, ``"block_sum"`` or ``"kahan_scheme"``.
    """
    if not isinstance(reduction_op, str):
        raise FormulaError(f"reduction_op must be a string, got {reduction_op!r}",
                           hint=f"Use one of: {', '.join(REDUCTIONS)}.")
    name = _SPELLINGS.get(reduction_op, reduction_op)
    if name not in REDUCTIONS:
        import difflib

        near = difflib.get_close_matches(reduction_op, list(REDUCTIONS), n=1)
        hint = f"Did you mean '{near[0]}'? " if near else ""
        raise FormulaError(f"unknown reduction_op {reduction_op!r}",
                           hint=f"{hint}Expected one of: {', '.join(REDUCTIONS)}.")
    family = REDUCTIONS[name][0]
    if weight_dim and name not in _TAKES_WEIGHT:
        raise FormulaError(
            f"formula2 was given, but reduction {name!r} takes a single formula",
            hint="formula2 goes with LogSumExp, LogSumExpWeight, SumSoftMaxWeight "
            "and Max_SumShiftExpWeight.")
    if name in _NEEDS_WEIGHT and not weight_dim:
        raise FormulaError(f"reduction {name!r} needs the weights as formula2",
                           hint="Pass formula2=\"...\" (a vector formula g) to compute "
                           "sum_j exp(f_ij) g_ij.")
    if family == "lse" and dim != 1:
        raise FormulaError(
            f"reduction {name!r} needs a scalar formula, got one of dimension {dim}",
            hint="Reduce the formula to one value per pair, or use formula2 for "
            "vector weights.")
    k = 1
    if family == "kmin":
        if opt_arg is None or isinstance(opt_arg, bool) or not isinstance(
                opt_arg, (int, np.integer)) or opt_arg < 1:
            raise FormulaError(
                f"reduction {name!r} needs opt_arg = K, a positive integer; got "
                f"{opt_arg!r}", hint="Pass e.g. opt_arg=10 for the 10 smallest values.")
        k = int(opt_arg)
    if sum_scheme not in ("auto", *SUM_SCHEMES):
        raise FormulaError(f"unknown sum_scheme {sum_scheme!r}",
                           hint=f"Expected 'auto' or one of {', '.join(SUM_SCHEMES)}.")
    kahan = sum_scheme == "kahan_scheme" and family in ("sum", "lse")
    return Reduction(name, family, dim, weight_dim, k, kahan)


def acc_dtype_for(dtype, dtype_acc: str = "auto", use_double_acc: bool = False) -> np.dtype:
    """The accumulator dtype for inputs of ``dtype`` (KeOps's rules).

    ``auto`` accumulates float16 in float32 and other dtypes in themselves.
    """
    dtype = np.dtype(dtype)
    if use_double_acc:
        if dtype_acc not in ("auto", "float64"):
            raise DtypeError(f"use_double_acc=True conflicts with dtype_acc={dtype_acc!r}",
                             )
        dtype_acc = "float64"
    if dtype_acc == "auto":
        return np.dtype(np.float32) if dtype == np.float16 else dtype
    allowed = {np.float16: ("float16", "float32"), np.float32: ("float32", "float64"),
               np.float64: ("float64",)}[dtype.type]
    if dtype_acc not in allowed:
        raise DtypeError(
            f"dtype_acc={dtype_acc!r} is not allowed for {dtype.name} inputs; expected "
            f"'auto' or one of {', '.join(allowed)}")
    return np.dtype(dtype_acc)
