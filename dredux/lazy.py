"""LazyTensor, Vi, Vj, Pm: the symbolic-array interface of pykeops.numpy.

A :class:`LazyTensor` stands for an (M, N, D) array that is never built: an
expression of i-variables (``x[:, None, :]``), j-variables (``y[None, :, :]``)
and parameters (1-D arrays, numbers), reduced over i or j by a method such as
``.sum(axis=1)`` or ``.argKmin(10, dim=1)``. Every operation builds a node of
the formula IR (:mod:`dredux.ir`) through the same builders the formula parser
uses (:data:`dredux.functions.FUNCTIONS`), so a reduction compiles to the same
Program, the same kernel and the same Dask graph as the equivalent
:class:`~dredux.Genred` call: there is one pipeline, no second evaluator.

Variables are numbered canonically while the expression is built: the
variables of a LazyTensor are listed in order of first appearance and its
formula refers to them by their index in that list. Two expressions built the
same way from different arrays are then the *same* interned formula, and the
routine compiled for the first is found again by a dictionary lookup (the
k-means loop builds a new ``LazyTensor(c[None, :, :])`` at every iteration and
compiles once). Joining two operands renumbers the second one's variables;
renumberings and operation nodes are memoised, so that rebuilding an
expression in a loop costs a few dictionary lookups per operation
(``benchmarks/lazytensor_overhead.py``).

Python floats (and lists of floats) are parameters, not constants, as in
KeOps: changing a bandwidth does not recompile. Python integers are constants.
"""

from __future__ import annotations

import math
import operator
import reprlib
import threading
from collections.abc import Sequence

import numpy as np

from . import limits
from ._xp import is_cupy, is_dask
from .cluster import swap_axes
from .errors import ArgumentError, ConfigError, DtypeError, FormulaError, ShapeError, shown
from .functions import FUNCTIONS
from .ir import Cat, DimError, Expr, Op, const, flatten, unflatten, var, walk
from .ops import LimitError
from .parse import ArgSpec, Signature, shown_integer
from .printing import to_formula

__all__ = ["LazyTensor", "LazyReduction", "Var", "Vi", "Vj", "Pm"]

_FLOATS = (np.float16, np.float32, np.float64)
_NATIVE = frozenset(map(np.dtype, _FLOATS))  # in native byte order: the fast paths
# the categories as module constants: Cat.I is an attribute lookup through the
# enum class (90 ns on CPython 3.11), paid several times per leaf otherwise
_CAT_I, _CAT_J, _CAT_P = Cat.I, Cat.J, Cat.P
_MAX_DIM = limits.MAX_DIM
_CAT_NAMES = {Cat.I: "i", Cat.J: "j", Cat.P: "parameter"}
# Genred options that shape the routine (the rest go to its call)
_INIT_OPTIONS = ("dtype_acc", "use_double_acc", "sum_scheme", "use_fast_math")
_IGNORED_OPTIONS = ("enable_chunks", "optional_flags", "rec_multVar_highdim")
_UNSUPPORTED = {
    "trace_operator": "no trace operator; divergence(v) is the trace of the Jacobian",
}
_COMPLEX_ONLY = frozenset(("real", "imag", "angle", "conj"))
_CALL_OPTIONS = ("backend", "device_id", "ranges", "out", "block_size", "split_every",
                 "scheduler")
_CALL_SET = frozenset(_CALL_OPTIONS)


# --------------------------------------------------------------------------
# leaves: the arrays (and symbolic placeholders) behind the variables
# --------------------------------------------------------------------------

class _Leaf:
    """One variable of a LazyTensor expression: an array (compared by identity),
    a list of floats (a parameter whose dtype is the expression's), or a
    symbolic variable ``LazyTensor((ind, dim, cat))`` (compared by index).

    The leaf of an array without batch axes, the one built in loops, sets three
    fields; the others are class defaults, overridden by the subclasses of the
    other kinds (built by :func:`_make_leaf`)."""

    __slots__ = ("data", "dim", "cat")
    ind = None  # the index of a symbolic variable
    batched = False  # the array has batch axes: (B..., rows, D) or (B..., D)

    def __init__(self, data, dim: int, cat: Cat):
        self.data = data
        self.dim = dim
        self.cat = cat

    def array(self, dtype: np.dtype, like):
        """The argument passed to the routine (``like``: a CuPy array or None)."""
        return self.data


class _BatchedLeaf(_Leaf):
    """An array leaf with batch axes."""

    __slots__ = ()
    batched = True


class _ListLeaf(_Leaf):
    """A parameter given as a list of floats, cast to the expression's dtype on
    its device when called (the cast is kept for the next call)."""

    __slots__ = ("_cast",)

    def array(self, dtype: np.dtype, like):
        cast = getattr(self, "_cast", None)
        if cast is None or cast.dtype != dtype or is_cupy(cast) != (like is not None):
            if like is not None:
                import cupy

                with like.device:
                    cast = cupy.asarray(self.data, dtype=dtype)
            else:
                cast = np.asarray(self.data, dtype=dtype)
            self._cast = cast
        return cast


class _SymbolicLeaf(_Leaf):
    """A symbolic variable: ``LazyTensor((0, 3, 0))`` twice is one variable.
    (Array leaves keep identity comparison, which list lookups do in C.)"""

    __slots__ = ("ind",)

    def __init__(self, data, dim: int, cat: Cat, ind: int):
        super().__init__(data, dim, cat)
        self.ind = ind

    def __eq__(self, other):
        return (isinstance(other, _SymbolicLeaf)
                and (other.ind, other.dim, other.cat) == (self.ind, self.dim, self.cat))

    def __hash__(self):
        return hash((self.ind, self.dim, self.cat))


def _make_leaf(data, dim, cat, ind=None) -> _Leaf:
    """The leaf of the right kind for ``data`` (an array, a list, or None and an
    index for a symbolic variable)."""
    if ind is not None:
        return _SymbolicLeaf(data, dim, cat, ind)
    if isinstance(data, list):
        return _ListLeaf(data, dim, cat)
    if len(data.shape) > (1 if cat == _CAT_P else 2):
        return _BatchedLeaf(data, dim, cat)
    return _Leaf(data, dim, cat)


# Memo tables (bounded; cleared when full): nodes built by operations, and
# renumbered formulas. Their keys hold the id() of interned Expr nodes (a
# tuple of ints hashes in C, Expr.__hash__ is a Python call) and their values
# the nodes themselves, which keeps the keyed nodes alive: an id in a key
# cannot be reused by another node while its entry exists.
_MEMO_LIMIT = 1 << 14
_OPS: dict[tuple, Expr] = {}
_RENUMBERED: dict[tuple, Expr] = {}
_ROUTINES: dict[tuple, object] = {}
_LEAF_NODES: dict[tuple, Expr] = {}
# (shape, dtype, axis) of a NumPy array -> (the index of its (rows, D) view, None
# for the array itself; dim; cat; formula; attributes): see LazyTensor.__init__
_PLANS: dict[tuple, tuple] = {}
_ROW_OF_I = (slice(None), 0, slice(None))  # x[:, 0, :] of an (M, 1, D) array
# (name, id(a), id(b), renumbering, params, id(meta a), id(meta b)) -> node, meta
_BINARY: dict[tuple, tuple] = {}
_METAS: dict[tuple, tuple] = {}  # interned attribute tuples (see _meta)
_MERGED: dict[tuple, tuple] = {}  # (id(meta a), id(meta b)) -> (a, b, merged)
_NEW = object.__new__
_LOCK = threading.Lock()
_IND = operator.attrgetter("ind")
_DATA = operator.attrgetter("data")
_NDARRAY = {np.ndarray}
_ID_NONE = id(None)  # in the routine key of a reduction without a second formula


_ROUTINE_LIMIT = 512  # routines hold compiled kernels: fewer of them


def _memo_put(table: dict, key, value):
    with _LOCK:
        if len(table) >= (_ROUTINE_LIMIT if table is _ROUTINES else _MEMO_LIMIT):
            table.clear()
        table[key] = value
    return value


def _renumber(expr: Expr, mapping: tuple[int, ...]) -> Expr:
    """``expr`` with variable k renamed ``mapping[k]`` (categories kept)."""
    key = (id(expr), mapping)
    found = _RENUMBERED.get(key)
    if found is not None:
        return found[1]
    memo: dict[Expr, Expr] = {}
    for node in walk(expr):
        if node.op is Op.VAR:
            pos, cat = node.params
            memo[node] = var(mapping[pos], node.dim, cat)
        elif node.args:
            args = tuple(memo[a] for a in node.args)
            memo[node] = node if args == node.args else Expr(node.op, args, node.params)
        else:
            memo[node] = node
    return _memo_put(_RENUMBERED, key, (expr, memo[expr]))[1]


def _swap(expr: Expr) -> Expr:
    """``expr`` with its i- and j-variables exchanged (``LazyTensor.t()``)."""
    from .program import swap_categories

    key = (id(expr), "swap")
    found = _RENUMBERED.get(key)
    if found is None:
        found = _memo_put(_RENUMBERED, key, (expr, swap_categories(expr)))
    return found[1]


# The attributes an operation carries from its operands to its result, as one
# tuple: (ni, nj, dtype, backend, ranges, flags, shapes). A unary operation copies one
# reference instead of six fields; tuples without ranges are interned, so that
# the merge of two operands' tuples is found again by their ids when an
# expression is rebuilt in a loop. The flags (or-ed by operations) say what the
# leaves hold besides NumPy arrays without batch axes, the case a reduction
# passes straight to Genred's call, with ``shapes`` as the key of its arguments'
# shapes (see Genred._call_flat).
_NI, _NJ, _DT, _BACKEND, _RANGES, _FLAGS, _SHAPES = range(7)
_BATCH_AXES = 1  # a leaf has batch axes
# a leaf is a CuPy or dask array, a NumPy array in non-native byte order, a list
# of floats or symbolic
_NOT_NUMPY = 2


def _meta(ni, nj, dtype, backend=None, ranges=None, flags=0) -> tuple:
    """The (interned, unless it holds ranges) attribute tuple of these values."""
    if ranges is not None:
        return (ni, nj, dtype, backend, ranges, flags, ("lazy", ni, nj, dtype))
    key = (ni, nj, dtype, backend, flags)
    try:
        found = _METAS.get(key)
    except TypeError:  # a backend of an unhashable type: Genred's call rejects it
        return (ni, nj, dtype, backend, None, flags, ("lazy", ni, nj, dtype))
    if found is None:
        found = _memo_put(_METAS, key, (ni, nj, dtype, backend, None, flags,
                                        ("lazy", ni, nj, dtype)))
    return found


def _leaf_meta(rows: int, cat: Cat, dtype) -> tuple:
    """The attribute tuple of an array leaf of ``rows`` rows (interned)."""
    found = _METAS.get((rows, cat, dtype))
    if found is None:
        found = _memo_put(_METAS, (rows, cat, dtype), _meta(
            rows if cat is _CAT_I else None, rows if cat is _CAT_J else None, dtype))
    return found


def _merge(a: tuple, b: tuple) -> tuple:
    """The attributes of an operation on operands of attributes ``a`` and ``b``:
    their row counts, dtypes and backends must agree where both are set; the
    first operand's ranges win."""
    key = (id(a), id(b))
    found = _MERGED.get(key)
    if found is not None:
        return found[2]
    ni, nj, dtype, backend, ranges, flags = a[:6]
    if b[_NI] is not None and b[_NI] != ni:
        ni = _same("number of i rows (M)", ni, b[_NI], ShapeError)
    if b[_NJ] is not None and b[_NJ] != nj:
        nj = _same("number of j rows (N)", nj, b[_NJ], ShapeError)
    if b[_DT] is not None and b[_DT] != dtype:
        dtype = _same("dtype", dtype, b[_DT], DtypeError)
    if b[_BACKEND] is not None and b[_BACKEND] != backend:
        backend = _same("backend", backend, b[_BACKEND], ConfigError)
    if ranges is None:
        ranges = b[_RANGES]
    merged = _meta(ni, nj, dtype, backend, ranges, flags | b[_FLAGS])
    if ranges is None:  # the entry keeps a and b alive: their ids stay theirs
        _memo_put(_MERGED, key, (a, b, merged))
    return merged


def _merge_vars(leaves: tuple, ov: tuple):
    """The variables of an operation on operands with variables ``leaves`` and
    ``ov``, and the renumbering of the second operand's formula to them (None
    when it keeps its numbers)."""
    if not ov or ov is leaves:
        return leaves, None
    if not leaves:
        return ov, None
    if len(ov) == 1:  # a new leaf, most often: one lookup, no loop
        (leaf,) = ov
        if leaf in leaves:
            pos = leaves.index(leaf)
            return leaves, ((pos,) if pos else None)
        return leaves + ov, (len(leaves),)
    merged = list(leaves)
    mapping = []
    for leaf in ov:
        if leaf in merged:
            mapping.append(merged.index(leaf))
        else:
            mapping.append(len(merged))
            merged.append(leaf)
    mapping = tuple(mapping)
    return tuple(merged), (None if mapping == tuple(range(len(mapping))) else mapping)


def _binary(name: str, a: LazyTensor, b: LazyTensor, params: tuple = ()) -> LazyTensor:
    """``name(a, b, *params)``: what ``a - b`` costs, one lookup of the node and
    the merged attributes by the operands' nodes, the renumbering of b's
    variables and the operands' attributes (memoised together)."""
    ea, eb, ma, mb = a._expr, b._expr, a._meta, b._meta
    leaves, ov = a._vars, b._vars
    if len(ov) == 1 and leaves and ov[0] not in leaves:  # b is a new leaf (_merge_vars)
        shift = len(leaves)
        leaves += ov
    else:
        leaves, shift = _merge_vars(leaves, ov)
    key = (name, id(ea), id(eb), shift, params, id(ma), id(mb))
    found = _BINARY.get(key)
    if found is None:
        mapping = (shift,) if shift.__class__ is int else shift
        node = _build(name, (ea, eb if mapping is None else _renumber(eb, mapping)), params)
        # the entry holds ea, eb, ma and mb: their ids stay theirs while it lives;
        # attributes with ranges (not interned) are merged afresh each time
        found = (ea, eb, ma, mb, node, ma if ma is mb else _merge(ma, mb))
        if ma[_RANGES] is None and mb[_RANGES] is None:
            _memo_put(_BINARY, key, found)
    res = _NEW(LazyTensor)
    res._expr, res._vars, res._meta = found[4], leaves, found[5]
    return res


def _unary(name: str, a: LazyTensor, params: tuple = ()) -> LazyTensor:
    """``name(a, *params)``: a lookup of the node; the variables and attributes
    are a's."""
    expr = a._expr
    found = _OPS.get((name, id(expr), params))
    res = _NEW(LazyTensor)
    res._expr = found[1] if found is not None else _build(name, (expr,), params)
    res._vars, res._meta = a._vars, a._meta
    return res


# --------------------------------------------------------------------------
# the class
# --------------------------------------------------------------------------

class LazyTensor:
    r"""A symbolic (M, N, D) array: a formula of i-variables, j-variables and
    parameters, reduced with methods such as :meth:`sum` or :meth:`argKmin`.

    The constructor follows ``pykeops.numpy.LazyTensor``:

    * a (M, 1, D) array is an i-variable, a (1, N, D) array a j-variable, a
      (1, 1, D), 1-D or 0-D array, a float or a list of floats a parameter;
    * a 2-D (M, D) array needs ``axis=0`` (i-variable) or ``axis=1``
      (j-variable); :func:`Vi`, :func:`Vj` and :func:`Pm` say it shorter;
    * an integer is a constant of the formula;
    * a tuple ``(ind, dim, cat)`` is a symbolic variable, given when the
      reduction is called (``cat`` 0: i, 1: j, 2: parameter).

    NumPy, CuPy and dask arrays are accepted (float16, float32 or float64, all
    operands of one dtype). Reductions of dask inputs return lazy dask arrays,
    of CuPy inputs CuPy arrays.

    Examples
    --------
    >>> import numpy as np
    >>> from dredux import LazyTensor
    >>> x, y = np.random.rand(1000, 3), np.random.rand(2000, 3)
    >>> x_i, y_j = LazyTensor(x[:, None, :]), LazyTensor(y[None, :, :])
    >>> D_ij = ((x_i - y_j) ** 2).sum(-1)          # symbolic (1000, 2000) matrix
    >>> nearest = D_ij.argmin(dim=1)                 # (1000, 1) indices
    >>> K_ij = (-D_ij).exp()
    >>> (K_ij @ np.ones(2000)).shape                 # a matrix-vector product
    (1000,)
    """

    # _meta: the attribute tuple (ni, nj, dtype, backend, ranges, flags, shapes) of
    # _meta(); _mv, set on the first K @ v, holds K's product reductions
    __slots__ = ("_expr", "_vars", "_meta", "_mv")
    __array_ufunc__ = None  # numpy_array + lazy_tensor calls LazyTensor.__radd__
    __hash__ = None  # == builds a formula, as in KeOps

    def __init__(self, x=None, axis=None, is_complex=False):
        if is_complex:  # a ComplexLazyTensor (so is any complex data, found below)
            from .complexlazy import complex_init

            complex_init(self, x, axis)
            return
        if type(x) is np.ndarray:  # the common cases first, then _array for the rest
            shape = x.shape
            dtype = x.dtype
            if axis is None or axis.__class__ is int:
                # an array of a shape, dtype and axis seen before: the leaf's view,
                # formula and attributes by one lookup (a loop that rebuilds its
                # expression pays this per leaf)
                plan = _PLANS.get((shape, dtype, axis))
                if plan is not None:
                    index, dim, cat, self._expr, self._meta = plan
                    leaf = _NEW(_Leaf)
                    leaf.data, leaf.dim, leaf.cat = x if index is None else x[index], dim, cat
                    self._vars = (leaf,)
                    return
            cat = index = None  # index: of the (rows, D) view, None for x itself
            if len(shape) == 3 and axis is None and dtype in _NATIVE:
                rows, one, dim = shape
                if 0 < dim <= _MAX_DIM:
                    if one == 1 and rows > 1:  # x[:, None, :]: an i-variable
                        cat, index = _CAT_I, _ROW_OF_I
                    elif rows == 1 and one > 1:  # y[None, :, :]: a j-variable
                        cat, rows, index = _CAT_J, one, 0
            elif len(shape) == 2 and axis.__class__ is int and dtype in _NATIVE:
                rows, dim = shape
                if 0 < rows and 0 < dim <= _MAX_DIM and axis in (0, 1):
                    cat = _CAT_J if axis else _CAT_I
            if cat is not None:
                self._fast(x if index is None else x[index], dtype, rows, dim, cat)
                _memo_put(_PLANS, (shape, dtype, axis),
                          (index, dim, cat, self._expr, self._meta))
                return
            self._array(x, _axis_arg(axis, "LazyTensor(x, axis)"), False)
            return
        self._meta = _meta(None, None, None)
        if x is None:
            raise ArgumentError("LazyTensor got None; it is built from a NumPy, CuPy or dask "
                                "array, a number, a list of floats or an (ind, dim, cat) "
                                "tuple (an operand of a LazyTensor operation is too)")
        if isinstance(x, LazyTensor):
            raise ArgumentError("LazyTensor(x) got a LazyTensor; use it directly (it is "
                                "already symbolic)")
        if axis is not None and axis.__class__ is not int:
            axis = _axis_arg(axis, "LazyTensor(x, axis)")
        if type(x) is tuple:
            self._symbolic(x, axis)
            return
        if isinstance(x, (bool, np.bool_)):
            raise DtypeError(f"LazyTensor got the boolean {shown(x)}; expected a number, a list "
                             "of floats or a float array (write 1.0 or 0.0)")
        if isinstance(x, (int, np.integer)):
            if axis not in (None, 2):
                raise ShapeError(f"an integer constant is a parameter: axis must be None "
                                 f"or 2, got axis={shown(axis)}")
            if abs(int(x)) <= limits.MAX_PARAM:
                self._expr, self._vars = const(int(x)), ()
                return
            x = _float_arg(x, "LazyTensor")  # too large to be exact: a parameter like any float
        if isinstance(x, (float, np.floating)):
            x = [float(x)]
        elif isinstance(x, (complex, np.complexfloating)):
            from .complexlazy import complex_init

            complex_init(self, x, axis)
            return
        if isinstance(x, list):
            self._param_list(x, axis)
            return
        if not (isinstance(x, np.ndarray) or is_cupy(x) or is_dask(x)):
            raise ArgumentError(f"LazyTensor is built from a NumPy, CuPy or dask array, a "
                                f"number, a list of floats or an (ind, dim, cat) tuple; got "
                                f"{type(x).__name__} {reprlib.repr(x)}")
        self._array(x, axis, is_dask(x))

    # construction helpers ---------------------------------------------------
    def _symbolic(self, x: tuple, axis) -> None:
        if len(x) == 3 and hasattr(x[0], "shape"):  # Vi(x, 3): an array and a dimension
            raise FormulaError(f"Vi/Vj/Pm/Var got an array ({type(x[0]).__name__} of shape "
                               f"{tuple(x[0].shape)}) and a dimension {reprlib.repr(x[1])}; "
                               "a dimension goes with an index only", hint="Write Vi(x) for "
                               "an array, Vi(0, 3) for a symbolic variable given at call time.")
        if (len(x) != 3 or not all(isinstance(v, int) and not isinstance(v, bool)
                                   for v in x)):
            raise FormulaError(f"a symbolic LazyTensor is an (ind, dim, cat) tuple of three "
                               f"integers, got {reprlib.repr(x)}", hint="e.g. "
                               "LazyTensor((0, 3, 0)) for an i-variable of dimension 3 given "
                               "first at call time.")
        if axis is not None:
            raise FormulaError("LazyTensor((ind, dim, cat)) takes no axis: the category is "
                               "the tuple's third item")
        ind, dim, cat = x
        if not 0 <= ind < limits.MAX_ARGS:
            raise FormulaError(f"symbolic variable index {ind} is outside 0 .. "
                               f"{limits.MAX_ARGS - 1}")
        if not 1 <= dim <= limits.MAX_DIM:
            raise FormulaError(f"symbolic variable dimension {dim} is outside 1 .. "
                               f"{limits.MAX_DIM}")
        if cat not in (0, 1, 2):
            raise FormulaError(f"symbolic variable category must be 0 (i), 1 (j) or 2 "
                               f"(parameter), got {cat}")
        self._meta = _meta(None, None, None, flags=_NOT_NUMPY)
        self._leaf(_SymbolicLeaf(None, dim, Cat(cat), ind))

    def _param_list(self, x: list, axis) -> None:
        if axis not in (None, 2):
            raise ShapeError(f"numbers and lists of numbers are parameters: axis must be "
                             f"None or 2, got axis={shown(axis)}")
        if not x:
            raise ShapeError("LazyTensor got an empty list; expected at least one number")
        if any(isinstance(v, (complex, np.complexfloating)) for v in x):
            from .complexlazy import complex_init

            complex_init(self, x, axis)
            return
        values = []
        for v in x:
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer,
                                                                     np.floating)):
                raise DtypeError(f"LazyTensor got a list holding {shown(v)} "
                                 f"({type(v).__name__}); expected a list of floats")
            v = _float_arg(v, "LazyTensor")
            if not math.isfinite(v):
                raise FormulaError(f"LazyTensor got the non-finite number {shown(v)}; parameters "
                                   "must be finite")
            values.append(v)
        self._meta = _meta(None, None, None, flags=_NOT_NUMPY)
        self._leaf(_ListLeaf(values, len(values), Cat.P))

    def _array(self, x, axis, lazy: bool) -> None:
        shape = x.shape
        dtype = x.dtype
        if dtype.type not in _FLOATS:
            dtype = np.dtype(dtype)
            if dtype.kind == "c":  # a ComplexLazyTensor of its interleaved parts
                from .complexlazy import complex_init

                complex_init(self, x, axis)
                return
            raise DtypeError(f"LazyTensor got an array of dtype {dtype}; expected float16, "
                             "float32 or float64 (convert it with .astype(np.float32))")
        native = dtype.isnative
        if not native:  # ">f8" and "<f8" operands are both float64 (Genred converts)
            dtype = dtype.newbyteorder("=")
        if lazy and any(isinstance(s, float) and math.isnan(s) for s in shape):
            raise ShapeError("LazyTensor got a dask array of unknown chunk sizes; call "
                             ".compute_chunk_sizes() on it first")
        ndim = len(shape)
        if ndim == 3:
            if axis is not None:
                raise ShapeError(f"LazyTensor got a 3-D array of shape {tuple(shape)} and "
                                 f"axis={shown(axis)}; a 3-D array's shape says its axis: leave "
                                 "axis out")
            if shape[1] == 1:
                x, cat = (x[0, 0, :], Cat.P) if shape[0] == 1 else (x[:, 0, :], Cat.I)
            elif shape[0] == 1:
                x, cat = x[0, :, :], Cat.J
            else:
                raise ShapeError(f"LazyTensor got an array of shape {tuple(shape)}; a 3-D "
                                 "array must be (M, 1, D) for an i-variable, (1, N, D) for "
                                 "a j-variable or (1, 1, D) for a parameter, e.g. "
                                 "x[:, None, :] or y[None, :, :]")
        elif ndim == 2:
            if axis not in (0, 1) or isinstance(axis, bool):
                raise ShapeError(f"LazyTensor got a 2-D array of shape {tuple(shape)} with "
                                 f"axis={shown(axis)}; a 2-D array needs axis=0 (an i-variable, "
                                 "like Vi(x)) or axis=1 (a j-variable, like Vj(x)), or "
                                 "write x[:, None, :] / x[None, :, :]")
            cat = Cat.I if axis == 0 else Cat.J
        elif ndim > 3:  # batch axes first: (B..., M, 1, D), (B..., 1, N, D), (B..., 1, 1, D)
            if axis is not None:
                raise ShapeError(f"LazyTensor got a {ndim}-D array of shape {tuple(shape)} "
                                 f"and axis={shown(axis)}; its shape says its axis: leave axis "
                                 "out")
            if shape[-2] == 1:
                x, cat = ((x[..., 0, 0, :], Cat.P) if shape[-3] == 1 else
                          (x[..., :, 0, :], Cat.I))
            elif shape[-3] == 1:
                x, cat = x[..., 0, :, :], Cat.J
            else:
                raise ShapeError(f"LazyTensor got an array of shape {tuple(shape)}; with "
                                 "batch axes B... first, it must be (B..., M, 1, D) for an "
                                 "i-variable, (B..., 1, N, D) for a j-variable or "
                                 "(B..., 1, 1, D) for a parameter")
        else:
            if axis not in (None, 2):
                fix = " (reshape it with x.reshape(-1, 1))" if ndim == 1 else ""
                raise ShapeError(f"LazyTensor got a {ndim}-D array of shape {tuple(shape)} "
                                 f"with axis={shown(axis)}; 1-D and 0-D arrays are parameters "
                                 f"(axis None or 2){fix}")
            if ndim == 0:
                x = x.reshape(1)
            cat = Cat.P
        rows, dim = (x.shape[-2], x.shape[-1]) if cat != Cat.P else (1, x.shape[-1])
        if rows == 0 or not 0 < dim <= limits.MAX_DIM:
            raise ShapeError(f"LazyTensor got an array of shape {tuple(shape)}; it needs at "
                             f"least one row, and its last axis (the vector dimension) must "
                             f"be 1 .. {limits.MAX_DIM}")
        leaf = _make_leaf(x, int(dim), cat)
        self._meta = _meta(int(rows) if cat == Cat.I else None,
                           int(rows) if cat == Cat.J else None, dtype,
                           flags=(_BATCH_AXES if leaf.batched else 0)
                           | (0 if type(x) is np.ndarray and native else _NOT_NUMPY))
        self._leaf(leaf)

    def _fast(self, x: np.ndarray, dtype, rows: int, dim: int, cat: Cat) -> None:
        """An i- or j-variable of the checked (rows, dim) array ``x``, in native
        byte order (the _Leaf written out: its constructor's call would cost as
        much as its fields, paid by every leaf of a loop that rebuilds its
        expression)."""
        node = _LEAF_NODES.get((dim, cat))
        self._expr = node if node is not None else _leaf_node(dim, cat)
        leaf = _NEW(_Leaf)
        leaf.data, leaf.dim, leaf.cat = x, dim, cat
        self._vars = (leaf,)
        meta = _METAS.get((rows, cat, dtype))
        self._meta = meta if meta is not None else _leaf_meta(rows, cat, dtype)

    def _leaf(self, leaf: _Leaf) -> None:
        """A LazyTensor of one variable (its attributes are set by the caller)."""
        node = _LEAF_NODES.get((leaf.dim, leaf.cat))
        self._expr = node if node is not None else _leaf_node(leaf.dim, leaf.cat)
        self._vars = (leaf,)

    # properties -------------------------------------------------------------
    @property
    def ni(self):
        """The number of i rows M (None when there is no i-variable)."""
        return self._meta[_NI]

    @property
    def nj(self):
        """The number of j rows N (None when there is no j-variable)."""
        return self._meta[_NJ]

    @property
    def _dtype(self):
        return self._meta[_DT]

    @property
    def backend(self):
        """The backend the reductions of this LazyTensor run on (None: the call's
        or the configured default); settable, as in KeOps."""
        return self._meta[_BACKEND]

    @backend.setter
    def backend(self, value):
        ni, nj, dtype, _, ranges, flags = self._meta[:6]
        self._meta = _meta(ni, nj, dtype, value, ranges, flags)

    @property
    def ranges(self):
        """The block-sparse ranges of its reductions (None: dense); settable, as in
        KeOps (``K.ranges = ranges``)."""
        return self._meta[_RANGES]

    @ranges.setter
    def ranges(self, value):
        ni, nj, dtype, backend, _, flags = self._meta[:6]
        self._meta = _meta(ni, nj, dtype, backend, value, flags)

    @property
    def ndim(self) -> int:
        """The vector dimension D (KeOps's ``ndim``: not the number of axes)."""
        return self._expr.dim

    @property
    def dtype(self):
        """The operands' dtype, or None when the expression has no array yet."""
        return self._dtype

    @property
    def nbatchdims(self) -> int:
        """The number of batch axes (0 without batch axes)."""
        return len(self._batch)

    @property
    def batchdims(self) -> tuple:
        """The broadcast batch axes of the operands (``()`` without batch axes)."""
        return self._batch

    @property
    def axis(self):
        """The category of a single variable, as in KeOps (0: i, 1: j, 2: a
        parameter); None for any other expression."""
        if self._expr.op is Op.VAR and len(self._vars) == 1:
            return int(self._vars[0].cat)
        return None

    @property
    def symbolic_variables(self) -> tuple:
        """The ``(ind, dim, cat)`` of the symbolic variables (``Vi(0, 3)``...),
        given at call time."""
        return tuple((leaf.ind, leaf.dim, int(leaf.cat)) for leaf in self._vars
                     if isinstance(leaf, _SymbolicLeaf))

    @property
    def is_complex(self) -> bool:
        """False: complex LazyTensors are :class:`~dredux.ComplexLazyTensor`."""
        return False

    @property
    def _shape(self) -> tuple:
        return (*self._batch, self.ni or 1, self.nj or 1, self._expr.dim)

    @property
    def _batch(self) -> tuple:
        """The broadcast batch axes of the arrays (empty without batch axes)."""
        if not self._meta[_FLAGS] & _BATCH_AXES:
            return ()
        lead: tuple = ()
        for leaf in self._vars:
            shape = getattr(leaf.data, "shape", None)
            k = 0 if shape is None else len(shape) - (1 if leaf.cat == Cat.P else 2)
            if k > 0:
                try:
                    lead = np.broadcast_shapes(lead, tuple(shape[:k]))
                except ValueError:
                    raise ShapeError(f"batch axes {lead} and {tuple(shape[:k])} of this "
                                     "LazyTensor's arrays do not broadcast") from None
        return tuple(int(v) for v in lead)

    @property
    def shape(self) -> tuple:
        """``(B..., M, N, D)``, or ``(B..., M, N)`` when D = 1 (as in KeOps; B...: the
        batch axes, if any)."""
        s = self._shape
        return s[:-1] if s[-1] == 1 else s

    def dim(self) -> int:
        """The number of axes of :attr:`shape` (with D): 3, as for an (M, N, D) array,
        plus the batch axes."""
        return len(self._shape)

    @property
    def variables(self) -> tuple:
        """The arrays (and lists of floats) behind the variables, in formula order."""
        return tuple(leaf.data for leaf in self._vars if leaf.ind is None)

    @property
    def formula(self) -> str:
        """The formula in KeOps syntax, variables written ``Var(pos, dim, cat)``."""
        f, _, specs = _numbered(self._expr, None, self._vars)
        return to_formula(f, {(s.pos, int(s.cat)): s.name for s in specs}, limit=10_000)

    def __repr__(self) -> str:
        return (f"dredux LazyTensor\n    formula: {self.formula}\n    shape: {self.shape}"
                + (f"\n    dtype: {self._dtype.name}" if self._dtype is not None else ""))

    __str__ = __repr__

    def __getattr__(self, name):
        if name in _COMPLEX_ONLY:
            raise FormulaError(f"LazyTensor.{name} is for complex LazyTensors; this one is "
                               "real", hint="Make it complex with x.real2complex(), or build "
                               "it from a complex array.")
        if name in _UNSUPPORTED:
            raise FormulaError(f"LazyTensor.{name} is a pykeops method dredux does not "
                               f"support ({_UNSUPPORTED[name]})",
                               hint="docs/formulas.md lists the differences from KeOps.")
        raise AttributeError(f"'LazyTensor' object has no attribute {name!r}")

    def __reduce__(self):
        # flat: the formula as the tuple of ir.flatten (pickling nested nodes would
        # recurse once per level), the leaves as tuples; the products cached by
        # K @ v are left out
        leaves = tuple((leaf.data, leaf.dim, int(leaf.cat), leaf.ind) for leaf in self._vars)
        return (_load_lazy, (flatten((self._expr,)), leaves, self._meta[:6]))

    def __bool__(self):
        raise TypeError("a LazyTensor has no truth value: comparisons such as x_i < y_j "
                        "build formulas (0 or 1 per pair); reduce them first, e.g. "
                        "(x_i < y_j).sum(1)")

    # building ---------------------------------------------------------------
    def _operand(self, other, what: str | None = None) -> LazyTensor:
        """``other`` as a LazyTensor; ``what`` names the argument in the messages of
        an array that is no operand (a 2-D array, which needs Vi or Vj)."""
        if isinstance(other, LazyTensor):
            return other
        if isinstance(other, LazyReduction):
            raise ArgumentError("one operand is a reduced LazyTensor (call=False); call it "
                                "first to get an array, then wrap that array again")
        try:
            return LazyTensor(other)
        except ShapeError as exc:
            if what is None:
                raise
            raise ShapeError(f"{what}: {exc}") from None

    def _real_operand(self, other, what: str, argument: str | None = None) -> LazyTensor:
        other = self._operand(other, argument)
        if type(other) is not LazyTensor:
            raise FormulaError(f"{what} of a complex LazyTensor operand is not defined here",
                               hint="Take its parts first (z.real, z.imag, abs(z)).")
        return other

    def _join(self, *others: LazyTensor):
        """The merged variables and attributes of ``self`` and ``others`` (a
        LazyTensor whose formula the caller sets), and each operand's formula
        renumbered to the merged variables."""
        leaves, meta, exprs = self._vars, self._meta, [self._expr]
        for o in others:
            leaves, shift = _merge_vars(leaves, o._vars)
            exprs.append(o._expr if shift is None else _renumber(o._expr, shift))
            if o._meta is not meta:
                meta = _merge(meta, o._meta)
        res = _NEW(LazyTensor)
        res._expr, res._vars, res._meta = None, leaves, meta
        return res, exprs

    def _apply(self, name: str, *operands, params: tuple = ()) -> LazyTensor:
        """``name(self, *operands, *params)`` with a formula function of
        :data:`dredux.functions.FUNCTIONS` (memoised by the operands' nodes)."""
        if not operands:
            return _unary(name, self, params)
        if len(operands) == 1:
            (o,) = operands
            if type(o) is not LazyTensor:
                o = self._operand(o)
                if type(o) is not LazyTensor:  # complex: + - * / make a complex result
                    from .complexlazy import arith

                    return arith(name, self, o)
            return _binary(name, self, o, params)
        res, exprs = self._join(*[self._real_operand(o, name) for o in operands])
        res._expr = _build(name, tuple(exprs), params)
        return res

    def _swapped(self) -> LazyTensor:
        # new leaves: the same array is another variable of the transposed formula
        leaves = tuple(_make_leaf(leaf.data, leaf.dim, _other_cat(leaf.cat), leaf.ind)
                       for leaf in self._vars)
        ni, nj, dtype, backend, ranges, flags = self._meta[:6]
        # the block-sparsity pattern is transposed with the axes (ranges_i <-> ranges_j)
        ranges = swap_axes(ranges)
        return _new(_swap(self._expr), leaves, _meta(nj, ni, dtype, backend, ranges, flags))

    # arithmetic ----------------------------------------------------------------
    def __add__(self, other):
        if type(other) is LazyTensor:
            return _binary("Add", self, other)
        return self._apply("Add", other)

    def __radd__(self, other):
        return self._operand(other)._apply("Add", self)

    def __sub__(self, other):
        if type(other) is LazyTensor:
            return _binary("Subtract", self, other)
        return self._apply("Subtract", other)

    def __rsub__(self, other):
        return self._operand(other)._apply("Subtract", self)

    def __mul__(self, other):
        if type(other) is LazyTensor:
            return _binary("Mult", self, other)
        return self._apply("Mult", other)

    def __rmul__(self, other):
        return self._operand(other)._apply("Mult", self)

    def __truediv__(self, other):
        if type(other) is LazyTensor:
            return _binary("Divide", self, other)
        return self._apply("Divide", other)

    def __rtruediv__(self, other):
        return self._operand(other)._apply("Divide", self)

    def __or__(self, other):
        """``(x | y)``: the scalar product of two vectors of equal dimension."""
        return self._apply("Scalprod", other)

    def __ror__(self, other):
        return self._operand(other)._apply("Scalprod", self)

    def __neg__(self):
        return _unary("Minus", self)

    def __abs__(self):
        return self._apply("Abs")

    def __pow__(self, other):
        """``x ** n``: Square for 2, Pow for other integers, Sqrt / Rsqrt for 0.5 /
        -0.5, Powf for other floats and LazyTensors (a parameter exponent)."""
        if other.__class__ is int and other == 2:
            return _unary("Square", self)
        if isinstance(other, (int, np.integer)) and not isinstance(other, (bool, np.bool_)):
            n = int(other)
            if abs(n) > limits.MAX_POW:
                raise FormulaError(f"the exponent {n} is outside -{limits.MAX_POW} .. "
                                   f"{limits.MAX_POW}", hint="Use a float exponent "
                                   "(Powf) for large powers.")
            return _unary("Square", self) if n == 2 else _unary("Pow", self, (n,))
        if isinstance(other, (float, np.floating)):
            if other == 0.5:
                return self._apply("Sqrt")
            if other == -0.5:
                return self._apply("Rsqrt")
        other = self._operand(other)
        if other.ndim not in (1, self.ndim):
            raise ShapeError(f"x ** y needs an exponent of dimension 1 or {self.ndim} (the "
                             f"dimension of x), got {other.ndim}")
        return self._apply("Powf", other)

    def power(self, other):
        return self ** other

    # comparisons: formulas of 0/1 values
    def __eq__(self, other):
        return self._apply("Equal", other)

    def __ne__(self, other):
        return self._apply("NotEqual", other)

    def __lt__(self, other):
        return self._apply("LessThan", other)

    def __le__(self, other):
        return self._apply("LessOrEqual", other)

    def __gt__(self, other):
        return self._apply("GreaterThan", other)

    def __ge__(self, other):
        return self._apply("GreaterOrEqual", other)

    # maths ----------------------------------------------------------------------
    def abs(self):
        return _unary("Abs", self)

    def exp(self):
        return _unary("Exp", self)

    def log(self):
        return _unary("Log", self)

    def xlogx(self):
        return self._apply("XLogX")

    def sin(self):
        return self._apply("Sin")

    def cos(self):
        return self._apply("Cos")

    def asin(self):
        return self._apply("Asin")

    def acos(self):
        return self._apply("Acos")

    def atan(self):
        return self._apply("Atan")

    def atan2(self, other):
        """``y.atan2(x)``: the angle of (x, y), element-wise."""
        return self._apply("Atan2", other)

    def sinxdivx(self):
        return self._apply("SinXDivX")

    def sinc(self):
        """sin(pi x) / (pi x)."""
        return (math.pi * self).sinxdivx()

    def sqrt(self):
        return _unary("Sqrt", self)

    def rsqrt(self):
        return self._apply("Rsqrt")

    def square(self):
        return _unary("Square", self)

    def inv(self):
        return self._apply("Inv")

    def sign(self):
        return self._apply("Sign")

    def step(self):
        return self._apply("Step")

    def relu(self):
        return self._apply("ReLU")

    def floor(self):
        return self._apply("Floor")

    def round(self, decimals: int = 0):
        """Round to ``decimals`` decimal places (halves away from zero)."""
        return self._apply("Round", params=(_op_int("Round", 1, decimals, "round(decimals)"),))

    def clamp(self, a, b):
        """Clamp into [a, b]: ClampInt for two integers, Clamp otherwise."""
        if all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))
               for v in (a, b)):
            return self._apply("ClampInt", params=(_op_int("ClampInt", 1, a, "clamp(a)"),
                                                   _op_int("ClampInt", 2, b, "clamp(b)")))
        return self._apply("Clamp", a, b)

    def ifelse(self, a, b):
        """``a`` where ``self >= 0``, else ``b``."""
        return self._apply("IfElse", a, b)

    def mod(self, modulus, offset=0):
        """``self - modulus * floor((self - offset) / modulus)``."""
        return self._apply("Mod", modulus, offset)

    def sqnorm2(self):
        return self._apply("SqNorm2")

    def norm2(self):
        return self._apply("Norm2")

    def norm(self, dim):
        """The Euclidean norm over the vector axis (``dim=-1`` or 2)."""
        dim = _axis_arg(dim, "norm(dim=...)")
        if dim not in (-1, 2):
            raise ShapeError(f"norm(dim={shown(dim)}): LazyTensors take norms over their last "
                             "axis only: dim=-1 (or 2)")
        return self.norm2()

    def normalize(self):
        return self._apply("Normalize")

    def sqdist(self, other):
        return self._apply("SqDist", other)

    def weightedsqnorm(self, s):
        """``x.weightedsqnorm(s)``: weights s of dimension 1, D or D*D."""
        s = self._operand(s)
        return s._apply("WeightedSqNorm", self)

    def weightedsqdist(self, g, s):
        """``(self - g).weightedsqnorm(s)``."""
        return (self - g).weightedsqnorm(s)

    def difference_matrix(self, other):
        """The vector of every ``self[k] - other[l]`` (dimension D_self * D_other,
        ``k`` major), as KeOps's ``DifferenceMatrix``."""
        other = self._operand(other)
        return (self.tensorprod(LazyTensor(1) + 0 * other)
                - (LazyTensor(1) + 0 * self).tensorprod(other))

    def elem(self, i):
        """Component ``i`` (a scalar)."""
        i = _op_int("Elem", 1, i, "elem(i)")
        if not 0 <= i < self.ndim:
            raise ShapeError(f"elem({i}) is out of bounds: the LazyTensor has dimension "
                             f"{self.ndim}, so the index must be 0 .. {self.ndim - 1}")
        return self._apply("Elem", params=(i,))

    def extract(self, i, d):
        """Components ``i .. i + d - 1``."""
        i, d = _op_int("Extract", 1, i, "extract(i)"), _op_int("Extract", 2, d, "extract(d)")
        if not (0 <= i < self.ndim and 1 <= d and i + d <= self.ndim):
            raise ShapeError(f"extract({i}, {d}) is out of bounds: the LazyTensor has "
                             f"dimension {self.ndim}; expected 0 <= i and i + d <= "
                             f"{self.ndim}, d >= 1")
        return self._apply("Extract", params=(i, d))

    def __getitem__(self, key):
        """``x[k]`` (:meth:`elem`) and ``x[a:b]`` (:meth:`extract`) on the vector
        axis; ``x[:, :, k]`` and ``x[..., a:b]`` too."""
        if isinstance(key, tuple):
            head = key[:-1]
            if (key and all(k.__class__ is slice and k == slice(None)
                            for k in head if k is not Ellipsis)
                    and (len(key) == 3 or (Ellipsis in head and len(key) <= 3))):
                key = key[-1]
            else:
                raise ShapeError(f"LazyTensor indexing {shown(key)}: only the last (vector) axis "
                                 "can be indexed, e.g. x[k], x[a:b] or x[:, :, a:b]")
        if isinstance(key, slice):
            for bound in (key.start, key.stop, key.step):
                if bound is not None and (isinstance(bound, (bool, np.bool_))
                                          or not isinstance(bound, (int, np.integer))):
                    raise ArgumentError(f"LazyTensor slice {shown(key)}: its bounds must be "
                                        f"integers or None, got {type(bound).__name__} "
                                        f"{reprlib.repr(bound)}; e.g. x[0:2]")
            start, stop, step = key.indices(self.ndim)
            if step != 1 or stop <= start:
                raise ShapeError(f"LazyTensor slice {shown(key)} of a vector of dimension "
                                 f"{self.ndim}: expected a non-empty range with step 1")
            return self.extract(start, stop - start)
        if isinstance(key, (int, np.integer)) and not isinstance(key, (bool, np.bool_)):
            k = int(key)
            return self.elem(k + self.ndim if k < 0 else k)
        raise ShapeError(f"LazyTensor index {shown(key)}: expected an integer or a slice of the "
                         "vector axis")

    def one_hot(self, D):
        """A one-hot vector of dimension ``D`` at the rounded value of a scalar."""
        D = _op_int("OneHot", 1, D, "one_hot(D)")
        if self.ndim != 1:
            raise ShapeError(f"one_hot needs a scalar LazyTensor, got dimension {self.ndim}")
        return self._apply("OneHot", params=(D,))

    def concat(self, other):
        """Concatenation along the vector axis."""
        return self._apply("Concat", other)

    @staticmethod
    def concatenate(tensors, axis=-1):
        """Concatenate a tuple of LazyTensors along the vector axis (axis -1 or 2)."""
        axis = _axis_arg(axis, "LazyTensor.concatenate(axis=...)")
        if axis not in (-1, 2):
            raise ShapeError(f"LazyTensor.concatenate(axis={shown(axis)}): only the vector axis "
                             "(-1 or 2) can be concatenated")
        tensors = tuple(tensors)
        if not tensors:
            raise ShapeError("LazyTensor.concatenate got no LazyTensor")
        out = tensors[0]
        if not isinstance(out, LazyTensor):
            out = LazyTensor(out)
        for t in tensors[1:]:
            out = out.concat(t)
        return out

    @staticmethod
    def cat(tensors, dim):
        return LazyTensor.concatenate(tensors, dim)

    def matvecmult(self, other):
        """Matrix (dimension A*B, row-major) times vector (dimension B)."""
        return self._apply("MatVecMult", other)

    def vecmatmult(self, other):
        """Vector (dimension A) times matrix (dimension A*B, row-major)."""
        return self._apply("VecMatMult", other)

    def tensorprod(self, other):
        """Outer product (dimension A*B)."""
        return self._apply("TensorProd", other)

    def keops_tensordot(self, other, dimfa, dimfb, contfa, contfb, *args):
        """KeOps's ``TensorDot`` on the vector axes reshaped to ``dimfa`` / ``dimfb``,
        contracting axes ``contfa`` with ``contfb`` (optional output permutation)."""
        lists = tuple(_int_list(v, "keops_tensordot") for v in (dimfa, dimfb, contfa,
                                                                 contfb, *args))
        return self._apply("TensorDot", other, params=lists)

    def keops_kron(self, other, dimfself, dimfother):
        """KeOps's ``Kron``: the Kronecker product of the vector axes reshaped to
        ``dimfself`` and ``dimfother`` (lists of equal lengths), flattened, as
        ``np.kron`` of the reshaped arrays."""
        lists = tuple(_int_list(v, "keops_kron") for v in (dimfself, dimfother))
        return self._apply("Kron", other, params=lists)

    def bspline(self, x, k=0):
        """The B-spline basis functions of order ``k`` on the knots ``self``
        (non-decreasing, dimension n), at the scalar ``x``: n - k - 1 values."""
        return self._apply("BSpline", x, params=(_op_int("BSpline", 2, k, "bspline(k)"),))

    def softdtw_sqdist(self, other, gamma):
        """The soft-DTW discrepancy of the sequences ``self`` and ``other`` (their
        components) for the squared difference, smoothed by the scalar ``gamma > 0``."""
        return self._apply("SoftDTW_SqDist", other, gamma)

    def factorize(self, other):
        """``self``, unchanged: KeOps's hint to compute the subexpression ``other``
        once. dredux's formulas share every repeated subexpression already (one
        node, computed once per pair), so there is nothing to do."""
        self._real_operand(other, "factorize")
        return self

    def auto_factorize(self):
        """``self``, unchanged (see :meth:`factorize`)."""
        return self

    def real2complex(self):
        """The complex LazyTensor of real parts ``self`` (imaginary parts 0)."""
        return self._complex("Real2Complex")

    def imag2complex(self):
        """The complex LazyTensor of imaginary parts ``self`` (real parts 0)."""
        return self._complex("Imag2Complex")

    def exp1j(self):
        """``exp(1j * self)``: the complex LazyTensor ``cos(self) + 1j sin(self)``."""
        return self._complex("ComplexExp1j")

    def _complex(self, name: str):
        from .complexlazy import _cx

        return _cx(_unary(name, self))

    def grad(self, other, gradin):
        """The gradient of ``self`` wrt variable ``other``, applied to ``gradin``."""
        return self._derivative("Grad", other, gradin)

    def diff(self, other, diffin):
        """The differential of ``self`` wrt variable ``other`` in direction ``diffin``."""
        return self._derivative("Diff", other, diffin)

    def laplacian(self, other):
        """The Laplacian of a scalar ``self`` wrt variable ``other``."""
        return self._derivative("Laplacian", other)

    def divergence(self, other):
        """The divergence of ``self`` (of ``other``'s dimension) wrt variable
        ``other``: the sum over k of d self_k / d other_k."""
        return self._derivative("Divergence", other)

    def grad_matrix(self, other):
        """The gradient matrix of ``self`` wrt variable ``other``: component
        ``i * other.ndim + j`` is d self_i / d other_j."""
        return self._derivative("GradMatrix", other)

    def _derivative(self, name, v, *rest):
        v = self._real_operand(v, name)
        if v._expr.op is not Op.VAR:
            raise FormulaError(f"{name.lower()}(v, ...) differentiates with respect to a "
                               f"variable: v must be a LazyTensor made from one array "
                               f"(or symbolic), got the formula {v.formula}")
        op = {"Grad": Op.GRAD, "Diff": Op.DIFF, "Laplacian": Op.LAPLACIAN,
              "Divergence": Op.DIVERGENCE, "GradMatrix": Op.GRADMATRIX}[name]
        argument = {"Grad": "grad(v, gradin): gradin", "Diff": "diff(v, diffin): diffin"}
        res, exprs = self._join(v, *(self._real_operand(r, name, argument.get(name))
                                     for r in rest))
        res._expr = _node(name, lambda: Expr(op, tuple(exprs)))
        return res

    # reductions --------------------------------------------------------------
    def _reduce(self, op: str, axis, dim, weight=None, opt_arg=None, call=True,
                _batch=None, **kwargs):
        if dim is not None:
            axis = dim
        if axis.__class__ is not int:
            axis = _axis_arg(axis, f"the {op} reduction")
        if axis is None:
            raise ShapeError(f"the {op} reduction needs axis=0 (over i) or axis=1 (over j),"
                             " e.g. .sum(axis=1) or .sum(dim=1)")
        batch = len(self._batch) if _batch is None else _batch
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) \
                or axis - batch not in (0, 1):
            if batch:
                raise ShapeError(
                    f"reduction axis {shown(axis)} is out of range: with {batch} batch axes "
                    f"first, expected {batch} (reduce over i: one result per j) or "
                    f"{batch + 1} (reduce over j: one result per i), as in KeOps")
            raise ShapeError(f"reduction axis {shown(axis)} is out of range: expected 0 (reduce "
                             "over i: one result per j) or 1 (reduce over j: one result "
                             "per i)")
        return self._reduction(op, int(axis) - batch, weight, opt_arg, call, kwargs)

    def _reduction(self, op: str, axis: int, weight, opt_arg, call, kwargs: dict):
        """The ``op`` reduction over the checked ``axis`` (0 or 1, batch axes off)."""
        if call is not True and call is not False:
            call = _bool_arg(call, f"the {op} reduction's call=")
        if opt_arg is not None and opt_arg.__class__ is not int:
            # K, a key of the routines' table: the kind checked here, the value by Genred
            if isinstance(opt_arg, (bool, np.bool_)) or not isinstance(opt_arg, np.integer):
                raise ArgumentError(f"the {op} reduction's K must be a positive integer, "
                                    f"got {type(opt_arg).__name__} {reprlib.repr(opt_arg)}")
            opt_arg = int(opt_arg)
        if not kwargs:
            init, options = {}, kwargs
        elif kwargs.keys() <= _CALL_SET:  # no option shapes the routine
            init, options = {}, kwargs
        else:
            init, options = _split_options(kwargs)
        if weight is not None:
            weight = self._operand(weight, f"the {op} reduction's weight")
            if type(weight) is not LazyTensor:  # complex weights: a complex result
                from .complexlazy import complex_result

                if op != "SumSoftMaxWeight":
                    raise FormulaError(f"the {op} reduction takes real weights; complex "
                                       "weights go with sumsoftmaxweight (or a Sum)")
                weight = _new(weight._expr, weight._vars, weight._meta)  # its parts
                return complex_result(self._reduction(op, axis, weight, opt_arg, call,
                                                      kwargs))
            res, (f, f2) = self._join(weight)
        else:
            res, f, f2 = self, self._expr, None
        meta = res._meta
        if call and not meta[_FLAGS]:
            # NumPy arrays alone, no batch axes, a routine already made: call it
            # (its arguments are the leaves in order; the constructors checked them)
            found = _ROUTINES.get(_routine_key(f, f2, op, axis, opt_arg, init,
                                               len(res._vars)))
            if found is not None:
                if meta[_BACKEND] is not None or meta[_RANGES] is not None:
                    options = _source_options(options, meta)
                return found[2]._call_flat(tuple(map(_DATA, res._vars)),
                                           _shapes=meta[_SHAPES], **options)
        return LazyReduction(res, f, f2, op, axis, opt_arg, init, options, call)

    def _vector_or_reduce(self, op: str, axis, dim, kwargs):
        """``op`` over the vector axis (axis -1 or 2), or the ``op`` reduction over
        i (axis 0) or j (axis 1), as KeOps's sum/min/max/argmin/argmax."""
        if dim is not None:
            axis = dim
        if axis.__class__ is not int:
            axis = _axis_arg(axis, f"{op.lower()}(axis=...)")
        if axis == -1:
            return _unary(op, self)
        meta = self._meta
        if axis.__class__ is int and not meta[_FLAGS] & _BATCH_AXES:
            if axis == 0 or axis == 1:  # the checks of _reduce, for the common case
                if not meta[_FLAGS] and meta[_BACKEND] is None and meta[_RANGES] is None \
                        and kwargs.keys() <= _CALL_SET:
                    # what _reduction does for NumPy leaves and call options alone,
                    # written out (two calls fewer, for a loop that reduces a
                    # rebuilt expression): the routine already made, called. The
                    # key is _routine_key(f, None, op, axis, None, {}, n); should
                    # the two differ, this path misses and _reduction runs
                    found = _ROUTINES.get((id(self._expr), _ID_NONE, op, axis, None, (),
                                           len(self._vars)))
                    if found is not None:
                        return found[2]._call_flat(tuple(map(_DATA, self._vars)),
                                                   _shapes=meta[_SHAPES], **kwargs)
                return self._reduction(op, axis, None, None, kwargs.pop("call", True),
                                       kwargs)
            if axis == 2:
                return _unary(op, self)
        batch = len(self._batch)
        if not isinstance(axis, bool) and isinstance(axis, int) and axis == 2 + batch:
            return self._apply(op)
        return self._reduce(op, axis, None, _batch=batch, **kwargs)

    def sum(self, axis=-1, dim=None, **kwargs):
        """The sum over the vector axis (axis -1 or 2), or the Sum reduction over i
        (axis 0) or j (axis 1)."""
        if axis.__class__ is int and axis == -1 and dim is None and not kwargs:
            return _unary("Sum", self)
        return self._vector_or_reduce("Sum", axis, dim, kwargs)

    def sum_reduction(self, axis=None, dim=None, **kwargs):
        return self._reduce("Sum", axis, dim, **kwargs)

    def min(self, axis=-1, dim=None, **kwargs):
        return self._vector_or_reduce("Min", axis, dim, kwargs)

    def min_reduction(self, axis=None, dim=None, **kwargs):
        return self._reduce("Min", axis, dim, **kwargs)

    def max(self, axis=-1, dim=None, **kwargs):
        return self._vector_or_reduce("Max", axis, dim, kwargs)

    def max_reduction(self, axis=None, dim=None, **kwargs):
        return self._reduce("Max", axis, dim, **kwargs)

    def argmin(self, axis=-1, dim=None, **kwargs):
        return self._vector_or_reduce("ArgMin", axis, dim, kwargs)

    def argmin_reduction(self, axis=None, dim=None, **kwargs):
        return self._reduce("ArgMin", axis, dim, **kwargs)

    def argmax(self, axis=-1, dim=None, **kwargs):
        return self._vector_or_reduce("ArgMax", axis, dim, kwargs)

    def argmax_reduction(self, axis=None, dim=None, **kwargs):
        return self._reduce("ArgMax", axis, dim, **kwargs)

    def min_argmin(self, axis=None, dim=None, **kwargs):
        return self._reduce("Min_ArgMin", axis, dim, **kwargs)

    def min_argmin_reduction(self, axis=None, dim=None, **kwargs):
        return self._reduce("Min_ArgMin", axis, dim, **kwargs)

    def max_argmax(self, axis=None, dim=None, **kwargs):
        return self._reduce("Max_ArgMax", axis, dim, **kwargs)

    def max_argmax_reduction(self, axis=None, dim=None, **kwargs):
        return self._reduce("Max_ArgMax", axis, dim, **kwargs)

    def Kmin(self, K, axis=None, dim=None, **kwargs):
        return self._reduce("KMin", axis, dim, opt_arg=K, **kwargs)

    def Kmin_reduction(self, K, axis=None, dim=None, **kwargs):
        return self._reduce("KMin", axis, dim, opt_arg=K, **kwargs)

    def argKmin(self, K, axis=None, dim=None, **kwargs):
        return self._reduce("ArgKMin", axis, dim, opt_arg=K, **kwargs)

    def argKmin_reduction(self, K, axis=None, dim=None, **kwargs):
        return self._reduce("ArgKMin", axis, dim, opt_arg=K, **kwargs)

    def Kmin_argKmin(self, K, axis=None, dim=None, **kwargs):
        return self._reduce("KMin_ArgKMin", axis, dim, opt_arg=K, **kwargs)

    def Kmin_argKmin_reduction(self, K, axis=None, dim=None, **kwargs):
        return self._reduce("KMin_ArgKMin", axis, dim, opt_arg=K, **kwargs)

    def logsumexp(self, axis=None, dim=None, weight=None, **kwargs):
        """``log sum exp(self)``, or ``log sum exp(self) * weight`` with ``weight=``."""
        return self._reduce("LogSumExp", axis, dim, weight=weight, **kwargs)

    def logsumexp_reduction(self, axis=None, dim=None, weight=None, **kwargs):
        return self.logsumexp(axis, dim, weight, **kwargs)

    def sumsoftmaxweight(self, weight, axis=None, dim=None, **kwargs):
        """``sum softmax(self) * weight``."""
        return self._reduce("SumSoftMaxWeight", axis, dim, weight=weight, **kwargs)

    def sumsoftmaxweight_reduction(self, weight, axis=None, dim=None, **kwargs):
        return self.sumsoftmaxweight(weight, axis, dim, **kwargs)

    def reduction(self, reduction_op, other=None, opt_arg=None, axis=None, dim=None,
                  call=True, is_complex=None, **kwargs):
        """KeOps's generic reduction, which its named ones call: ``reduction_op`` is a
        Genred reduction (``"Sum"``, ``"ArgKMin"``, ``"LogSumExpWeight"``...),
        ``other`` its weight (Genred's ``formula2``), ``opt_arg`` its K; ``axis``
        (or ``dim``) and the keywords as for :meth:`sum`."""
        if is_complex:  # the result's parts are interleaved: viewed as complex
            from .complexlazy import complex_result

            if self.ndim % 2:
                raise ShapeError(f"reduction(..., is_complex=True) views the result as "
                                 f"complex numbers, real and imaginary parts interleaved: it "
                                 f"needs a formula of even dimension, got {self.ndim}")
            return complex_result(self.reduction(reduction_op, other, opt_arg, axis, dim,
                                                 call, **kwargs))
        if not isinstance(reduction_op, str):
            raise ArgumentError(f"reduction(reduction_op=...) takes the name of a reduction "
                                f"(\"Sum\", \"ArgKMin\"...), got "
                                f"{type(reduction_op).__name__} {shown(reduction_op)}")
        return self._reduce(reduction_op, axis, dim, weight=other, opt_arg=opt_arg, call=call,
                            **kwargs)

    # linear operators ----------------------------------------------------------
    def __matmul__(self, v, **kwargs):
        """``K @ v``: the matrix-vector (v of shape (N,)) or matrix-matrix (v of
        shape (N, E)) product of a scalar LazyTensor K (sum over j). With batch
        axes, v of shape (..., N, E) has K's batch axes (or broadcasts against
        them), and the result has shape (..., M, E); a 1-D v gives a flat result.
        ``kwargs`` go to the reduction (``backend=``...)."""
        if self.ndim != 1:
            raise ShapeError(f"K @ v needs a LazyTensor K of dimension 1 (a matrix), but K "
                             f"has shape {self.shape}; reduce its vector axis first, e.g. "
                             "K.sum(-1) @ v")
        if not hasattr(v, "shape"):  # a list or a number
            v = _as_array(v, self._dtype, "K @ v: v")
        shape = tuple(v.shape)
        batch = len(self._batch)
        if not shape:
            raise ShapeError("K @ v needs v of shape (N,), (N, E) or (..., N, E) (batch "
                             "axes first), got a 0-d array")
        rows = shape[0] if len(shape) == 1 else shape[-2]
        if self.nj is not None and rows != self.nj:
            raise ShapeError(f"K @ v: K has shape {self.shape} (N = {self.nj}) but v has "
                             f"shape {shape}; expected v with {self.nj} rows")
        if not batch and not kwargs and len(shape) <= 2:
            column = v.reshape(-1, 1) if len(shape) == 1 else v
            out = self._product(column)
            return out.reshape(-1) if len(shape) == 1 else out
        # v as a j-variable with K's batch axes: (..., 1, N, E), summed over j
        lead = ((1,) * batch if len(shape) == 1
                else (1,) * max(0, batch + 2 - len(shape)) + shape[:-2])
        dims = (*lead, 1, rows, 1 if len(shape) == 1 else shape[-1])
        out = (self * LazyTensor(v.reshape(dims))).sum(axis=len(dims) - 2, **kwargs)
        return out.reshape(-1) if len(shape) == 1 else out

    def _product(self, column):
        """``(self * Vj(column)).sum(axis=1)``. For NumPy columns the reduction is
        remembered (per width of v), so that repeated products with a fixed K
        (conjugate gradients, scipy's LinearOperator) run the same routine with
        the new column in its argument list, without rebuilding the expression."""
        if (type(column) is not np.ndarray or column.ndim != 2
                or (self._dtype is not None and column.dtype != self._dtype)):
            return (self * Vj(column)).sum(axis=1)
        try:
            products = self._mv
        except AttributeError:  # the first product
            products = self._mv = {}
        cached = products.get(column.shape[1])
        if cached is None:
            product = self * Vj(column)
            red = product.sum(axis=1, call=False)
            red.routine()
            # v's leaf: the product's last (leaves compare by identity, so it is
            # not K's even when K holds the same array)
            if len(products) >= 8:
                products.clear()
            products[column.shape[1]] = cached = (red, red._leaves.index(product._vars[-1]))
        red, where = cached
        meta = self._meta
        if not meta[_FLAGS] and meta[_DT] is not None:  # NumPy arrays alone, like v
            arrays = list(map(_DATA, red._leaves))
            arrays[where] = column
            options = red._options
            if meta[_BACKEND] is not None or meta[_RANGES] is not None:
                options = _source_options(options, meta)
            return red._routine._call_flat(
                arrays, _shapes=("lazy", meta[_NI], column.shape[0], meta[_DT]), **options)
        # lists of floats (a bandwidth written 4.0) become arrays as at any call
        arrays = [leaf.array(column.dtype, None) for leaf in red._leaves]
        arrays[where] = column
        if any(type(a) is not np.ndarray for a in arrays):
            return (self * Vj(column)).sum(axis=1)
        return red._routine(*arrays, **red._call_options(source=self))

    def t(self):
        """The transpose: i- and j-variables exchanged (an (N, M, D) LazyTensor)."""
        return self._swapped()

    @property
    def T(self):
        return self.t()

    def matvec(self, v):
        """``self @ v`` (for ``scipy.sparse.linalg.aslinearoperator``)."""
        return self @ v

    def rmatvec(self, v):
        """``self.T @ v``."""
        return self.T @ v

    # linear solves ----------------------------------------------------------
    def solve(self, other, var=None, call=True, alpha=1e-10, eps=1e-6, **kwargs):
        """Solve ``(alpha I + K) a = b`` by conjugate gradients, ``K`` being the sum
        over j of ``self * a_j`` (or of ``self`` itself, linear in the symbolic
        variable ``var``).

        Parameters
        ----------
        other : array or LazyTensor
            The right-hand side b: an (M, E) array (an i-variable), or a
            LazyTensor ``Vi(b)`` / ``Vj(b)`` (then the solve is over i). With
            batch axes, b is ``(B..., M, E)`` (``(B..., M, 1, E)`` as a
            LazyTensor; an axis of length 1 broadcasts to K's), and the
            batch's systems are solved together, as one block-diagonal
            system.
        var : LazyTensor, optional
            A symbolic variable of ``self`` in which ``self`` is linear.
        alpha : float
            Ridge regularisation added to the diagonal.
        eps : float
            Stop when ``|r|^2 < size(b) * eps^2``.
        **kwargs
            ``backend=``, ``maxiter=``, Genred options (``dtype_acc=``...).

        Returns
        -------
        array of the shape of b (NumPy, CuPy, or a dask array computed on the
        cluster, iteration by iteration).
        """
        from .solve import solve_lazy

        return solve_lazy(self, other, var, call, alpha, eps, kwargs)


class LazyReduction:
    """A reduced LazyTensor: the routine, its arguments and options. Calling it
    (``res()``, or ``res(*arrays)`` for the symbolic variables in index order)
    runs the reduction; the reductions of :class:`LazyTensor` call it at once
    unless ``call=False`` or symbolic variables are left."""

    __slots__ = ("reduction_op", "axis", "opt_arg", "_source", "_f", "_f2", "_init",
                 "_options", "_routine", "_leaves", "ni", "nj", "_dtype", "_inds")

    def __new__(cls, source: LazyTensor, f: Expr, f2, op, axis, opt_arg, init, options,
                call):
        self = object.__new__(cls)
        self.reduction_op, self.axis, self.opt_arg = op, axis, opt_arg
        self._source, self._f, self._f2 = source, f, f2
        self._init, self._options = init, options
        self.ni, self.nj, self._dtype = source._meta[:3]
        self._routine = self._leaves = None
        # the symbolic variables' indices, or the number of variables without any
        if not source._meta[_FLAGS] & _NOT_NUMPY:  # NumPy arrays alone
            self._inds = len(source._vars)
        else:
            inds = tuple(map(_IND, source._vars))
            self._inds = len(inds) if inds.count(None) == len(inds) else inds
        if call and self._inds.__class__ is int:  # no symbolic variable: run now
            return self()
        return self

    def __reduce__(self):
        # the routine is left out: routine() finds it again (or makes it) from the
        # formulas, pickled flat as those of LazyTensor
        roots = (self._f,) if self._f2 is None else (self._f, self._f2)
        return (_load_reduction, (self._source, flatten(roots), self.reduction_op,
                                  self.axis, self.opt_arg, self._init, self._options))

    def routine(self):
        """The :class:`~dredux.Genred` routine this reduction runs (cached: an
        identical expression finds the same routine and kernel)."""
        if self._routine is None:
            leaves = self._source._vars
            key = _routine_key(self._f, self._f2, self.reduction_op, self.axis,
                               self.opt_arg, self._init, self._inds)
            found = _ROUTINES.get(key)
            if found is None:  # the value holds f and f2: their ids stay theirs
                found = _memo_put(_ROUTINES, key, (self._f, self._f2, *_routine(
                    self._f, self._f2, leaves, self.reduction_op, self.axis, self.opt_arg,
                    self._init)))
            self._routine, order = found[2:]
            self._leaves = tuple(map(leaves.__getitem__, order))
        return self._routine

    @property
    def formula(self) -> str:
        return self.routine().formula

    def __repr__(self) -> str:
        return (f"dredux LazyTensor reduction: {self.reduction_op} over "
                f"{'j' if self.axis == 1 else 'i'}\n    formula: {self.formula}")

    def _call_options(self, options=None, source=None) -> dict:
        """The call's options, with the backend and ranges of the source
        LazyTensor (or of ``source``), read now: they are attributes a user may
        set after building it."""
        options = self._options if options is None else options
        meta = (self._source if source is None else source)._meta
        if meta[_BACKEND] is not None or meta[_RANGES] is not None:
            return _source_options(options, meta)
        return options

    def __call__(self, *args, **kwargs):
        routine = self._routine
        if routine is None:
            routine = self.routine()
        meta = self._source._meta
        if not (args or kwargs or meta[_FLAGS]):
            # NumPy arrays without batch axes (the constructors saw every shape):
            # Genred's call without its search for batch axes
            options = self._options
            if meta[_BACKEND] is not None or meta[_RANGES] is not None:
                options = _source_options(options, meta)
            return routine._call_flat(tuple(map(_DATA, self._leaves)),
                                      _shapes=meta[_SHAPES], **options)
        options = self._options
        if kwargs:
            init, more = _split_options(kwargs)
            if init:
                raise ArgumentError(f"{', '.join(init)} shape the routine: pass them to the "
                                    "reduction method, not to the call")
            options = {**options, **more}
        options = self._call_options(options)
        leaves = self._leaves
        if not args:
            arrays = tuple(map(_DATA, leaves))
            if set(map(type, arrays)) == _NDARRAY:
                return routine(*arrays, **options)
        symbolic = [leaf for leaf in leaves if leaf.ind is not None]
        if len(args) != len(symbolic):
            listed = ", ".join(f"Var({leaf.ind}, {leaf.dim}, {int(leaf.cat)})"
                               for leaf in symbolic) or "none"
            raise ShapeError(f"this LazyTensor reduction takes {len(symbolic)} array(s) for "
                             f"its symbolic variables ({listed}), got {len(args)}")
        dtype = self._dtype
        if dtype is None:
            dtype = np.dtype(getattr(args[0], "dtype", np.float64)) if args else \
                np.dtype(np.float64)
        like = next((leaf.data for leaf in leaves if is_cupy(leaf.data)), None)
        if like is None:
            like = next((a for a in args if is_cupy(a)), None)
        given = iter(args)
        arrays = [next(given) if leaf.ind is not None else leaf.array(dtype, like)
                  for leaf in leaves]
        return routine(*arrays, **options)


def _load_lazy(flat: tuple, leaves: tuple, meta: tuple) -> LazyTensor:
    """A pickled LazyTensor (see LazyTensor.__reduce__)."""
    (expr,) = unflatten(flat)
    return _new(expr, tuple(_make_leaf(data, dim, Cat(cat), ind)
                            for data, dim, cat, ind in leaves), _meta(*meta))


def _load_reduction(source: LazyTensor, flat: tuple, op, axis, opt_arg, init,
                    options) -> LazyReduction:
    """A pickled LazyReduction (see LazyReduction.__reduce__)."""
    f, *rest = unflatten(flat)
    return LazyReduction(source, f, rest[0] if rest else None, op, axis, opt_arg, init,
                         options, False)


def _routine_key(f, f2, op, axis, opt_arg, init: dict, inds) -> tuple:
    """The key of a reduction's routine in ``_ROUTINES`` (``inds``: the symbolic
    variables' indices, or the number of variables when there is none)."""
    return (id(f), id(f2), op, axis, opt_arg, tuple(sorted(init.items())) if init else (),
            inds)


def _source_options(options: dict, meta: tuple) -> dict:
    """A call's options completed with the backend and ranges of the reduced
    LazyTensor's attributes ``meta`` (the call's own options win)."""
    options = dict(options)
    if meta[_BACKEND] is not None:
        options.setdefault("backend", meta[_BACKEND])
    if meta[_RANGES] is not None:
        options.setdefault("ranges", meta[_RANGES])
    return options


def _new(expr, leaves, meta: tuple) -> LazyTensor:
    """A LazyTensor from its fields (no checks: the callers made them)."""
    res = _NEW(LazyTensor)
    res._expr, res._vars, res._meta = expr, leaves, meta
    return res


def _leaf_node(dim: int, cat: Cat) -> Expr:
    """The formula of a LazyTensor of one variable: variable 0 (memoised)."""
    return _memo_put(_LEAF_NODES, (dim, cat), var(0, dim, cat))


def _other_cat(cat: Cat) -> Cat:
    return Cat.J if cat == Cat.I else Cat.I if cat == Cat.J else cat


def _same(what: str, a, b, error):
    if a is None:
        return b
    if b is not None and a != b:
        shown = (lambda v: v.name) if isinstance(a, np.dtype) else repr
        fix = (" (convert one with .astype(...))" if error is DtypeError else "")
        raise error(f"the operands of a LazyTensor operation disagree on their {what}: "
                    f"{shown(a)} and {shown(b)}{fix}")
    return a


def _int_arg(value, what: str, limit: int = limits.MAX_DIM) -> int:
    """``value``, an integer in -limit .. limit (the check of the parser's
    integer arguments, with its message)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise FormulaError(f"{what} must be an integer, got {reprlib.repr(value)}")
    value = int(value)
    if abs(value) > limit:
        raise FormulaError(f"{what} is {shown_integer(value)}, outside the limits "
                           f"{-limit} .. {limit}",
                           hint="dredux refuses numbers it could not use exactly "
                           "(docs/formulas.md lists the limits).")
    return value


def _op_int(name: str, position: int, value, what: str) -> int:
    """``value`` as the integer argument at ``position`` (counted over all the
    arguments, expressions first) of the formula function ``name``, checked
    against the limit the formula parser applies there (``Round``: 300...)."""
    return _int_arg(value, what, FUNCTIONS[name].limit(position))


def _float_arg(value, what: str) -> float:
    """``float(value)`` for a number, FormulaError for an integer too large for
    any float (as the formula parser's)."""
    try:
        return float(value)
    except OverflowError:
        raise FormulaError(f"{what} got the integer {shown_integer(int(value))}, which is "
                           "larger than any float", hint="Numbers of a formula are floats: write "
                           "one below 1.8e308.") from None


def _axis_arg(axis, what: str):
    """An axis argument: None or an integer (NumPy's too), as a Python int."""
    if axis is None or axis.__class__ is int:
        return axis
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
        raise ArgumentError(f"{what}: the axis must be an integer, got "
                            f"{type(axis).__name__} {reprlib.repr(axis)}; expected 0 (over "
                            "i), 1 (over j) or -1 (the vector axis), as in KeOps")
    return int(axis)


def _bool_arg(value, what: str) -> bool:
    """An on/off argument: a bool (NumPy's too), 0, 1 or None (off)."""
    if value is True or value is False:
        return value
    if value is None or isinstance(value, np.bool_) or (value.__class__ is int
                                                        and value in (0, 1)):
        return bool(value)
    raise ArgumentError(f"{what} must be True or False, got {type(value).__name__} "
                        f"{reprlib.repr(value)}")


def _as_array(value, dtype, what: str):
    """``value`` (a list or a number) as a NumPy array of ``dtype``; ArgumentError
    for what is no array of numbers (None, a string, a dict...)."""
    if value is None or isinstance(value, (str, bytes, dict, set, frozenset)):
        raise ArgumentError(f"{what} is {type(value).__name__} {reprlib.repr(value)}; "
                            "expected an array (or a list of numbers)")
    try:
        return np.asarray(value, dtype=dtype)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ArgumentError(f"{what} is {type(value).__name__} {reprlib.repr(value)}, which "
                            f"is not an array of numbers ({str(exc)[:200]}); expected an "
                            "array (or a list of numbers)") from None


def _int_list(value, what: str) -> tuple[int, ...]:
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        value = (value,)
    if not isinstance(value, (list, tuple)):
        raise FormulaError(f"{what} takes lists of integers, got {shown(value)}")
    return tuple(_int_arg(v, what) for v in value)


def _node(what: str, build):
    try:
        return build()
    except LimitError as exc:
        raise FormulaError(f"{what}: {exc}", hint="docs/formulas.md lists the limits.") \
            from None
    except DimError as exc:
        raise ShapeError(f"{what}: {exc}") from None


def _build(name: str, exprs: tuple, params: tuple) -> Expr:
    key = (name, *map(id, exprs), params)
    found = _OPS.get(key)
    if found is not None:
        return found[1]
    function = FUNCTIONS[name]
    dims = ", ".join(str(e.dim) for e in exprs)
    node = _node(f"{name} of LazyTensors of dimensions {dims}",
                 lambda: function.build(*exprs, *params))
    return _memo_put(_OPS, key, (exprs, node))[1]


def _split_options(kwargs: dict) -> tuple[dict, dict]:
    init, call = {}, {}
    for key, value in kwargs.items():
        if key in _INIT_OPTIONS:
            init[key] = value
        elif key in _CALL_OPTIONS:
            call[key] = value
        elif key not in _IGNORED_OPTIONS:
            raise ArgumentError(f"unexpected option {key}=; LazyTensor reductions take "
                                f"{', '.join(_INIT_OPTIONS + _CALL_OPTIONS)}")
    return init, call


def _numbered(f: Expr, f2, leaves: Sequence[_Leaf]):
    """``f`` (and ``f2``) with final argument positions, and their ArgSpecs:
    symbolic variables at their index, the arrays after them in formula order."""
    symbolic = sorted({leaf.ind for leaf in leaves if leaf.ind is not None})
    if symbolic:
        if symbolic != list(range(len(symbolic))):
            raise FormulaError(f"the symbolic variables of a LazyTensor have indices "
                               f"{symbolic}; expected 0, 1, ..., {len(symbolic) - 1} with "
                               "no gap (one argument each)")
        for leaf in leaves:
            twin = next(o for o in leaves if o.ind == leaf.ind) if leaf.ind is not None \
                else leaf
            if (twin.dim, twin.cat) != (leaf.dim, leaf.cat):
                raise FormulaError(f"symbolic variable {leaf.ind} is used with two shapes: "
                                   f"dimension {twin.dim} category {int(twin.cat)} and "
                                   f"dimension {leaf.dim} category {int(leaf.cat)}")
    first = len(symbolic)
    positions, k = [], first
    for leaf in leaves:
        if leaf.ind is not None:
            positions.append(leaf.ind)
        else:
            positions.append(k)
            k += 1
    mapping = tuple(positions)
    if mapping != tuple(range(len(mapping))):
        f = _renumber(f, mapping)
        f2 = None if f2 is None else _renumber(f2, mapping)
    specs = {}
    for leaf, pos in zip(leaves, positions):
        specs.setdefault(pos, ArgSpec(pos, leaf.dim, leaf.cat,
                                      f"Var({pos},{leaf.dim},{int(leaf.cat)})"))
    return f, f2, [specs[p] for p in sorted(specs)]


def _routine(f, f2, leaves, op, axis, opt_arg, init):
    """The Genred of a reduction, and the order of its arguments (indices into
    ``leaves``; a symbolic variable used twice is one argument)."""
    from .api import Genred

    f, f2, specs = _numbered(f, f2, leaves)
    symbolic = len({leaf.ind for leaf in leaves if leaf.ind is not None})
    positions, k = [], symbolic
    for leaf in leaves:
        if leaf.ind is None:
            positions.append(k)
            k += 1
        else:
            positions.append(leaf.ind)
    order, seen = [], set()
    for index in sorted(range(len(leaves)), key=positions.__getitem__):
        if positions[index] not in seen:
            seen.add(positions[index])
            order.append(index)
    cats = {spec.cat for spec in specs}
    out_cat, red_cat = (Cat.I, Cat.J) if axis == 1 else (Cat.J, Cat.I)
    for cat, role in ((out_cat, "output"), (red_cat, "reduced")):
        if cat not in cats:
            which = "i" if cat == Cat.I else "j"
            raise ShapeError(
                f"the {op} reduction over {'j' if axis == 1 else 'i'} has no "
                f"{which}-variable: the {role} axis has no length. Reductions need at "
                "least one i-variable (x[:, None, :], Vi(x)) and one j-variable "
                "(y[None, :, :], Vj(y)); a formula of parameters alone cannot be reduced. "
                "An array of shape (1, 1, D) is a parameter, as in KeOps: for a single "
                f"{which} row, write V{which}(x) with x of shape (1, D)")
    routine = Genred._from_exprs(f, f2, Signature(list(specs)), op, axis, opt_arg, **init)
    return routine, tuple(order)


# --------------------------------------------------------------------------
# shorthands
# --------------------------------------------------------------------------

def Var(x_or_ind, dim=None, cat=None) -> LazyTensor:
    """``Var(x, cat=c)``: a LazyTensor of the array ``x`` in category ``c``;
    ``Var(ind, dim, cat)``: a symbolic variable given at call time."""
    if dim is None:
        return LazyTensor(x_or_ind, cat)
    return LazyTensor((x_or_ind, dim, cat))


def Vi(x_or_ind, dim=None) -> LazyTensor:
    """An i-variable: ``Vi(x)`` for an (M, D) array, ``Vi(ind, dim)`` symbolic."""
    return LazyTensor(x_or_ind, 0) if dim is None else LazyTensor((x_or_ind, dim, 0))


def Vj(x_or_ind, dim=None) -> LazyTensor:
    """A j-variable: ``Vj(y)`` for an (N, D) array, ``Vj(ind, dim)`` symbolic."""
    return LazyTensor(x_or_ind, 1) if dim is None else LazyTensor((x_or_ind, dim, 1))


def Pm(x_or_ind, dim=None) -> LazyTensor:
    """A parameter: ``Pm(p)`` for a (D,) array or a number, ``Pm(ind, dim)`` symbolic."""
    return Var(x_or_ind, dim, 2)
