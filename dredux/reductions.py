"""Reductions: one record per family, one row per KeOps reduction name.

A *partial state* is a tuple of arrays whose first axis is the output row.
Every backend produces the same state for a block (i rows x j columns), and
the same :meth:`Reduction.merge` combines two states, whether they come from
two tiles of one kernel, two blocks of one worker, or two branches of the Dask
tree. The host functions take the array module ``xp`` so they run on NumPy
and CuPy arrays alike.

A :class:`Family` holds everything about its reductions (CuPy's reduction
skeleton: the record fills the slots): the state layout, identity, reference
block update, merge, finalize, the cost of an update, and the device state
templates of ``kernels/cpu/states/`` and ``kernels/cuda/states/`` with the
snippets the kernel needs. Nothing outside this module branches on a
reduction's name or family.

=============  ======================================  =====================
family         state per output row                    merge
=============  ======================================  =====================
sum            acc[D] (+ comp[D] for Kahan)            a + b (two-sum)
max / min      val[D]                                  max / min
argmax/argmin  val[D], idx[D]                          better; tie: smaller idx
kmin           val[K, D], idx[K, D] (sorted)           merge sorted lists
lse            m[1], s[E] (+ comp[E] for Kahan)        M = max(m, m'); rescale
=============  ======================================  =====================

NaN values of the formula are treated as -inf by Max-type reductions and as
+inf by Min-type ones (they never win); Sum and LogSumExp propagate them.
Indices are global (the block's offset is added), int64, and -1 where no
column was seen (K > N, or N = 0).
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from . import limits
from .errors import DtypeError, FormulaError, shown

__all__ = ["Reduction", "Family", "Field", "make_reduction", "REDUCTIONS", "IDX_NONE",
           "SUM_SCHEMES", "acc_dtype_for"]

IDX_NONE = np.iinfo(np.int64).max  # "no index yet": loses every tie
SUM_SCHEMES = ("direct_sum", "block_sum", "kahan_scheme")
_EXP_COST = 8.0  # an exponential, in adds (as the op records count it)


class Field(NamedTuple):
    """One array of a state: its name, shape after the row axis, and kind
    (``"acc"``: accumulator dtype, ``"idx"``: int64 indices)."""

    name: str
    shape: tuple[int, ...]
    kind: str


@dataclass(frozen=True)
class DeviceState:
    """A state template of the kernels: its C++ type and the snippets
    (files of ``kernels/<backend>/states/``) that define it, in order."""

    type: str
    snippets: tuple[str, ...]


def _two_sum(a, b):
    """s = fl(a + b) and the exact rounding error (Knuth's TwoSum)."""
    s = a + b
    bp = s - a
    err = (a - (s - bp)) + (b - bp)
    return s, err


def _rescale(m, new_m, xp):
    """exp(m - new_m) (new_m >= m), with empty partials (m = -inf) giving 0 and
    m = new_m giving 1 (+inf included), never NaN."""
    with np.errstate(invalid="ignore", over="ignore"):
        return xp.where(xp.isneginf(m), 0, xp.where(m == new_m, 1, xp.exp(m - new_m)))


def _bool(value: bool) -> str:
    return "true" if value else "false"


class Family:
    """The record of a reduction family; subclasses fill in each field."""

    name = ""
    compensated = False  # sum_scheme="kahan_scheme" carries compensation terms
    weighted = False  # the state folds weights (formula2, or 1) with the formula
    needs_k = False  # opt_arg = K
    scalar_formula = False  # the formula must have dimension 1

    def __repr__(self) -> str:
        return self.name

    def __reduce__(self):
        return (_family, (self.name,))

    def fields(self, red: Reduction) -> list[Field]:
        raise NotImplementedError

    def output_shapes(self, red: Reduction) -> list[tuple[tuple[int, ...], str]]:
        """(shape after the row axis, 'val' or 'idx') of each output."""
        shape = (red.dim,)
        return [(shape, kind) for kind in _KINDS[red.layout]]

    def identity(self, red: Reduction, field: Field) -> float:
        """The value every element of ``field`` starts from."""
        return 0.0

    def block_state(self, red: Reduction, f, g, j0: int, acc_dtype, xp) -> tuple:
        raise NotImplementedError

    def merge(self, red: Reduction, a: tuple, b: tuple, xp) -> tuple:
        raise NotImplementedError

    def finalize(self, red: Reduction, state: tuple, dtype, xp):
        raise NotImplementedError

    def cost(self, red: Reduction) -> float:
        """Cost of folding one pair into the state, in adds."""
        return float(red.dim)

    def cpu_fuses(self, red: Reduction) -> bool:
        """Whether the CPU kernel folds the formula into the state inside its
        j-loop, instead of through a buffer of the tile's values."""
        return False

    def streams(self, red: Reduction) -> bool:
        """Whether the kernels may sum a wide output component by component
        after their pair loop (each component a dot product over the tile's
        columns), handing the state one sum per tile and component: on the
        CPU the state of :meth:`cpu_state` ``(red, fused=True)``, on the GPU
        that of :meth:`cuda_state` ``(red, streamed=True)``."""
        return False

    def cpu_state(self, red: Reduction, fused: bool | None = None) -> DeviceState:
        """The CPU state; ``fused`` (default :meth:`cpu_fuses`): the kernel sums
        the tile itself and hands the state its sums."""
        raise NotImplementedError

    def cuda_state(self, red: Reduction, streamed: bool = False) -> DeviceState:
        """The GPU state; ``streamed`` (only where :meth:`streams`): the kernel
        sums each tile itself and hands the state one sum per component."""
        raise NotImplementedError


_KINDS = {"val": ("val",), "idx": ("idx",), "val_idx": ("val", "idx")}


class SumFamily(Family):
    name = "sum"
    compensated = True
    fused_max_dim = 8  # the fused j-loop keeps a register per row and component

    def fields(self, red):
        f = [Field("acc", (red.dim,), "acc")]
        return f + [Field("comp", (red.dim,), "acc")] if red.kahan else f

    def block_state(self, red, f, g, j0, acc_dtype, xp):
        acc = f.astype(acc_dtype, copy=False).sum(axis=1)
        return (acc, xp.zeros_like(acc)) if red.kahan else (acc,)

    def merge(self, red, a, b, xp):
        if not red.kahan:
            return (a[0] + b[0],)
        s, err = _two_sum(a[0], b[0])
        return (s, a[1] + b[1] + err)

    def finalize(self, red, state, dtype, xp):
        acc = state[0] + state[1] if red.kahan else state[0]
        return acc.astype(dtype)

    def cpu_fuses(self, red):
        return not red.kahan and red.dim <= self.fused_max_dim

    def streams(self, red):
        return not red.kahan

    def cpu_state(self, red, fused=None):
        if self.cpu_fuses(red) if fused is None else fused:
            return DeviceState(f"FusedSumState<{red.dim}>", ("fused_sum.hpp",))
        return DeviceState(f"SumState<{red.dim}, {red.sum_mode}>", ("lanes.hpp", "sum.hpp"))

    def cuda_state(self, red, streamed=False):
        # streamed: the kernel sums each tile itself (a block sum per tile) and
        # adds it with add(); the state only accumulates
        return DeviceState(f"_DrSum<{red.dim}, {0 if streamed else red.sum_mode}>",
                           ("sum.cuh",))


class BestFamily(Family):
    """Max (``greater``) or Min of each component."""

    def __init__(self, greater: bool):
        self.greater = greater
        self.name = "max" if greater else "min"

    def worst(self) -> float:
        return -np.inf if self.greater else np.inf

    def fields(self, red):
        return [Field("val", (red.dim,), "acc")]

    def identity(self, red, field):
        return self.worst()

    def clean(self, f, xp):
        return xp.where(xp.isnan(f), self.worst(), f)

    def block_state(self, red, f, g, j0, acc_dtype, xp):
        clean = self.clean(f.astype(acc_dtype, copy=False), xp)
        return (clean.max(axis=1) if self.greater else clean.min(axis=1),)

    def merge(self, red, a, b, xp):
        return ((xp.maximum if self.greater else xp.minimum)(a[0], b[0]),)

    def finalize(self, red, state, dtype, xp):
        return state[0].astype(dtype)

    def cpu_state(self, red, fused=None):
        return DeviceState(f"BestState<{red.dim}, {_bool(self.greater)}>", ("best.hpp",))

    def cuda_state(self, red, streamed=False):
        return DeviceState(f"_DrBest<{red.dim}, {_bool(self.greater)}>", ("best.cuh",))


def _indices(state_idx, xp):
    return xp.where(state_idx == IDX_NONE, -1, state_idx)


class ArgBestFamily(BestFamily):
    """ArgMax / ArgMin (and Max_ArgMax / Min_ArgMin): the best value and its index."""

    def __init__(self, greater: bool):
        super().__init__(greater)
        self.name = "argmax" if greater else "argmin"

    def fields(self, red):
        return [Field("val", (red.dim,), "acc"), Field("idx", (red.dim,), "idx")]

    def identity(self, red, field):
        return IDX_NONE if field.kind == "idx" else self.worst()

    def block_state(self, red, f, g, j0, acc_dtype, xp):
        clean = self.clean(f.astype(acc_dtype, copy=False), xp)
        best = clean.argmax(axis=1) if self.greater else clean.argmin(axis=1)
        val = xp.take_along_axis(clean, best[:, None, :], axis=1)[:, 0, :]
        return (val, best.astype(np.int64) + j0)

    def merge(self, red, a, b, xp):
        first = a[0] > b[0] if self.greater else a[0] < b[0]
        keep_a = first | ((a[0] == b[0]) & (a[1] <= b[1]))
        return (xp.where(keep_a, a[0], b[0]), xp.where(keep_a, a[1], b[1]))

    def finalize(self, red, state, dtype, xp):
        out = {"val": state[0].astype(dtype), "idx": _indices(state[1], xp)}
        return _layout(red, out)

    def cost(self, red):
        return 2.0 * red.dim

    def cpu_state(self, red, fused=None):
        return DeviceState(f"ArgState<{red.dim}, {_bool(self.greater)}>", ("arg_best.hpp",))

    def cuda_state(self, red, streamed=False):
        return DeviceState(f"_DrArgBest<{red.dim}, {_bool(self.greater)}>",
                           ("arg_best.cuh",))


def _layout(red, outputs: dict):
    kinds = _KINDS[red.layout]
    return outputs[kinds[0]] if len(kinds) == 1 else tuple(outputs[k] for k in kinds)


class KMinFamily(ArgBestFamily):
    """The K smallest values of each component (sorted) and their indices."""

    needs_k = True

    def __init__(self):
        super().__init__(False)
        self.name = "kmin"

    def fields(self, red):
        return [Field("val", (red.k, red.dim), "acc"), Field("idx", (red.k, red.dim), "idx")]

    def output_shapes(self, red):
        shape = (red.k,) if red.dim == 1 else (red.k, red.dim)
        return [(shape, kind) for kind in _KINDS[red.layout]]

    def block_state(self, red, f, g, j0, acc_dtype, xp):
        rows, cols = f.shape[0], f.shape[1]
        clean = self.clean(f.astype(acc_dtype, copy=False), xp)
        order = xp.argsort(clean, axis=1, kind="stable")[:, : red.k, :]
        val = xp.take_along_axis(clean, order, axis=1)
        idx = order.astype(np.int64) + j0
        if cols < red.k:
            pad = red.identity(rows, acc_dtype, xp)
            val = xp.concatenate([val, pad[0][:, : red.k - cols]], axis=1)
            idx = xp.concatenate([idx, pad[1][:, : red.k - cols]], axis=1)
        return (val, idx)

    def merge(self, red, a, b, xp):
        val = xp.concatenate([a[0], b[0]], axis=1)
        idx = xp.concatenate([a[1], b[1]], axis=1)
        by_idx = xp.argsort(idx, axis=1, kind="stable")
        val = xp.take_along_axis(val, by_idx, axis=1)
        idx = xp.take_along_axis(idx, by_idx, axis=1)
        by_val = xp.argsort(val, axis=1, kind="stable")[:, : red.k]
        return (xp.take_along_axis(val, by_val, axis=1), xp.take_along_axis(idx, by_val, axis=1))

    def finalize(self, red, state, dtype, xp):
        val, idx = state[0].astype(dtype), _indices(state[1], xp)
        if red.dim == 1:
            val, idx = val[..., 0], idx[..., 0]
        return _layout(red, {"val": val, "idx": idx})

    def cost(self, red):
        return float(red.k * red.dim)

    def cpu_state(self, red, fused=None):
        return DeviceState(f"KMinState<{red.dim}, {red.k}>", ("kmin.hpp",))

    def cuda_state(self, red, streamed=False):
        return DeviceState(f"_DrKMin<{red.dim}, {red.k}>", ("kmin.cuh",))


class LseFamily(Family):
    """The LogSumExp family: (m, s) with s = sum_j e^(f_ij - m) w_ij."""

    name = "lse"
    compensated = True
    weighted = True
    scalar_formula = True

    def fields(self, red):
        f = [Field("m", (1,), "acc"), Field("s", (red.sum_dim,), "acc")]
        return f + [Field("comp", (red.sum_dim,), "acc")] if red.kahan else f

    def output_shapes(self, red):
        shape = {"log": (red.sum_dim,), "softmax": (red.weight_dim,),
                 "raw": (1 + red.sum_dim,)}[red.layout]
        return [(shape, "val")]

    def identity(self, red, field):
        return -np.inf if field.name == "m" else 0.0

    def block_state(self, red, f, g, j0, acc_dtype, xp):
        f = f.astype(acc_dtype, copy=False)
        if g is None:
            g = xp.ones(f.shape, dtype=acc_dtype)
        else:
            g = g.astype(acc_dtype, copy=False)
        if red.unit_weight:
            g = xp.concatenate([xp.ones(g.shape[:2] + (1,), dtype=acc_dtype), g], axis=2)
        m = f.max(axis=1)  # (rows, 1)
        # no shift for an empty row (-inf) or one holding +inf: its sum is +inf
        # (log: +inf, as the maximum), not e^(inf - inf) = NaN
        shift = xp.where(xp.isinf(m), 0, m)
        with np.errstate(over="ignore"):  # the rows of +inf: e^f may overflow, s is inf
            s = (xp.exp(f - shift[:, None, :]) * g).sum(axis=1)
        return (m, s, xp.zeros_like(s)) if red.kahan else (m, s)

    def merge(self, red, a, b, xp):
        m = xp.maximum(a[0], b[0])
        scale_a = _rescale(a[0], m, xp)
        scale_b = _rescale(b[0], m, xp)
        sa, sb = a[1] * scale_a, b[1] * scale_b
        if not red.kahan:
            return (m, sa + sb)
        s, err = _two_sum(sa, sb)
        return (m, s, a[2] * scale_a + b[2] * scale_b + err)

    def finalize(self, red, state, dtype, xp):
        m, s = state[0], state[1]
        if red.kahan:
            s = s + state[2]
        if red.layout == "log":
            with np.errstate(divide="ignore"):
                out = m + xp.log(s)
        elif red.layout == "softmax":
            with np.errstate(invalid="ignore", divide="ignore"):
                out = s[:, 1:] / s[:, :1]
        else:
            out = xp.concatenate([m, s], axis=1)
        return out.astype(dtype)

    def cost(self, red):
        return _EXP_COST + 2.0 * red.sum_dim

    def cpu_state(self, red, fused=None):
        one = 1 if red.unit_weight or red.weight_dim == 0 else 0
        return DeviceState(f"LseState<{red.weight_dim}, {one}, {_bool(red.kahan)}>",
                           ("lanes.hpp", "lse.hpp"))

    def cuda_state(self, red, streamed=False):
        return DeviceState(f"_DrLse<{red.sum_dim}, {_bool(red.kahan)}>", ("lse.cuh",))


FAMILIES: dict[str, Family] = {f.name: f for f in (
    SumFamily(), BestFamily(True), BestFamily(False), ArgBestFamily(True),
    ArgBestFamily(False), KMinFamily(), LseFamily())}


def _family(name: str) -> Family:
    return FAMILIES[name]


@dataclass(frozen=True)
class Spec:
    """One reduction name: its family, which outputs it returns (``layout``) and
    its weights (``formula2``): ``"none"``, ``"optional"`` or ``"required"``;
    ``unit_weight``: the weights are (1, g) (SumSoftMaxWeight's normaliser)."""

    family: Family
    layout: str
    weights: str = "none"
    unit_weight: bool = False


_F = FAMILIES
REDUCTIONS: dict[str, Spec] = {
    "Sum": Spec(_F["sum"], "val"),
    "Max": Spec(_F["max"], "val"),
    "Min": Spec(_F["min"], "val"),
    "ArgMax": Spec(_F["argmax"], "idx"),
    "ArgMin": Spec(_F["argmin"], "idx"),
    "Max_ArgMax": Spec(_F["argmax"], "val_idx"),
    "Min_ArgMin": Spec(_F["argmin"], "val_idx"),
    "KMin": Spec(_F["kmin"], "val"),
    "ArgKMin": Spec(_F["kmin"], "idx"),
    "KMin_ArgKMin": Spec(_F["kmin"], "val_idx"),
    "LogSumExp": Spec(_F["lse"], "log", "optional"),
    "LogSumExpWeight": Spec(_F["lse"], "log", "required"),
    "SumSoftMaxWeight": Spec(_F["lse"], "softmax", "required", unit_weight=True),
    "Max_SumShiftExp": Spec(_F["lse"], "raw"),
    "Max_SumShiftExpWeight": Spec(_F["lse"], "raw", "required"),
}
_SPELLINGS = {"MaxArgMax": "Max_ArgMax", "MinArgMin": "Min_ArgMin",
              "KMinArgKMin": "KMin_ArgKMin", "SoftMax": "SumSoftMaxWeight"}


@dataclass(frozen=True)
class Reduction:
    """One reduction, fully specified for a formula.

    Attributes
    ----------
    name : str
        KeOps name, e.g. ``"ArgKMin"``.
    family : Family
    dim : int
        Dimension D of the formula F.
    weight_dim : int
        Dimension E of the weights (``formula2``), 0 when there are none.
    k : int
        K of the KMin family, else 1.
    sum_scheme : str
        ``direct_sum``, ``block_sum`` or ``kahan_scheme``.
    """

    name: str
    family: Family
    dim: int
    weight_dim: int = 0
    k: int = 1
    sum_scheme: str = "block_sum"

    @property
    def kahan(self) -> bool:
        """Whether the state carries compensation terms."""
        return self.sum_scheme == "kahan_scheme" and self.family.compensated

    @property
    def sum_mode(self) -> int:
        """The kernels' summation scheme: 0 direct_sum, 1 block_sum, 2 kahan_scheme."""
        return 2 if self.kahan else 0 if self.sum_scheme == "direct_sum" else 1

    @property
    def spec(self) -> Spec:
        return REDUCTIONS[self.name]

    @property
    def layout(self) -> str:
        return self.spec.layout

    @property
    def unit_weight(self) -> bool:
        return self.spec.unit_weight

    @property
    def sum_dim(self) -> int:
        """Length of the ``s`` field of an lse state (the weights, or 1)."""
        if self.unit_weight:
            return 1 + self.weight_dim
        return self.weight_dim or 1

    def fields(self) -> list[Field]:
        """The state's arrays, in order."""
        return self.family.fields(self)

    def outputs(self) -> list[tuple[tuple[int, ...], str]]:
        """Shape after the row axis and kind ('val' or 'idx') of each output."""
        return self.family.output_shapes(self)

    def identity(self, rows: int, acc_dtype, xp=np) -> tuple:
        """The state of a block with no column."""
        return tuple(xp.full((rows, *f.shape), self.family.identity(self, f),
                             dtype=np.int64 if f.kind == "idx" else acc_dtype)
                     for f in self.fields())

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
        if f.shape[1] == 0:
            return self.identity(f.shape[0], acc_dtype, xp)
        return self.family.block_state(self, f, g, j0, acc_dtype, xp)

    def merge(self, a: tuple, b: tuple, xp=np) -> tuple:
        """Combine two states of the same rows (associative and commutative)."""
        return self.family.merge(self, a, b, xp)

    def finalize(self, state: tuple, dtype, xp=np):
        """Output array(s) of a state, in the KeOps layout: an array or a tuple."""
        return self.family.finalize(self, state, dtype, xp)

    def cost(self) -> float:
        """Cost of folding one pair into the state, in adds."""
        return self.family.cost(self)

    def state_bytes(self) -> int:
        """Bytes of one row's state (8 per element, the widest accumulator)."""
        return sum(8 * math.prod(f.shape) for f in self.fields())


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
        raise FormulaError(f"reduction_op must be a string, got {shown(reduction_op)}",
                           hint=f"Use one of: {', '.join(REDUCTIONS)}.")
    name = _SPELLINGS.get(reduction_op, reduction_op)
    if name not in REDUCTIONS:
        by_case = {n.lower(): n for n in REDUCTIONS}
        lowered = reduction_op.lower()
        near = ([by_case[lowered]] if lowered in by_case else [] if len(lowered) > 64 else
                [by_case[m] for m in difflib.get_close_matches(lowered, list(by_case), n=1)])
        hint = f"Did you mean '{near[0]}'? " if near else ""
        raise FormulaError(f"unknown reduction_op {reduction_op!r}",
                           hint=f"{hint}Expected one of: {', '.join(REDUCTIONS)}.")
    spec = REDUCTIONS[name]
    family = spec.family
    if weight_dim and spec.weights == "none":
        takes = ", ".join(n for n, s in REDUCTIONS.items() if s.weights != "none")
        raise FormulaError(
            f"formula2 was given, but reduction {name!r} takes a single formula",
            hint=f"formula2 goes with {takes}.")
    if spec.weights == "required" and not weight_dim:
        raise FormulaError(f"reduction {name!r} needs the weights as formula2",
                           hint="Pass formula2=\"...\" (a vector formula g) to compute "
                           "sum_j exp(f_ij) g_ij.")
    if family.scalar_formula and dim != 1:
        raise FormulaError(
            f"reduction {name!r} needs a scalar formula, got one of dimension {dim}",
            hint="Reduce the formula to one value per pair, or use formula2 for "
            "vector weights.")
    k = 1
    if family.needs_k:
        if opt_arg is None or isinstance(opt_arg, bool) or not isinstance(
                opt_arg, (int, np.integer)) or opt_arg < 1:
            raise FormulaError(
                f"reduction {name!r} needs opt_arg = K, a positive integer; got "
                f"{opt_arg!r}", hint="Pass e.g. opt_arg=10 for the 10 smallest values.")
        k = int(opt_arg)
        if k > limits.MAX_K:  # K is a template argument of the kernels and sizes their state
            raise FormulaError(
                f"reduction {name!r}: opt_arg = K = {k} is more than the limit of "
                f"{limits.MAX_K}", hint="Ask for fewer neighbours, or sort the full "
                "rows with NumPy if you need them all.")
    if sum_scheme not in ("auto", *SUM_SCHEMES):
        raise FormulaError(f"unknown sum_scheme {shown(sum_scheme)}",
                           hint=f"Expected 'auto' or one of {', '.join(SUM_SCHEMES)}.")
    return Reduction(name, family, dim, weight_dim, k,
                     "block_sum" if sum_scheme == "auto" else sum_scheme)


def acc_dtype_for(dtype, dtype_acc: str = "auto", use_double_acc: bool = False) -> np.dtype:
    """The accumulator dtype for inputs of ``dtype`` (KeOps's rules).

    ``auto`` accumulates float16 in float32 and other dtypes in themselves.
    """
    dtype = np.dtype(dtype)
    if use_double_acc:
        if dtype_acc not in ("auto", "float64"):
            raise DtypeError(f"use_double_acc=True conflicts with dtype_acc={dtype_acc!r}; "
                             "pass one of them")
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
