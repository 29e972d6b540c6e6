"""Public entry points: :class:`Genred` (KeOps-compatible) and :func:`reduce`.

``Genred.__init__`` runs the formula stages once (parse, differentiate,
simplify, check the reduction); ``Genred.__call__`` checks the arguments,
builds the :class:`~dredux.program.Program` for their dtype, picks the
backend's kernel, plans the blocks and runs them: directly when the plan is a
single task on in-memory arrays, otherwise through the Dask graph (computed at
once for NumPy/CuPy inputs, returned lazily for dask arrays).
"""

from __future__ import annotations

import functools
import math
import reprlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from dask.utils import format_bytes

from . import config, execute, limits, linear
from ._xp import is_cupy, is_dask, on_device_of
from .autodiff import differentiate
from .backends import make_kernel, normalize_backend, resolve_backend
from .batch import batch_shape, diagonal, flatten, per_row_routine, unflatten, within_items
from .errors import ArgumentError, ConfigError, DtypeError, FormulaError, ShapeError, shown
from .ir import Cat, Expr, Op, walk, walk_all
from .parse import ArgSpec, Signature, parse_aliases, parse_formula
from .plan import make_plan, pair_cost
from .printing import to_formula
from .program import Program, make_program
from .ranges import sparsity
from .reductions import acc_dtype_for, make_reduction
from .simplify import simplify

__all__ = ["Genred", "reduce"]

_FLOAT_DTYPES = (np.float16, np.float32, np.float64)
_CALL_OPTIONS = ("block_size", "split_every", "scheduler")


class Genred:
    r"""A generic reduction ``out[i] = Reduce_j F(x_i, y_j, p)`` (or over i).

    The signature follows ``pykeops.numpy.Genred``: code written for KeOps
    changes one import line.

    Parameters
    ----------
    formula : str
        The formula F in KeOps syntax, e.g. ``"Exp(-SqDist(x, y)) * b"``.
        ``Grad(F, v, e)``, ``Diff(F, v, u)``, ``Laplacian(F, v)``,
        ``Divergence(F, v)`` and ``GradMatrix(F, v)`` are differentiated
        symbolically.
    aliases : list of str
        Variable declarations such as ``"x = Vi(3)"`` (one value of dimension
        3 per output row i), ``"y = Vj(3)"`` (per reduced index j) or
        ``"p = Pm(1)"`` (a parameter); ``Vi(pos, dim)`` fixes the position.
    reduction_op : str, default "Sum"
        ``Sum``, ``Max``, ``Min``, ``ArgMax``, ``ArgMin``, ``Max_ArgMax``,
        ``Min_ArgMin``, ``KMin``, ``ArgKMin``, ``KMin_ArgKMin``,
        ``LogSumExp``, ``LogSumExpWeight``, ``SumSoftMaxWeight``,
        ``Max_SumShiftExp``, ``Max_SumShiftExpWeight``.
    axis : {0, 1}, default 0
        1 reduces over j (one output row per i), 0 reduces over i.
    dtype : str, optional
        Accepted for KeOps compatibility: the inputs' dtype decides; a call on
        inputs of another dtype warns.
    opt_arg : int, optional
        K for ``KMin``, ``ArgKMin`` and ``KMin_ArgKMin``.
    formula2 : str, optional
        Weights g for ``LogSumExp`` (then ``log sum_j exp(f_ij) g_ij``),
        ``LogSumExpWeight``, ``SumSoftMaxWeight`` and ``Max_SumShiftExpWeight``.
    dtype_acc : str, default "auto"
        Accumulator dtype: ``"auto"`` (float32 for float16 inputs, else the
        input dtype), ``"float32"`` or ``"float64"``.
    use_double_acc : bool
        Same as ``dtype_acc="float64"``.
    sum_scheme : str, default "auto"
        ``"direct_sum"``, ``"block_sum"`` or ``"kahan_scheme"`` (compensated
        summation, for Sum and the LogSumExp family).
    use_fast_math : bool, default False
        GPU only: use fast approximate intrinsics (``__expf``...).
    cuda_type : str, optional
        KeOps's older name of ``dtype``.
    enable_chunks, rec_multVar_highdim : ignored
        Accepted for KeOps compatibility.

    Examples
    --------
    >>> import numpy as np
    >>> from dredux import Genred
    >>> gauss = Genred("Exp(-SqDist(x, y)) * b", ["x = Vi(3)", "y = Vj(3)", "b = Vj(1)"],
    ...                reduction_op="Sum", axis=1)
    >>> rng = np.random.default_rng(0)
    >>> x, y, b = rng.random((5, 3)), rng.random((7, 3)), rng.random((7, 1))
    >>> out = gauss(x, y, b, backend="numpy")
    >>> ref = (np.exp(-((x[:, None] - y[None]) ** 2).sum(-1)) * b[:, 0]).sum(1)
    >>> bool(np.allclose(out[:, 0], ref))
    True
    """

    def __init__(self, formula: str, aliases: Sequence[str], reduction_op: str = "Sum",
                 axis: int = 0, dtype=None, opt_arg: int | None = None,
                 formula2: str | None = None, cuda_type=None, dtype_acc: str = "auto",
                 use_double_acc: bool = False, sum_scheme: str = "auto",
                 enable_chunks: bool = True, rec_multVar_highdim: bool = False,
                 use_fast_math: bool = False):
        declared = dtype if dtype is not None else cuda_type
        if declared is not None:
            declared = _declared_dtype(declared, "dtype" if dtype is not None else "cuda_type")
        _check_axis(axis)
        _check_opt_arg(opt_arg, reduction_op)
        _check_aliases(aliases)
        names, signature = parse_aliases(list(aliases))
        f = parse_formula(formula, names, signature)
        f2 = (parse_formula(formula2, names, signature, what="formula2")
              if formula2 is not None else None)
        self._setup(formula, formula2, list(aliases), signature, f, f2, reduction_op, axis,
                    opt_arg, dtype_acc, use_double_acc, sum_scheme, use_fast_math)
        self._declared_dtype = declared

    @classmethod
    def _from_exprs(cls, f: Expr, f2: Expr | None, signature: Signature, reduction_op: str,
                    axis: int, opt_arg: int | None = None, dtype_acc: str = "auto",
                    use_double_acc: bool = False, sum_scheme: str = "auto",
                    use_fast_math: bool = False, split: bool = True) -> Genred:
        """The routine of formula trees built without text (:mod:`dredux.lazy`): the
        same stages after parsing (differentiate, simplify, checks) and the same
        Program as the equivalent ``Genred(text, aliases)``; ``split=False``
        keeps a Sum's linear maps in the kernel (the inner routine of a split)."""
        self = object.__new__(cls)
        names = signature.names()
        aliases = [f"{('Vi', 'Vj', 'Pm')[a.cat]}({a.pos},{a.dim})" for a in signature.args]
        self._setup(to_formula(f, names, limit=2000),
                    None if f2 is None else to_formula(f2, names, limit=2000),
                    aliases, signature, f, f2, reduction_op, axis, opt_arg, dtype_acc,
                    use_double_acc, sum_scheme, use_fast_math, split)
        return self

    def _setup(self, formula, formula2, aliases, signature, f, f2, reduction_op, axis,
               opt_arg, dtype_acc, use_double_acc, sum_scheme, use_fast_math,
               split=True) -> None:
        """Everything after parsing: differentiate, simplify, check the reduction."""
        self.formula = formula
        self.formula2 = formula2
        self.aliases = aliases
        self.signature = signature
        self.axis = int(axis)
        self.opt_arg = opt_arg
        self.dtype_acc = dtype_acc
        self.use_double_acc = _on_off("use_double_acc", use_double_acc)
        self.use_fast_math = _on_off("use_fast_math", use_fast_math)
        # the formula stages after parsing, in order: differentiate, simplify
        formulas = [simplify(differentiate(f))]
        if f2 is not None:
            formulas.append(simplify(differentiate(f2)))
        self.formulas = tuple(formulas)
        _check_size(self.formulas, formula)
        self.reduction = make_reduction(reduction_op, formulas[0].dim,
                                        formulas[1].dim if f2 is not None else 0,
                                        opt_arg, sum_scheme)
        self.reduction_op = reduction_op
        self.sum_scheme = sum_scheme
        if dtype_acc not in ("auto", "float16", "float32", "float64"):
            raise DtypeError(f"dtype_acc must be 'auto', 'float16', 'float32' or 'float64',"
                             f" got {shown(dtype_acc)}")
        self._programs: dict[str, Program] = {}
        self._kernels: dict[tuple, Any] = {}
        self._calls: dict[tuple, _Call] = {}
        self._costs: dict[str, float] = {}
        self._split = self._linear_split() if split else None
        # the i- and j-variables of dimension 1, which a call may pass as 1-D arrays
        self._columns = tuple(k for k, spec in enumerate(signature.args)
                              if spec.cat != Cat.P and spec.dim == 1)

    def _linear_split(self) -> tuple[Genred, linear.Epilogue] | None:
        """The inner routine and epilogue of a Sum whose linear maps move after
        the reduction (:mod:`dredux.linear`), when that lowers the cost per pair."""
        if self.reduction.name != "Sum" or len(self.formulas) > 1:
            return None
        out_cat, red_cat = (Cat.I, Cat.J) if self.axis == 1 else (Cat.J, Cat.I)
        cut = linear.split(self.formulas[0], red_cat, out_cat, self.signature.next_position())
        if cut is None:
            return None
        inner = Genred._from_exprs(cut.inner, None, self.signature, "Sum", self.axis, None,
                                   self.dtype_acc, self.use_double_acc, self.sum_scheme,
                                   self.use_fast_math, split=False)
        if inner._cost() >= self._cost():
            return None
        return inner, cut.epilogue

    # ------------------------------------------------------------------ info
    def __repr__(self) -> str:
        return (f"Genred({self.formula!r}, {self.aliases!r}, "
                f"reduction_op={self.reduction.name!r}, axis={self.axis})")

    @property
    def nargs(self) -> int:
        return len(self.signature.args)

    def simplified_formula(self) -> str:
        """The formula after differentiation and simplification, as text (a
        subformula longer than a million characters is cut, marked ``...``:
        shared subformulas are written out at each use)."""
        return to_formula(self.formulas[0], self.signature.names(), limit=1_000_000)

    @property
    def inner(self) -> Genred:
        """The routine whose kernel calls on float32 and float64 inputs run: this
        one, or for a Sum whose linear maps follow the reduction (:attr:`epilogue`)
        the routine of the inner formula; :meth:`program`, :meth:`kernel` and
        :meth:`source` are the formula's as written (run on float16 inputs)."""
        return self._split[0] if self._split is not None else self

    @property
    def epilogue(self) -> str | None:
        """For a Sum whose linear maps by matrices independent of the reduced
        index move after the reduction (``Sum_j S u_j = S Sum_j u_j``,
        :mod:`dredux.linear`): ``"E(z0, ...) with (z0, ...) = Sum(G)"`` as
        formulas, :attr:`inner` reducing G; else None."""
        if self._split is None:
            return None
        inner, epilogue = self._split
        names = self.signature.names()
        for k, (slot, _) in enumerate(epilogue.slots):
            names[(slot.params[0], slot.params[1])] = f"z{k}"
        leaves = inner.simplified_formula()
        return (f"{to_formula(epilogue.formula, names, limit=10_000)} with (z0, ...) = "
                f"Sum({leaves})")

    def _runs(self, dtype) -> Genred:
        """The routine a call on ``dtype`` inputs runs (:attr:`inner` but for float16)."""
        split = self._split
        if split is not None and np.dtype(dtype) != np.float16:
            return split[0]
        return self

    def program(self, dtype="float32") -> Program:
        """The :class:`~dredux.program.Program` of the formula for inputs of
        ``dtype`` (see :attr:`inner` for what float32 and float64 calls run):
        float16, float32 or float64 (DtypeError for others)."""
        prog = self._programs.get(dtype) if dtype.__class__ is str else None
        if prog is not None:
            return prog
        dtype = _input_dtype(dtype)
        prog = self._programs.get(dtype.name)
        if prog is None:
            acc = acc_dtype_for(dtype, self.dtype_acc, self.use_double_acc)
            prog = make_program(self.formulas, self.reduction, self.axis, dtype, acc,
                                {a.pos: a.name for a in self.signature.args})
            self._programs[dtype.name] = prog
        return prog

    def kernel(self, backend: str = "cpu", dtype="float32", **options):
        """The block kernel of :meth:`program` for ``backend`` (compiled lazily):
        ``"cpu"``, ``"gpu"``, ``"numpy"`` (KeOps spellings too) or ``"auto"``;
        ``options`` are the backend kernel's (``rows_per_pass`` on the CPU,
        ``device_id``, ``fast_math`` and ``poison`` on the GPU, ``budget`` for
        NumPy); ArgumentError for others, DtypeError for a dtype that is not
        float16, float32 or float64."""
        key = (backend, dtype, tuple(sorted(options.items()))) if (
            backend.__class__ is str and dtype.__class__ is str) else None
        kern = self._kernels.get(key) if key is not None and _hashable(key) else None
        if kern is not None:
            return kern
        backend = normalize_backend(backend)
        if backend == "auto":
            backend = resolve_backend("auto", [])
        program = self.program(dtype)
        if backend == "gpu" and self.use_fast_math:
            options.setdefault("fast_math", True)
        _check_kernel_options(backend, options)
        key = (backend, program.np_dtype.name, tuple(sorted(options.items())))
        if not _hashable(key):
            raise ArgumentError(f"kernel options must be plain values (numbers, strings, "
                                f"True or False), got {shown(options)}")
        kern = self._kernels.get(key)
        if kern is None:
            kern = make_kernel(program, backend, **options)
            self._kernels[key] = kern
        return kern

    def source(self, backend: str = "cpu", dtype="float32") -> str:
        """The generated kernel source for ``backend`` ("cpu" or "gpu")."""
        backend = normalize_backend(backend)
        if backend == "auto":
            backend = resolve_backend("auto", [])
        _input_dtype(dtype)  # before the backend's words: a bad dtype is named first
        if backend == "numpy":
            raise ConfigError("backend 'numpy' evaluates the formula with array "
                              "operations and has no generated source; ask for "
                              "source('cpu') or source('gpu')")
        return self.kernel(backend, dtype).source

    # ------------------------------------------------------------------ call
    def __call__(self, *args, backend: str | None = None, device_id: int = -1,
                 ranges=None, out=None, **options):
        """Run the reduction on ``args`` (one array per alias, in position order).

        Parameters
        ----------
        *args : arrays
            NumPy, CuPy or dask arrays: ``(M, dim)`` for ``Vi``, ``(N, dim)`` for
            ``Vj``, ``(dim,)`` for ``Pm``, all of the same float dtype. As in
            KeOps, a ``Vi(1)`` or ``Vj(1)`` variable may be a 1-D array, ``(M,)``
            or ``(N,)``, read as the column ``(M, 1)`` or ``(N, 1)``.
        backend : str, optional
            ``"auto"`` (default: ``dredux.backend``), ``"cpu"``, ``"gpu"`` or
            ``"numpy"``; KeOps spellings ``"CPU"``, ``"GPU"``, ``"GPU_1D"`` work.
        device_id : int
            GPU to use (-1: the current device).
        ranges : tuple of 6 int32 arrays, optional
            A block-sparse reduction, in KeOps's layout: ``(ranges_i, slices_i,
            redranges_j, ranges_j, slices_j, redranges_i)``, as
            :func:`dredux.cluster.from_matrix` returns. Only the kept (row
            cluster, column range) blocks are visited; rows with none get the
            reduction's value for nothing to reduce. Checked before any work
            (:func:`dredux.ranges.sparsity`).
        out : ndarray, optional
            Output array for NumPy results.
        block_size : int or (int, int), optional
            Rows per block and columns per task (default: planned).
        split_every : int, optional
            Fan-in of the merge tree (default: ``dredux.split-every``).
        scheduler : optional
            Any Dask scheduler (``"threads"``, ``"sync"``, a ``Client``...);
            default: the active ``distributed.Client``, else threads.

        Returns
        -------
        array, or tuple of arrays for ``*_Arg*`` reductions. NumPy in: NumPy out;
        CuPy in: CuPy out; dask arrays in: lazy dask arrays out.
        """
        if options:
            unknown = sorted(set(options) - set(_CALL_OPTIONS))
            if unknown:
                raise ArgumentError(
                    f"Genred call got unexpected option(s) {', '.join(unknown)}; expected "
                    f"backend, device_id, ranges, out, {', '.join(_CALL_OPTIONS)} (the "
                    "routine's own options, such as reduction_op or dtype_acc, go to "
                    "Genred(...))")
        if len(args) == len(self.signature.args):
            if self._columns:
                args = _as_columns(args, self._columns)
            bshape = batch_shape(self.signature, args)
            if bshape is not None:
                return self._call_batched(args, bshape, backend, device_id, ranges, out,
                                          options)
        return self._call_flat(args, backend, device_id, ranges, out, **options)

    def _call_flat(self, args, backend=None, device_id=-1, ranges=None, out=None,
                   _shapes=None, **options):
        """A call on arguments without batch axes, with known options (what a
        LazyTensor reduction runs: its constructors saw the arrays' shapes).
        ``_shapes``: a hashable that determines the shapes and dtypes of ``args``,
        native-order NumPy arrays all (the LazyTensor's row counts and dtype), or
        None to read them from ``args``."""
        if device_id.__class__ is not int or device_id != -1:
            device_id = _device_id(device_id)
        if self._split is not None and not any(
                getattr(a, "dtype", None) == np.float16 for a in args):
            return self._call_split(args, backend, device_id, ranges, out, options)
        # A call on in-memory arrays of shapes, dtypes, options and configuration
        # already seen reuses its checks, kernel and plan: what a user calling the
        # routine in a loop pays per call (benchmarks/latency.py).
        key = _call_key(args, backend, device_id, options, _shapes)
        pattern = None
        if ranges is not None:  # the pattern is part of the plan
            args = _check_args(self.signature, args)
            pattern = self._sparsity(args, ranges)
            key = None if key is None else (key, pattern.token())
        call = None
        if key is not None:
            try:
                call = self._calls.get(key)
            except TypeError:  # an option of an unusual type: checked and planned afresh
                key = None
        if call is None and pattern is None:
            args = _check_args(self.signature, args)
        if out is not None:
            _check_out(self, out, args)  # before planning, compiling or running
        if call is None:
            call = self._prepare(args, backend, device_id, options, pattern)
            if key is not None:
                if len(self._calls) >= _CALL_CACHE:
                    self._calls.clear()
                self._calls[key] = call
        result = call.run(args)
        return _write_out(result, out) if out is not None else result

    def _call_split(self, args, backend, device_id, ranges, out, options):
        """A call (without batch axes) of a Sum with a linear epilogue: the inner routine's
        reduction, then the epilogue on its rows (:mod:`dredux.linear`)."""
        inner, epilogue = self._split
        args = _check_args(self.signature, args)
        dtype = _common_dtype(self.signature, args)
        self._check_declared(dtype, stacklevel=5)
        if out is not None:
            _check_out(self, out, args)
        if not any(is_dask(a) for a in args):
            counts = _axis_lengths(self.signature, args)
            _check_epilogue_memory(self, epilogue, counts[Cat.I if self.axis == 1 else Cat.J],
                                   dtype, any(is_cupy(a) for a in args))
        z = inner(*args, backend=backend, device_id=device_id, ranges=ranges, **options)
        result = _apply_epilogue(epilogue, self.signature, args, z)
        return _write_out(result, out) if out is not None else result

    def _check_declared(self, dtype, stacklevel: int) -> None:
        declared = getattr(self, "_declared_dtype", None)
        if declared is not None and declared != dtype:
            # KeOps's tutorials pass dtype=; it only matters when it disagrees
            warnings.warn(f"this Genred was made with dtype={declared.name!r} but is called "
                          f"on {dtype} arrays; dredux computes in the inputs' dtype "
                          f"({dtype}). Convert the inputs, or leave dtype= out",
                          UserWarning, stacklevel=stacklevel)

    def _call_batched(self, args, bshape, backend, device_id, ranges, out, options):
        """A call with batch axes: one flat block-sparse call (:mod:`dredux.batch`)."""
        device_id = _device_id(device_id)
        itemsize = next((np.dtype(a.dtype).itemsize for a in args
                         if np.dtype(getattr(a, "dtype", object)).kind == "f"), 8)
        row_bytes = sum(math.prod(shape) * (8 if kind == "idx" else itemsize)
                        for shape, kind in self.reduction.outputs())
        flat, varying, lengths, shared = flatten(self.signature, args, bshape, self.axis,
                                                 result_row_bytes=row_bytes)
        routine = per_row_routine(self, varying) if varying else self
        out_cat, red_cat = (Cat.I, Cat.J) if self.axis == 1 else (Cat.J, Cat.I)
        if out_cat not in lengths or red_cat not in lengths:
            raise ShapeError("a batched call needs a variable of each axis (Vi and Vj) to "
                             "give the lengths M and N of the batch items")
        m, n = lengths[out_cat], lengths[red_cat]
        flat = _check_args(routine.signature, flat)
        self._check_declared(_common_dtype(routine.signature, flat), stacklevel=4)
        count = math.prod(bshape)
        outputs = routine.reduction.outputs()
        if out is not None:
            _check_out(routine, out, flat, batch=(bshape, m))
        if ranges is not None:  # KeOps's layout: indices into every item's copy
            if shared:
                flat, _, _, shared = flatten(self.signature, args, bshape, self.axis,
                                             share=False)
                flat = _check_args(routine.signature, flat)
            pattern = within_items(sparsity(ranges, self.axis, count * m, count * n), m, n)
        else:
            pattern = diagonal(count, m, n, shared)
        runs = routine._runs(flat[0].dtype)
        if runs is not routine and not any(is_dask(a) for a in flat):
            _check_epilogue_memory(routine, routine._split[1], count * m, flat[0].dtype,
                                   any(is_cupy(a) for a in flat))
        call = runs._prepare(flat, backend, device_id, options, pattern, declared=False)
        result = call.run(flat)
        if runs is not routine:  # a linear epilogue, on the flat rows
            result = _apply_epilogue(routine._split[1], routine.signature, flat, result)
        result = unflatten(result, bshape, m, 0 if shared else n,
                           [kind == "idx" for _, kind in outputs])
        return _write_out(result, out) if out is not None else result

    def _sparsity(self, args, ranges):
        """The checked pattern of ``ranges`` for a call on ``args``."""
        counts = _axis_lengths(self.signature, args)
        out_cat, red_cat = (Cat.I, Cat.J) if self.axis == 1 else (Cat.J, Cat.I)
        return sparsity(ranges, self.axis, counts[out_cat], counts[red_cat])

    def _prepare(self, args, backend, device_id, options, pattern=None,
                 declared=True) -> _Call:
        """Plan a call on checked arguments (everything but running it), warning
        when ``declared`` and the inputs' dtype is not the dtype= given."""
        dtype = _common_dtype(self.signature, args)
        if declared:
            self._check_declared(dtype, stacklevel=5)
        counts = _axis_lengths(self.signature, args)
        out_cat, red_cat = (Cat.I, Cat.J) if self.axis == 1 else (Cat.J, Cat.I)
        m, n = counts[out_cat], counts[red_cat]
        program = self.program(dtype)
        backend_name = resolve_backend(backend, args)
        kernel = self.kernel(backend_name, dtype, **_kernel_options(backend_name, device_id))
        index = {spec.pos: k for k, spec in enumerate(self.signature.args)}
        # the program's I/J are the output/reduced axes: its vars map back by position
        picks = tuple(tuple(index[v.params[0]] for v in group)
                      for group in (program.row_vars, program.col_vars, program.param_vars))
        row_args = tuple(k for k, spec in enumerate(self.signature.args) if spec.cat == out_cat)
        scheduler = options.get("scheduler")
        workers = execute.worker_count(scheduler, backend_name)
        plan = make_plan(
            m, n, self._cost(dtype), backend_name, workers,
            row_bytes=_row_bytes(program.row_vars, dtype),
            col_bytes=_row_bytes(program.col_vars, dtype),
            state_bytes=program.reduction.state_bytes(),
            block_size=options.get("block_size"), split_every=options.get("split_every"),
            row_chunks=_dask_chunks([args[k] for k in row_args]),
            col_chunks=_dask_chunks([a for s, a in zip(self.signature.args, args)
                                     if s.cat == red_cat]),
            sparsity=pattern)
        lazy = any(is_dask(a) for a in args)
        if not lazy:  # the result is made here: it must fit, checked before any work
            execute.check_call_memory(program, plan, m, workers,
                                      result_on_gpu=any(is_cupy(a) for a in args),
                                      kernel_on_gpu=backend_name == "gpu",
                                      client=execute.client_for(scheduler) is not None)
        return _Call(kernel, plan, picks, row_args, lazy, scheduler)

    # -------------------------------------------------------------- helpers
    def _cost(self, dtype="float32") -> float:
        name = np.dtype(dtype).name
        cost = self._costs.get(name)
        if cost is None:
            cost = self._costs[name] = pair_cost(self.formulas, self.reduction, name)
        return cost


_CALL_CACHE = 64  # prepared calls kept per routine (distinct shapes, options...)


@dataclass(frozen=True)
class _Call:
    """A checked and planned call: which arguments go where, the kernel, the plan."""

    kernel: Any
    plan: Any
    picks: tuple  # argument indices of the row, column and parameter arrays
    row_args: tuple  # argument indices of the output axis's variables
    lazy: bool
    scheduler: Any

    def run(self, args):
        rows, cols, params = ([args[k] for k in group] for group in self.picks)
        meta = [*(args[k] for k in self.row_args), *cols, *params]
        try:
            return execute.run(self.kernel, self.plan, rows, cols, params,
                               meta_arrays=meta, lazy=self.lazy, scheduler=self.scheduler)
        except MemoryError as exc:  # what the checks before the work could not foresee
            plan = self.plan
            raise ShapeError(
                f"this {self.kernel.program.reduction.name} reduction over "
                f"{sum(plan.rows)} x {plan.cols[-1][1]} pairs ran out of memory: {exc}. "
                "Reduce fewer rows at a time, lower dredux.memory-per-task, or pass dask "
                "arrays to get a lazy result") from exc


def _on_off(name: str, value) -> bool:
    """An on/off option: True or False (NumPy booleans, 0 and 1 too; None is the
    default, off). bool() would read 'no' or [False] as on."""
    if value is None:
        return False
    if isinstance(value, (bool, np.bool_)) or (isinstance(value, (int, np.integer))
                                               and value in (0, 1)):
        return bool(value)
    raise FormulaError(f"{name}={shown(value)}: the option is on or off",
                       hint=f"Pass True or False, e.g. {name}=True.")


def _call_key(args, backend, device_id, options, shapes=None):
    """What a call's checks and plan depend on, or None when they are not reused
    (dask inputs, an explicit scheduler, inputs that are not NumPy arrays).
    ``shapes``: what determines the shapes and dtypes of ``args`` when the caller
    knows (see ``Genred._call_flat``)."""
    if options.get("scheduler") is not None:
        return None
    if shapes is None:
        shapes = []
        for a in args:
            if type(a) is not np.ndarray or not a.dtype.isnative:
                return None
            shapes.append((a.shape, a.dtype))
        shapes = tuple(shapes)
    block = options.get("block_size")
    key = (shapes, backend, device_id,
           tuple(block) if isinstance(block, list) else block, options.get("split_every"),
           config.snapshot(), execute.client_id())
    return key  # hashed once, by the cache lookup (which handles unhashable options)


# ---------------------------------------------------------------------------
# argument checks
# ---------------------------------------------------------------------------

def _check_axis(axis) -> None:
    """Genred's ``axis``: 0 or 1 (NumPy integers too)."""
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
        raise ArgumentError(f"axis must be 0 (reduce over i) or 1 (reduce over j), got "
                            f"{type(axis).__name__} {reprlib.repr(axis)}; pass axis=0 or "
                            "axis=1")
    if axis not in (0, 1):
        raise FormulaError(f"axis must be 0 (reduce over i) or 1 (reduce over j), "
                           f"got {shown(axis)}")


def _check_opt_arg(opt_arg, reduction_op) -> None:
    """Genred's ``opt_arg``: None or an integer (K of the KMin family, which checks
    its value; unused by the other reductions, as in KeOps)."""
    if opt_arg is None or (isinstance(opt_arg, (int, np.integer))
                           and not isinstance(opt_arg, (bool, np.bool_))):
        return
    raise ArgumentError(f"opt_arg must be an integer (K, for KMin, ArgKMin and "
                        f"KMin_ArgKMin) or None, got {type(opt_arg).__name__} "
                        f"{reprlib.repr(opt_arg)} for reduction_op={reduction_op!r}; "
                        "pass e.g. opt_arg=10, or leave it out where the reduction has no K")


def _declared_dtype(dtype, name: str,
                    fix: str = "or leave it out: the inputs' dtype decides") -> np.dtype:
    """``dtype`` (the argument ``name``) as float16, float32 or float64; DtypeError
    naming it, with ``fix``, otherwise."""
    try:
        found = np.dtype(dtype)
    except (TypeError, ValueError):  # ValueError: a malformed tuple, ('f8', -1)
        found = None
    if found is None or found.type not in _FLOAT_DTYPES:
        what = "not a dtype" if found is None else f"{found}, not a float dtype"
        raise DtypeError(f"{name}={shown(dtype)} is {what}; expected 'float16', "
                         f"'float32' or 'float64' ({fix})")
    return found


def _input_dtype(dtype) -> np.dtype:
    """The dtype of :meth:`Genred.program`, :meth:`Genred.kernel` and
    :meth:`Genred.source`: float16, float32 or float64, as a NumPy dtype."""
    return _declared_dtype(dtype, "dtype", "the dtypes dredux computes in: there is no "
                           "kernel for other dtypes").newbyteorder("=")


def _hashable(key) -> bool:
    try:
        hash(key)
    except TypeError:
        return False
    return True


def _check_kernel_options(backend: str, options: dict) -> None:
    """ArgumentError naming the options that the ``backend`` kernel does not take."""
    if not options:
        return
    if backend == "numpy":
        from .numpy_eval import NumpyKernel as kind
    elif backend == "cpu":
        from .compile.cpp import CppKernel as kind
    elif backend == "gpu":
        from .compile.cuda import CudaKernel as kind
    else:  # pragma: no cover - a backend added to the registry later says it itself
        return
    unknown = sorted(set(options) - set(kind.OPTIONS))
    if unknown:
        raise ArgumentError(f"the {backend!r} kernel got unknown option(s) "
                            f"{', '.join(unknown)}; it takes {', '.join(kind.OPTIONS)}")


def _check_size(formulas, text: str) -> None:
    count = width = 0
    for node in walk_all(formulas):
        count += 1
        width += node.dim
    shown = text[:60] + ("..." if len(text) > 60 else "")
    if count > limits.MAX_NODES:
        raise FormulaError(
            f"the formula has {count} distinct operations (after differentiation), more "
            f"than the limit of {limits.MAX_NODES}", shown,
            hint="Split the computation into several reductions, or write repeated terms "
            "as vector operations (a Sum over a vector variable).")
    if width > limits.MAX_COMPONENTS:
        raise FormulaError(
            f"the formula's operations have {width} components in all (after "
            f"differentiation), more than the limit of {limits.MAX_COMPONENTS}: the values "
            "of one pair would take more than 128 MiB", shown,
            hint="Split the computation into several reductions, or use vectors of lower "
            "dimension.")


def _check_aliases(aliases) -> None:
    if isinstance(aliases, str) or not isinstance(aliases, (list, tuple)):
        raise FormulaError(
            f"aliases must be a list of strings like [\"x = Vi(3)\", \"y = Vj(3)\"], got "
            f"{type(aliases).__name__} {reprlib.repr(aliases)}",
            hint=f"Write [{aliases!r}]." if isinstance(aliases, str) else
            "Pass one string per variable of the formula.")


def _describe(spec: ArgSpec, index: int) -> str:
    return f"argument {index} ({spec.describe()})"


def _column(a):
    """The 1-D array ``a`` of length L as an (L, 1) array: a view of NumPy and CuPy
    arrays, a lazy new axis of dask arrays (of unknown chunk sizes too)."""
    if is_dask(a):
        return a[:, None]
    return a.reshape(a.shape[0], 1)


def _as_columns(args, positions) -> tuple:
    """``args`` with the 1-D arrays at ``positions`` (the i- and j-variables of
    dimension 1) made (L, 1) columns, as KeOps reads them; other arguments as given."""
    fixed = None
    for k in positions:
        if getattr(args[k], "ndim", None) == 1:
            if fixed is None:
                fixed = list(args)
            fixed[k] = _column(args[k])
    return args if fixed is None else tuple(fixed)


def _check_args(signature, args) -> list:
    specs = signature.args
    if len(args) != len(specs):
        listed = ", ".join(s.describe() for s in specs)
        raise ShapeError(
            f"Genred routine takes {len(specs)} arguments, got {len(args)}; expected, in "
            f"order: {listed}")
    checked = []
    for index, (spec, a) in enumerate(zip(specs, args)):
        given = None  # what a non-array argument was, for the messages
        if not (is_dask(a) or is_cupy(a) or isinstance(a, np.ndarray)):
            given = f"the {type(a).__name__} {reprlib.repr(a)}"
            try:
                a = np.asarray(a)
            except Exception as exc:  # pragma: no cover - exotic inputs
                raise DtypeError(f"{_describe(spec, index)} is {given}, which is not an "
                                 "array") from exc
        what = f"is {given} (shape {tuple(a.shape)})" if given else f"has shape {tuple(a.shape)}"
        shape = tuple(a.shape)
        if any(isinstance(s, float) and math.isnan(s) for s in shape):
            raise ShapeError(f"{_describe(spec, index)} is a dask array of unknown chunk "
                             "sizes; call .compute_chunk_sizes() on it first")
        if spec.cat == Cat.P:
            if len(shape) != 1 or shape[0] != spec.dim:
                fix = ""
                if not shape and spec.dim == 1:
                    fix = (f" (write np.array([{a.item()!r}]))" if given else
                           " (reshape it with .reshape(1))")
                elif shape and math.prod(shape) == spec.dim:
                    fix = " (flatten it with .ravel())"
                raise ShapeError(f"{_describe(spec, index)} {what}; expected a 1-D array "
                                 f"of shape ({spec.dim},){fix}")
        else:
            rows = "M" if spec.cat == Cat.I else "N"
            if len(shape) == 1 and spec.dim == 1:  # (L,) stands for the column (L, 1)
                a = _column(a)
                shape = tuple(a.shape)
            if len(shape) != 2 or shape[1] != spec.dim:
                fix = (" (a 1-D array stands only for a variable of dimension 1)"
                       if len(shape) == 1 else "")
                raise ShapeError(f"{_describe(spec, index)} {what}; expected "
                                 f"a 2-D array of shape ({rows}, {spec.dim}){fix}")
        if np.dtype(a.dtype).type not in _FLOAT_DTYPES:
            if given:
                raise DtypeError(f"{_describe(spec, index)} is {given}, which converts to "
                                 f"{a.dtype}; expected a float16, float32 or float64 array "
                                 "(e.g. np.asarray(..., dtype=np.float32))")
            raise DtypeError(f"{_describe(spec, index)} has dtype {a.dtype}; expected "
                             "float16, float32 or float64 (convert it with "
                             ".astype(np.float32))")
        if not np.dtype(a.dtype).isnative:  # e.g. big-endian '>f8': the kernels need native
            a = a.astype(np.dtype(a.dtype).newbyteorder("="))
        checked.append(a)
    for cat in (Cat.I, Cat.J):
        sized = [(spec, a) for spec, a in zip(specs, checked) if spec.cat == cat]
        if len({a.shape[0] for _, a in sized}) > 1:
            listed = ", ".join(f"'{s.name}' has {a.shape[0]}" for s, a in sized)
            word = "Vi" if cat == Cat.I else "Vj"
            raise ShapeError(f"the {word} arguments must have the same number of rows: "
                             f"{listed}")
    return checked


def _common_dtype(signature, args) -> np.dtype:
    dtypes = {np.dtype(a.dtype) for a in args}
    if len(dtypes) > 1:
        listed = ", ".join(f"'{s.name}' is {np.dtype(a.dtype).name}"
                           for s, a in zip(signature.args, args))
        raise DtypeError(f"all arguments must have the same dtype: {listed}; convert "
                         "them with .astype(...) to one of them")
    return dtypes.pop() if dtypes else np.dtype(np.float64)


def _axis_lengths(signature, args) -> dict:
    counts = {Cat.I: 1, Cat.J: 1}
    for spec, a in zip(signature.args, args):
        if spec.cat in counts:
            counts[spec.cat] = int(a.shape[0])
    return counts


def _dask_chunks(arrays) -> tuple[int, ...] | None:
    for a in arrays:
        if is_dask(a):
            return tuple(int(c) for c in a.chunks[0])
    return None


def _row_bytes(variables, dtype) -> int:
    return max(1, sum(v.dim for v in variables)) * np.dtype(dtype).itemsize


def _device_id(value) -> int:
    """A call's checked ``device_id``: -1 (the current GPU; None says it too) or a
    GPU number."""
    if value is None:
        return -1
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < -1:
        raise ShapeError(f"device_id must be -1 (the current GPU) or the number of a GPU "
                         f"(0, 1, ...), got {shown(value)}")
    return int(value)


def _kernel_options(backend: str, device_id: int) -> dict:
    if backend == "gpu" and device_id is not None and device_id >= 0:
        return {"device_id": int(device_id)}
    return {}


def _check_out(routine, out, args, batch: tuple | None = None) -> None:
    """Check ``out=`` against the call's result on checked arguments, before any work;
    ``batch``: (the batch axes, M) of a batched call (``args``: its flat arguments)."""
    outputs = routine.reduction.outputs()
    if len(outputs) > 1:
        raise ShapeError(f"out= takes a single output array, but reduction "
                         f"{routine.reduction.name!r} returns {len(outputs)} arrays (a "
                         "tuple); call without out= and copy the results")
    if any(is_dask(a) for a in args):
        raise ShapeError("out= is supported for NumPy/CuPy inputs only; with dask inputs "
                         "the call returns a lazy dask array: call without out= and store "
                         "the result (e.g. result.store(target) or dask.array.store)")
    cupy = next((a for a in args if is_cupy(a)), None)
    array_type = type(cupy) if cupy is not None else np.ndarray
    type_name = "cupy.ndarray" if cupy is not None else "numpy.ndarray"
    if batch is not None:
        shape = (*batch[0], batch[1], *outputs[0][0])
    else:
        counts = _axis_lengths(routine.signature, args)
        shape = (counts[Cat.I if routine.axis == 1 else Cat.J], *outputs[0][0])
    dtype = (np.dtype(np.int64) if outputs[0][1] == "idx"
             else routine.program(_common_dtype(routine.signature, args)).np_dtype)
    xp = "cupy" if cupy is not None else "np"
    make = f"{xp}.empty({shape}, dtype={xp}.{dtype.name})"
    if not isinstance(out, array_type):
        raise DtypeError(f"out is a {type(out).__name__}; expected a {type_name} of shape "
                         f"{shape} and dtype {dtype.name}, e.g. out={make}")
    if tuple(out.shape) != shape:
        rows = "the batch axes, then one row per output row" if batch else \
            "one row per output row"
        raise ShapeError(f"out has shape {tuple(out.shape)}; expected {shape} ({rows}), "
                         f"e.g. out={make}")
    if np.dtype(out.dtype).newbyteorder("=") != dtype:
        raise DtypeError(f"out has dtype {out.dtype}; expected {dtype.name} (the result's "
                         f"dtype), e.g. out={make}")
    if not getattr(out.flags, "writeable", True):  # CuPy arrays have no such flag
        raise ShapeError("out is read-only (out.flags.writeable is False); pass a writeable "
                         f"array, e.g. out={make} or out=out.copy()")


def _check_epilogue_memory(routine, epilogue, rows: int, dtype, gpu: bool) -> None:
    """ShapeError, before any work, when the result of a Sum with a linear epilogue
    over ``rows`` output rows, or the epilogue's float64 values of those rows,
    cannot fit in memory."""
    width = sum(math.prod(shape) for shape, _ in routine.reduction.outputs())
    result = rows * width * np.dtype(dtype).itemsize
    # the epilogue keeps each of its nodes' values: (rows, dim) for the nodes that
    # read the rows (a placeholder or a variable of the output axis), (1, dim) else
    per_row = {}
    values = 0
    for node in walk(epilogue.formula):
        if node.op is Op.VAR:
            per_row[node] = node.params[1] != Cat.P
        else:
            per_row[node] = any(per_row[a] for a in node.args)
        values += node.dim * (rows if per_row[node] else 1)
    fix = ("reduce fewer rows at a time (call on slices of the output axis's variables), "
           "or pass dask arrays to get a lazy result that can be stored chunk by chunk")
    execute.check_memory(result, f"the result of this Sum, an array of shape ({rows}, "
                         f"{width}) {np.dtype(dtype).name},", fix, gpu=gpu)
    execute.check_memory(result + 8 * values, f"the result of this Sum, an array of shape "
                         f"({rows}, {width}), with the float64 values of its linear "
                         f"epilogue ({format_bytes(8 * values)}),", fix, gpu=gpu)


def _apply_epilogue(epilogue, signature, args, z):
    """``epilogue`` on the inner result ``z`` of a call on checked ``args``."""
    # the epilogue reads the output axis's variables and the parameters
    wanted = {node.params[0] for node in epilogue.reads}
    reads = {spec.pos: a for spec, a in zip(signature.args, args) if spec.pos in wanted}
    if is_dask(z):
        return _dask_epilogue(epilogue, z, reads)
    try:
        with on_device_of(z):
            return epilogue(z, reads)
    except MemoryError as exc:  # what _check_epilogue_memory could not foresee
        raise ShapeError(f"the linear epilogue of this Sum over {z.shape[0]} rows ran out "
                         f"of memory: {exc}. Reduce fewer rows at a time, or pass dask "
                         "arrays to get a lazy result") from exc


def _dask_epilogue(epilogue, z, reads: dict):
    """The epilogue on each row block of the lazy inner result ``z``: the output
    axis's variables cut like z's rows, the parameters whole."""
    import dask.array as da

    z = z.rechunk({1: -1})
    operands: list = [z, (0, 1)]
    for k, (_, a) in enumerate(sorted(reads.items())):
        a = da.asarray(a)
        if a.ndim == 2:
            operands += [a.rechunk((z.chunks[0], -1)), (0, 2 + k)]
        else:
            operands += [a.rechunk(-1), (2 + k,)]
    positions = sorted(reads)
    width = int(epilogue.formula.dim)

    def block(zb, *arrays):
        return epilogue(zb, dict(zip(positions, arrays)))

    return da.blockwise(block, (0, 1), *operands, concatenate=True, dtype=z.dtype,
                        adjust_chunks={1: width}, meta=z._meta)


def _write_out(result, out):
    out[...] = result  # out was checked by _check_out
    return out


@functools.lru_cache(maxsize=128)
def _cached_routine(formula, aliases, reduction_op, axis, opt_arg, formula2, kwargs):
    return Genred(formula, list(aliases), reduction_op=reduction_op, axis=axis,
                  opt_arg=opt_arg, formula2=formula2, **dict(kwargs))


def reduce(formula: str, aliases: Sequence[str], *args, reduction_op: str = "Sum",
           axis: int = 1, opt_arg: int | None = None, formula2: str | None = None,
           dtype_acc: str = "auto", sum_scheme: str = "auto", **call_options):
    """One-shot reduction: ``Genred(formula, aliases, ...)(*args, **call_options)``.

    The routine is cached, so calling :func:`reduce` in a loop parses and
    compiles the formula once. Note the default ``axis=1`` (reduce over j),
    the common case; :class:`Genred` keeps KeOps's ``axis=0``.

    Examples
    --------
    >>> import numpy as np, dredux
    >>> x = np.arange(6.0).reshape(3, 2); y = np.ones((4, 2))
    >>> dredux.reduce("SqDist(x, y)", ["x = Vi(2)", "y = Vj(2)"], x, y,
    ...               backend="numpy").ravel().tolist()
    [4.0, 20.0, 100.0]
    """
    kwargs = tuple(sorted({"dtype_acc": dtype_acc, "sum_scheme": sum_scheme}.items()))
    _check_aliases(aliases)
    try:
        routine = _cached_routine(formula, tuple(aliases), reduction_op, axis, opt_arg,
                                  formula2, kwargs)
    except TypeError:  # an unhashable argument: Genred says what is wrong with it
        routine = Genred(formula, list(aliases), reduction_op=reduction_op, axis=axis,
                         opt_arg=opt_arg, formula2=formula2, **dict(kwargs))
    return routine(*args, **call_options)
