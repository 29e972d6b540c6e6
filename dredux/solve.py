"""KernelSolve and LazyTensor.solve: ``(alpha I + K) a = b`` by conjugate gradients.

Each product ``K p`` is one dredux reduction (a :class:`~dredux.Genred` call),
so a solve runs on the CPU kernels, the GPU kernels or a Dask cluster like any
reduction, and never builds K. On dask inputs the iterates stay dask arrays:
every iteration persists ``K p`` and the updated vectors (on the cluster, when
a ``distributed.Client`` is active) and brings back two scalars, the step's
curvature ``p . K p`` and the residual's squared norm.

The iteration is the textbook conjugate gradient (the one KeOps runs, with
its stopping rule ``|r|^2 < size(b) * eps^2``), with two guards KeOps lacks:
a curvature that is not positive (the operator is not positive definite, or
the formula is not linear in the unknown) stops with a :class:`SolveError`
instead of running on with NaNs, and so does a solve that has not converged
after ``maxiter`` products.
"""

from __future__ import annotations

import math
import numbers
import reprlib
from collections.abc import Sequence

import numpy as np

from ._xp import is_dask
from .errors import ArgumentError, DtypeError, FormulaError, ShapeError, SolveError, shown
from .ir import Cat, Op

__all__ = ["KernelSolve", "conjugate_gradient", "MAXITER"]

MAXITER = 10_000  # products K p before a solve gives up (maxiter= changes it)


def _scalars(*values, scheduler=None) -> list[float]:
    """The values of 0-d arrays (dask ones computed together) as floats."""
    if any(is_dask(v) for v in values):
        import dask

        values = dask.compute(*values, **({"scheduler": scheduler} if scheduler else {}))
    return [float(v) for v in values]


def _persist(*arrays, scheduler=None):
    if not any(is_dask(a) for a in arrays):
        return arrays
    import dask

    return dask.persist(*arrays, **({"scheduler": scheduler} if scheduler else {}))


def conjugate_gradient(linop, b, eps: float = 1e-6, maxiter: int | None = None,
                       scheduler=None):
    """Solve ``linop(a) = b`` for a symmetric positive definite ``linop``.

    Parameters
    ----------
    linop : callable
        ``p -> (alpha I + K) p`` on arrays of the shape of ``b``.
    b : array
        NumPy, CuPy or dask array.
    eps : float
        Stop when ``|r|^2 < b.size * eps^2``.
    maxiter : int, optional
        At most this many products (default :data:`MAXITER`).
    scheduler : optional
        Dask scheduler for the dask iterates.

    Raises
    ------
    SolveError
        When ``p . linop(p) <= 0`` or is not finite, or after ``maxiter``
        products without convergence.
    """
    if maxiter is None:
        maxiter = MAXITER
    elif (isinstance(maxiter, bool) or not isinstance(maxiter, (int, np.integer))
          or maxiter < 1):
        raise SolveError(f"maxiter (the products K p before the solve gives up) must be an "
                         f"integer >= 1, got {shown(maxiter)}")
    maxiter = int(maxiter)
    value = _number(eps, "eps")
    if not (math.isfinite(value) and value > 0):
        raise SolveError(f"eps must be a positive number, got {reprlib.repr(eps)}")
    # eps * eps, not eps ** 2: inf for a huge eps (every b then passes), not OverflowError
    delta = int(np.prod(b.shape)) * (value * value)
    r = b
    (nr2,) = _scalars((r * r).sum(), scheduler=scheduler)
    if not math.isfinite(nr2):
        raise SolveError(f"the right-hand side b holds non-finite values (|b|^2 = {nr2})")
    a = 0 * b
    if nr2 < delta:
        return a
    p = r
    for k in range(maxiter):
        (Mp,) = _persist(linop(p), scheduler=scheduler)
        (curv,) = _scalars((p * Mp).sum(), scheduler=scheduler)
        if not (math.isfinite(curv) and curv > 0):
            raise SolveError(
                f"conjugate gradient broke down at iteration {k}: p . (alpha I + K) p = "
                f"{curv:.3g}, not a positive number, so alpha I + K is not positive "
                "definite (or the formula is not linear in the unknown). Use a positive "
                "definite kernel (Gaussian, Laplacian...), a larger alpha, or check the "
                "formula")
        step = nr2 / curv
        a, r = _persist(a + step * p, r - step * Mp, scheduler=scheduler)
        (nr2_new,) = _scalars((r * r).sum(), scheduler=scheduler)
        if nr2_new < delta:
            return a
        (p,) = _persist(r + (nr2_new / nr2) * p, scheduler=scheduler)
        nr2 = nr2_new
    raise SolveError(f"conjugate gradient did not converge in {maxiter} products: |r|^2 = "
                     f"{nr2:.3g}, the target is {delta:.3g} (size(b) * eps^2). Raise alpha "
                     "(a better conditioned system), raise eps, or pass maxiter=")


class KernelSolve:
    r"""A conjugate-gradient solver for ``(alpha I + K) a = b``, where
    ``(K a)_i = sum_j F(x_i, y_j, a_j, ...)`` is linear in the variable ``a``.

    The signature follows ``pykeops.numpy.KernelSolve``.

    Parameters
    ----------
    formula, aliases : str, list of str
        As for :class:`~dredux.Genred`; ``formula`` must be linear in the
        variable named ``varinvalias`` (``"Exp(-SqDist(x, y)) * a"``).
    varinvalias : str
        The alias of the unknown (or ``"Var(pos, dim, cat)"``).
    axis : {0, 1}, default 0
        The reduction axis, as for Genred: with ``axis=1`` the unknown is a
        j-variable and the result has one row per i.
    dtype_acc, use_double_acc, sum_scheme, use_fast_math
        As for :class:`~dredux.Genred`. ``dtype`` (deprecated in KeOps) is
        Genred's: a dtype, or a warning when the inputs have another one.
        ``opt_arg`` (None or an integer), ``enable_chunks`` and
        ``rec_multVar_highdim`` are accepted and ignored.

    Examples
    --------
    >>> import numpy as np
    >>> from dredux import KernelSolve
    >>> solver = KernelSolve("Exp(-SqDist(x, y)) * a", ["x = Vi(2)", "y = Vj(2)",
    ...                      "a = Vj(1)"], "a", axis=1)
    >>> x = np.random.rand(200, 2); b = np.random.rand(200, 1)
    >>> a = solver(x, x, b, alpha=0.1)
    >>> K = np.exp(-((x[:, None] - x[None]) ** 2).sum(-1))
    >>> bool(np.allclose(a, np.linalg.solve(0.1 * np.eye(200) + K, b), atol=1e-4))
    True
    """

    def __init__(self, formula: str, aliases: Sequence[str], varinvalias: str, axis: int = 0,
                 dtype=None, opt_arg=None, dtype_acc: str = "auto",
                 use_double_acc: bool = False, sum_scheme: str = "auto",
                 enable_chunks: bool = True, rec_multVar_highdim=None,
                 use_fast_math: bool = False):
        from .api import Genred

        if opt_arg is not None and (isinstance(opt_arg, (bool, np.bool_))
                                    or not isinstance(opt_arg, (int, np.integer))):
            raise ArgumentError(f"KernelSolve got opt_arg={reprlib.repr(opt_arg)}; opt_arg "
                                "is the K of K-min reductions, an integer, which the Sum of "
                                "a solve ignores: leave it out")
        # dtype, deprecated and ignored in KeOps, is Genred's: checked to be a dtype, and
        # a warning at a call on arrays of another dtype
        self.routine = Genred(formula, aliases, reduction_op="Sum", axis=axis, dtype=dtype,
                              dtype_acc=dtype_acc, use_double_acc=use_double_acc,
                              sum_scheme=sum_scheme, use_fast_math=use_fast_math)
        self.formula, self.aliases, self.axis = formula, list(aliases), int(axis)
        self.varinvalias = varinvalias
        spec = _find_variable(self.routine.signature, varinvalias)
        unknown_cat = Cat.J if self.axis == 1 else Cat.I
        if spec.cat != unknown_cat:
            kind = {Cat.I: "Vi", Cat.J: "Vj", Cat.P: "Pm"}[spec.cat]
            want = "Vj" if self.axis == 1 else "Vi"
            raise FormulaError(
                f"the unknown '{varinvalias}' is a {kind} variable, but a solve with axis="
                f"{self.axis} reduces over {'j' if self.axis == 1 else 'i'}: the unknown "
                f"must be a {want} variable", hint=f"Declare it as \"{spec.name} = "
                f"{want}({spec.dim})\", or use axis={1 - self.axis}.")
        dim = self.routine.formulas[0].dim
        if spec.dim != dim:
            raise FormulaError(
                f"the unknown '{varinvalias}' has dimension {spec.dim}, but the formula has "
                f"dimension {dim}: (alpha I + K) a needs both equal",
                hint="A linear formula such as \"K(x, y) * a\" has the dimension of a.")
        self.varinvpos = spec.pos

    def __repr__(self) -> str:
        return (f"KernelSolve({self.formula!r}, {self.aliases!r}, {self.varinvalias!r}, "
                f"axis={self.axis})")

    def __call__(self, *args, backend=None, device_id: int = -1, alpha: float = 1e-10,
                 eps: float = 1e-6, ranges=None, maxiter: int | None = None, **options):
        """Solve for the unknown; ``args`` as for the Genred call, the unknown's
        slot holding the right-hand side b.

        Parameters
        ----------
        alpha : float
            Ridge regularisation (>= 0) added to the diagonal.
        eps : float
            Tolerance: stop when ``|r|^2 < size(b) * eps^2``.
        maxiter : int, optional
            At most this many products (default 10,000).
        backend, device_id, ranges, block_size, split_every, scheduler
            As for the Genred call, for every product.
        """
        from .api import _check_args
        from .batch import batch_shape

        alpha = _check_alpha(alpha)
        signature = self.routine.signature
        if len(args) != len(signature.args):
            self.routine(*args)  # Genred names the expected arguments
        if batch_shape(signature, args) is None:
            # the checks of Genred's call, before b is used: lists become arrays
            args = tuple(_check_args(signature, args))
        pos = self.varinvpos
        b = args[pos]
        routine = self.routine
        call = dict(options, backend=backend, device_id=device_id, ranges=ranges)

        def linop(p):
            out = routine(*args[:pos], p, *args[pos + 1:], **call)
            return out + alpha * p if alpha else out

        # the square shape, from the arguments (the products check everything else)
        out_cat = Cat.I if self.axis == 1 else Cat.J
        rows = next((np.shape(a)[0] for spec, a in zip(routine.signature.args, args)
                     if spec.cat == out_cat and np.ndim(a) == 2), None)
        if rows is not None and np.ndim(b) == 2 and rows != np.shape(b)[0]:
            raise ShapeError(f"KernelSolve needs a square system: K b has {rows} rows but b "
                             f"('{self.varinvalias}') has shape {tuple(np.shape(b))}; the i- "
                             "and j-variables must have as many rows")
        return conjugate_gradient(linop, b, eps, maxiter, options.get("scheduler"))


def _number(value, what: str) -> float:
    """``value`` (a Python or NumPy real number) as a Python float: a NumPy scalar
    would promote float32 iterates to float64 (NEP 50)."""
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):
        try:
            return float(value)
        except OverflowError:  # an integer too large for any float
            return math.inf
    raise SolveError(f"{what} must be a number, got {type(value).__name__} "
                     f"{reprlib.repr(value)}")


def _check_alpha(alpha) -> float:
    """``alpha`` as a float, checked to be finite and >= 0."""
    value = _number(alpha, "alpha")
    if not (math.isfinite(value) and value >= 0):
        raise SolveError(f"alpha must be a finite number >= 0, got {reprlib.repr(alpha)}")
    return value


def _find_variable(signature, name: str):
    text = name.replace(" ", "") if isinstance(name, str) else name
    for spec in signature.args:
        if spec.name == name or spec.name.replace(" ", "") == text:
            return spec
    if isinstance(name, str) and text.startswith("Var("):
        try:
            pos = int(text[4:text.index(",")])
        except ValueError:
            pos = None
        for spec in signature.args:
            if spec.pos == pos:
                return spec
    listed = ", ".join(repr(s.name) for s in signature.args)
    raise FormulaError(f"varinvalias {name!r} is not one of the aliases ({listed})",
                       hint="Name the unknown as it is declared, e.g. \"a\" for "
                       "\"a = Vj(1)\".")


# --------------------------------------------------------------------------
# LazyTensor.solve
# --------------------------------------------------------------------------

def solve_lazy(K, other, var, call: bool, alpha, eps, kwargs):
    """:meth:`dredux.LazyTensor.solve` (see there)."""
    from .complexlazy import ComplexLazyTensor, as_complex, as_real
    from .lazy import LazyTensor, _as_array, _bool_arg, _new

    if type(other) is ComplexLazyTensor or (
            hasattr(other, "dtype") and np.dtype(other.dtype).kind == "c"):
        # a real K acts on the real and imaginary parts alike: they are solved
        # together, as the columns of b's interleaved parts
        if isinstance(other, LazyTensor):
            parts = _new(other._expr, other._vars, other._meta)  # its real class
        else:
            parts = as_real(other)
        out = solve_lazy(K, parts, var, call, alpha, eps, kwargs)
        return as_complex(out) if hasattr(out, "dtype") else out
    maxiter = kwargs.pop("maxiter", None)
    alpha = _check_alpha(alpha)
    call = _bool_arg(call, "solve(call=...)")
    symbolic_b = None  # (ind, dim, cat) of a b given at call time: K.solve(Vi(0, 3))(b)
    if isinstance(other, LazyTensor):
        if other._expr.op is not Op.VAR or len(other._vars) != 1:
            raise ShapeError("solve(b): b must be an array or a LazyTensor of one array "
                             f"(Vi(b) or Vj(b)), got the formula {other.formula}")
        leaf = other._vars[0]
        if leaf.cat == Cat.P:
            raise ShapeError("solve(b): b must be an i- or j-variable (Vi(b), Vj(b), or a "
                             "symbolic Vi(0, E) given at call time), not a parameter")
        if leaf.ind is not None:
            symbolic_b = (leaf.ind, leaf.dim, leaf.cat)
            b, out_cat = None, leaf.cat
        else:
            b, out_cat = leaf.data, leaf.cat
    else:
        b = other if hasattr(other, "shape") else _as_array(other, K.dtype, "solve(b): b")
        shape = tuple(getattr(b, "shape", ()))
        batch = K.batchdims
        if len(shape) != 2 + len(batch):
            fix = " (reshape it with b.reshape(-1, 1))" if len(shape) == 1 else ""
            want = "(M, E)" if not batch else f"a ({', '.join(map(str, batch))}, M, E)"
            raise ShapeError(f"solve(b): b has shape {shape}; expected {want} array{fix}"
                             + (f" (K has the batch axes {batch})" if batch else ""))
        # checks its dtype and shape, as the i-variable Vi(b) of shape (B..., M, 1, E)
        LazyTensor(b, axis=0) if not batch else LazyTensor(b[..., None, :])
        out_cat = Cat.I
    axis = 1 if out_cat == Cat.I else 0
    if b is not None:
        b = _check_rhs(K, b)
    if var is None:
        if symbolic_b is not None:  # the unknown takes b's place among the arguments
            ind, dim = symbolic_b[0], symbolic_b[1]
        else:
            used = [leaf.ind for leaf in K._vars if leaf.ind is not None]
            ind, dim = 1 + max(used, default=-1), int(b.shape[-1])
        unknown = LazyTensor((ind, dim, int(Cat.J if axis == 1 else Cat.I)))
        res = K * unknown
    else:
        if (not isinstance(var, LazyTensor) or var._expr.op is not Op.VAR
                or var._vars[0].ind is None):
            raise FormulaError("solve(var=...) takes a symbolic variable of the LazyTensor, "
                               "e.g. Vj(0, 1)")
        unknown, res = var, K
    ind = unknown._vars[0].ind
    if symbolic_b is not None and symbolic_b[0] != ind:
        raise FormulaError(f"solve(b, var): the symbolic b has index {symbolic_b[0]} but the "
                           f"unknown var has index {ind}; they are one argument at call "
                           "time (b, where the unknown stands), so give them the same index")
    if res.ndim != unknown.ndim:
        # K x must have the unknown's dimension: K of dimension 1 (a kernel) or of
        # b's (one kernel per component), not another
        what = (f"K has dimension {K.ndim} but b has {unknown.ndim} columns: K must be "
                f"scalar-valued (dimension 1) or have b's dimension" if var is None else
                f"the LazyTensor has dimension {res.ndim} but the unknown var has "
                f"{unknown.ndim}: the system K x = b needs K x of the unknown's dimension")
        raise ShapeError(f"solve: {what}")
    # axis 0 or 1 without the batch axes (which come first in _reduce's axis)
    reduction = res._reduction("Sum", axis, None, None, False, kwargs)
    others = sorted({leaf.ind for leaf in res._vars if leaf.ind is not None} - {ind})
    scheduler = kwargs.get("scheduler")
    # a symbolic b is the argument at the unknown's index (as KernelSolve takes it)
    names = sorted([*others, ind]) if symbolic_b is not None else others

    def solve(*arrays):
        if len(arrays) != len(names):
            what = (f"the symbolic variables {names} (b at index {ind})"
                    if symbolic_b is not None else f"the symbolic variables {others}")
            raise ShapeError(f"this solve takes {len(names)} array(s) for {what}, got "
                             f"{len(arrays)}")
        given = dict(zip(names, arrays))
        rhs = b
        if symbolic_b is not None:
            rhs = given.pop(ind)
            if not hasattr(rhs, "shape"):
                rhs = _as_array(rhs, K.dtype, "solve: b")
            lead = "".join(f"{n}, " for n in K.batchdims)
            if (len(rhs.shape) != 2 + K.nbatchdims
                    or rhs.shape[-1] != symbolic_b[1]):
                raise ShapeError(f"solve: b (the argument at index {ind}) has shape "
                                 f"{tuple(rhs.shape)}; expected ({lead}rows, "
                                 f"{symbolic_b[1]}) as its symbolic variable says")
            rhs = _check_rhs(K, rhs)

        def linop(p):
            given[ind] = p
            out = reduction(*(given[k] for k in sorted(given)))
            return out + alpha * p if alpha else out

        return conjugate_gradient(linop, rhs, eps, maxiter, scheduler)

    return solve() if call and not names else solve


def _check_rhs(K, b):
    """b's dtype, rows and batch axes against the LazyTensor K of ``K.solve(b)``;
    b broadcast to K's batch axes (the shape of the solution: one system per
    batch item, solved together as one block-diagonal system, as KeOps's
    conjugate gradient does)."""
    if K.dtype is not None and np.dtype(b.dtype) != K.dtype:
        raise DtypeError(f"solve(b): b has dtype {np.dtype(b.dtype).name} but the LazyTensor "
                         f"is {K.dtype.name}; convert b with .astype(np.{K.dtype.name})")
    rows = b.shape[-2]
    for n, which in ((K.ni, "i"), (K.nj, "j")):
        if n is not None and n != rows:
            raise ShapeError(f"solve(b): K has shape {K.shape} ({which} has {n} rows) but b "
                             f"has {rows} rows; K must be square with as many rows as b")
    batch, lead = K.batchdims, tuple(b.shape[:-2])
    if lead == batch:
        return b
    if len(lead) == len(batch):
        try:
            full = np.broadcast_shapes(batch, lead)
        except ValueError:
            full = None
        if full == batch:  # b's axes of length 1 broadcast to K's (NumPy, CuPy or dask:
            # np.broadcast_to dispatches to the array's own module)
            return np.broadcast_to(b, (*batch, *b.shape[-2:]))
    raise ShapeError(f"solve(b): b has the batch axes {lead} (shape {tuple(b.shape)}) but K "
                     f"has {batch} (shape {K.shape}); the solution has K's batch axes, so b "
                     "needs them too, or axes of length 1 where K has more")
