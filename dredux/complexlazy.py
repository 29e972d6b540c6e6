"""Complex LazyTensors, as ``pykeops.numpy``'s ComplexLazyTensor.

A complex LazyTensor is a :class:`~dredux.lazy.LazyTensor` whose formula has
KeOps's complex layout: real and imaginary parts interleaved, a complex vector
of dimension D being a real one of dimension 2 D (a complex array viewed as
floats, without a copy). The class adds no state (``__slots__ = ()``): it
changes what the operators mean (``*`` is the complex product), what
``shape`` and ``dtype`` report, and views the results of its reductions as
complex arrays. The complex operations are formulas of the parts
(:mod:`dredux.ops.complex`), so that they compile, differentiate and run on
every backend as the real ones do.

Complex LazyTensors come from complex arrays or numbers (``LazyTensor(z)``
with z complex), from real ones (``x.real2complex()``, ``x.imag2complex()``,
``x.exp1j()``), and from ``ComplexLazyTensor(z)``. Operations that have no
complex meaning here (comparisons, ``log``, K-min reductions...) are errors
that say so, where KeOps would apply the real operation to the interleaved
parts.
"""

from __future__ import annotations

import numbers

import numpy as np

from . import limits
from ._xp import get_xp, is_dask
from .errors import ArgumentError, DtypeError, FormulaError, ShapeError, shown
from .lazy import LazyReduction, LazyTensor, _binary, _load_lazy, _load_reduction, _unary

__all__ = ["ComplexLazyTensor", "ComplexLazyReduction", "as_real", "as_complex"]

_REAL_OF = {np.dtype(np.complex64): np.dtype(np.float32),
            np.dtype(np.complex128): np.dtype(np.float64)}
_COMPLEX_OF = {real: cplx for cplx, real in _REAL_OF.items()}
_ARITH = {"Add": "ComplexAdd", "Subtract": "ComplexSubtract", "Mult": "ComplexMult",
          "Divide": "ComplexDivide"}
_SYMBOLS = {"Add": "+", "Subtract": "-", "Mult": "*", "Divide": "/"}


# --------------------------------------------------------------------------
# arrays: complex <-> interleaved floats
# --------------------------------------------------------------------------

def as_real(z):
    """The complex array ``z`` (NumPy, CuPy or dask) as floats, real and
    imaginary parts interleaved along the last axis: a view where the last
    axis is contiguous, else a copy."""
    dtype = np.dtype(z.dtype)
    if not dtype.isnative:
        dtype = dtype.newbyteorder("=")
        z = z.astype(dtype)
    if dtype not in _REAL_OF:
        raise DtypeError(f"a complex LazyTensor takes complex64 or complex128 arrays, got "
                         f"{dtype.name}; convert it with .astype(np.complex128)")
    if z.ndim == 0:
        z = z.reshape(1)
    real = _REAL_OF[dtype]
    if is_dask(z):
        return z.map_blocks(_interleave, dtype=real,
                            chunks=z.chunks[:-1] + (tuple(2 * c for c in z.chunks[-1]),))
    return _interleave(z)


def _interleave(z):
    try:
        return z.view(_REAL_OF[np.dtype(z.dtype)])
    except ValueError:  # a last axis with gaps (a strided view): copied
        out = get_xp(z).stack([z.real, z.imag], -1)
        return out.reshape(z.shape[:-1] + (2 * z.shape[-1],))


def as_complex(out):
    """A reduction's interleaved result (``(..., 2 D)`` floats) as a complex
    array ``(..., D)``."""
    dtype = np.dtype(out.dtype)
    if dtype not in _COMPLEX_OF:
        raise DtypeError(f"a complex result needs float32 or float64 operands, got "
                         f"{dtype.name} (there is no complex {dtype.name}); convert the "
                         "arrays with .astype(np.float32)")
    cplx = _COMPLEX_OF[dtype]
    if is_dask(out):
        return out.map_blocks(_deinterleave, dtype=cplx,
                              chunks=out.chunks[:-1] + (tuple(c // 2 for c in out.chunks[-1]),))
    return _deinterleave(out)


def _deinterleave(out):
    cplx = _COMPLEX_OF[np.dtype(out.dtype)]
    try:
        return out.view(cplx)
    except ValueError:
        return out[..., 0::2] + 1j * out[..., 1::2]


def _parts_list(values) -> list:
    """Numbers as interleaved parts ``[re, im, ...]``."""
    out = []
    for v in values:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Number):
            raise DtypeError(f"a complex LazyTensor got a list holding {shown(v)} "
                             f"({type(v).__name__}); expected a list of numbers")
        v = complex(v)
        out += [v.real, v.imag]
    return out


def complex_init(self: LazyTensor, x, axis) -> None:
    """``LazyTensor.__init__`` for complex data (or ``is_complex=True``): the
    data as interleaved floats, then the class of ``self`` made complex."""
    if isinstance(x, LazyTensor):
        raise ArgumentError("ComplexLazyTensor(x) got a LazyTensor; use x.real2complex() "
                            "for a real one (a complex one is already symbolic)")
    if type(x) is tuple:
        LazyTensor.__init__(self, x, axis)
        if self._expr.dim % 2:
            raise FormulaError(f"a complex symbolic variable has an even dimension (real and "
                               f"imaginary parts interleaved), got (ind, dim, cat) = {x}")
    elif isinstance(x, numbers.Number) and not isinstance(x, (bool, np.bool_)):
        LazyTensor.__init__(self, _parts_list([x]), axis)
    elif isinstance(x, list):
        LazyTensor.__init__(self, _parts_list(x) if x else x, axis)
    elif hasattr(x, "dtype") and hasattr(x, "shape"):
        if np.dtype(x.dtype).kind != "c":
            raise DtypeError(f"a complex LazyTensor takes a complex array, got "
                             f"{np.dtype(x.dtype).name}; write LazyTensor(x).real2complex() "
                             "for a real array, or pass x + 0j")
        LazyTensor.__init__(self, as_real(x), axis)
    else:
        LazyTensor.__init__(self, x, axis)  # its error for anything else
    self.__class__ = ComplexLazyTensor


# --------------------------------------------------------------------------
# building
# --------------------------------------------------------------------------

def _cx(res: LazyTensor) -> ComplexLazyTensor:
    """``res`` (a new LazyTensor of a complex formula) as a ComplexLazyTensor."""
    res.__class__ = ComplexLazyTensor
    return res



def _is_cx(x) -> bool:
    return type(x) is ComplexLazyTensor


def _to_complex(x: LazyTensor) -> ComplexLazyTensor:
    return x if _is_cx(x) else _cx(_unary("Real2Complex", x))


def arith(name: str, a: LazyTensor, b: LazyTensor) -> ComplexLazyTensor:
    """``a op b`` (op: Add, Subtract, Mult, Divide) with a or b complex, as
    KeOps: a real scalar (dimension 1) scales the complex vector's parts, a
    real vector is made complex (``real2complex``), a complex number
    (dimension 2) broadcasts."""
    if name not in _ARITH:
        raise FormulaError(f"{name} of a real and a complex LazyTensor is not defined; "
                           "take .real, .imag or abs() of the complex one first")
    if not _is_cx(a) and a.ndim == 1 and name == "Mult":
        return _cx(_binary("Mult", a, b))  # ComplexRealScal
    if not _is_cx(b) and b.ndim == 1 and name in ("Mult", "Divide"):
        return _cx(_binary(name, a, b))
    za, zb = _to_complex(a), _to_complex(b)
    # checked here, in complex components: the real-packed formula below would
    # report twice the dimensions the user sees
    ca, cb = za.ndim // 2, zb.ndim // 2
    if ca != cb and 1 not in (ca, cb):
        raise ShapeError(f"complex {name}: the operands have {ca} and {cb} complex "
                         "components; expected the same number, or one complex number "
                         "that broadcasts")
    return _cx(_binary(_ARITH[name], za, zb))


_SPELLED = {"__eq__": "==", "__ne__": "!=", "__lt__": "<", "__le__": "<=", "__gt__": ">",
            "__ge__": ">=", "__or__": "| (the scalar product)", "__ror__":
            "| (the scalar product)", "__getitem__": "indexing (z[k])"}


def _undefined(name: str):
    spelled = _SPELLED.get(name, name)

    def method(self, *args, **kwargs):
        raise FormulaError(f"{spelled} is not defined for complex LazyTensors here",
                           hint="Take the parts first (z.real, z.imag, abs(z), z.angle()), "
                           "which are real LazyTensors; the complex operations are + - * /, "
                           "** with an integer, exp, conj, sum and the Sum reduction.")
    method.__name__ = name  # no docstring: the API reference leaves it out
    return method


class ComplexLazyReduction(LazyReduction):
    """A reduced complex LazyTensor (``call=False``): calling it gives a
    complex array; complex arrays given for its symbolic variables are read as
    their interleaved parts."""

    __slots__ = ()

    def __call__(self, *args, **kwargs):
        args = tuple(as_real(a) if hasattr(a, "dtype") and np.dtype(a.dtype).kind == "c"
                     else a for a in args)
        return as_complex(LazyReduction.__call__(self, *args, **kwargs))

    def __reduce__(self):
        return (_load_complex_reduction, LazyReduction.__reduce__(self)[1])


def complex_result(out):
    if isinstance(out, LazyReduction):
        out.__class__ = ComplexLazyReduction
        return out
    return as_complex(out)


class ComplexLazyTensor(LazyTensor):
    r"""A symbolic complex (M, N, D) array, as ``pykeops.numpy``'s ComplexLazyTensor.

    Built from a complex NumPy, CuPy or dask array with the shape rules of
    :class:`LazyTensor` (``LazyTensor(z)`` is one when z is complex), from a
    complex number or list, or from a real LazyTensor (``x.real2complex()``,
    ``x.imag2complex()``, ``x.exp1j()``). Its formula holds real and imaginary
    parts interleaved (KeOps's layout), so ``ndim`` and ``formula`` are those
    of the real formula (2 D); ``shape`` and ``dtype`` are complex.

    Operators ``+ - * /`` (with complex or real LazyTensors, arrays and
    numbers), ``-z``, ``z ** n`` (an integer n), ``exp``, ``conj``, ``real``,
    ``imag``, ``abs``, ``angle``, ``sqnorm2``, ``norm2``, ``sum`` over the
    vector axis, ``concat``, the transpose and the Sum reduction (``sum(axis=0
    or 1)``, ``K @ v``, ``reduction("Sum")``), whose result is a complex array.

    Examples
    --------
    >>> import numpy as np
    >>> from dredux import LazyTensor
    >>> x, y = np.random.rand(100, 1), np.random.rand(200, 1)
    >>> b = np.random.rand(200, 1) + 1j * np.random.rand(200, 1)
    >>> phase = (LazyTensor(x[:, None, :]) * LazyTensor(y[None, :, :])).exp1j()
    >>> (phase * LazyTensor(b[None, :, :])).sum(axis=1).dtype   # a Fourier sum
    dtype('complex128')
    """

    __slots__ = ()

    def __init__(self, x=None, axis=None, is_complex=True):
        complex_init(self, x, axis)

    # properties ------------------------------------------------------------
    @property
    def dtype(self):
        """complex64 or complex128 (None when there is no array yet, or for
        float16 parts, which have no complex dtype)."""
        return _COMPLEX_OF.get(self._dtype)

    @property
    def is_complex(self) -> bool:
        return True

    @property
    def shape(self) -> tuple:
        """``(B..., M, N, D)`` in complex components, ``(B..., M, N)`` when D = 1."""
        s = self._shape
        s = s[:-1] + (s[-1] // 2,)
        return s[:-1] if s[-1] == 1 else s

    def __repr__(self) -> str:
        return (f"dredux ComplexLazyTensor\n    formula: {self.formula}\n    shape: "
                f"{self.shape}" + (f"\n    dtype: {self.dtype.name}" if self.dtype else ""))

    __str__ = __repr__

    def __reduce__(self):
        return (_load_complex, LazyTensor.__reduce__(self)[1])

    # parts -------------------------------------------------------------------
    @property
    def real(self) -> LazyTensor:
        """The real parts (a real LazyTensor of dimension D)."""
        return _unary("ComplexReal", self)

    @property
    def imag(self) -> LazyTensor:
        """The imaginary parts (a real LazyTensor of dimension D)."""
        return _unary("ComplexImag", self)

    def angle(self) -> LazyTensor:
        """The arguments, in (-pi, pi] (a real LazyTensor)."""
        return _unary("ComplexAngle", self)

    def __abs__(self) -> LazyTensor:
        """The moduli (a real LazyTensor)."""
        return _unary("ComplexAbs", self)

    abs = __abs__

    def conj(self) -> ComplexLazyTensor:
        return _cx(_unary("Conj", self))

    def exp(self) -> ComplexLazyTensor:
        return _cx(_unary("ComplexExp", self))

    def sqnorm2(self) -> LazyTensor:
        """``sum_k |z_k|^2`` (real)."""
        return _unary("Sum", _unary("ComplexSquareAbs", self))

    def norm2(self) -> LazyTensor:
        return _unary("Sqrt", self.sqnorm2())

    def real2complex(self):
        raise FormulaError("real2complex is for real LazyTensors; this one is complex")

    imag2complex = exp1j = real2complex

    # arithmetic ------------------------------------------------------------------
    def _apply(self, name: str, *operands, params: tuple = ()):
        # reached from the real side (x.__radd__(...) with a complex operand)
        if len(operands) == 1 and not params:
            return arith(name, self, self._operand(operands[0]))
        raise FormulaError(f"{name} with a complex LazyTensor operand is not defined here")

    def __add__(self, other):
        return arith("Add", self, self._operand(other))

    def __radd__(self, other):
        return arith("Add", self._operand(other), self)

    def __sub__(self, other):
        return arith("Subtract", self, self._operand(other))

    def __rsub__(self, other):
        return arith("Subtract", self._operand(other), self)

    def __mul__(self, other):
        return arith("Mult", self, self._operand(other))

    def __rmul__(self, other):
        return arith("Mult", self._operand(other), self)

    def __truediv__(self, other):
        return arith("Divide", self, self._operand(other))

    def __rtruediv__(self, other):
        return arith("Divide", self._operand(other), self)

    def __neg__(self):
        return _cx(_unary("Minus", self))

    def __pow__(self, n):
        """``z ** n`` for an integer n: products of z (by squaring), 1 / z^-n
        for n < 0."""
        if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)):
            raise FormulaError(f"z ** {shown(n)}: a complex LazyTensor takes integer "
                               "exponents", hint="Write (p * Log|z|...) with the parts for "
                               "other powers.")
        n = int(n)
        if n == 0 or abs(n) > limits.MAX_POW:
            raise FormulaError(f"z ** {n}: the exponent of a complex LazyTensor is a non-zero "
                               f"integer in -{limits.MAX_POW} .. {limits.MAX_POW}")
        out, base, k = None, self, abs(n)
        while k:
            if k & 1:
                out = base if out is None else out * base
            k >>= 1
            if k:
                base = base * base
        return 1 / out if n < 0 else out

    # vector operations -------------------------------------------------------------
    def concat(self, other):
        """The complex components of self, then of other (complex)."""
        other = self._operand(other)
        if not _is_cx(other):
            raise FormulaError("concat of a complex and a real LazyTensor: make the real "
                               "one complex first (x.real2complex())")
        return _cx(_binary("Concat", self, other))

    def t(self):
        return _cx(LazyTensor.t(self))

    @property
    def T(self):
        return self.t()

    # reductions ------------------------------------------------------------------------
    def sum(self, axis=-1, dim=None, **kwargs):
        """The sum over the vector axis (axis -1, a complex number per pair), or
        the Sum reduction over i (axis 0) or j (axis 1): a complex array."""
        if dim is not None:
            axis = dim
        if (isinstance(axis, (int, np.integer)) and not isinstance(axis, (bool, np.bool_))
                and (axis == -1 or axis == 2 + self.nbatchdims)):
            if kwargs:
                raise ArgumentError(f"sum over the vector axis takes no options, got "
                                    f"{', '.join(kwargs)}")
            return _cx(_unary("ComplexSum", self))
        return self.reduction("Sum", axis=axis, **kwargs)

    def sum_reduction(self, axis=None, dim=None, **kwargs):
        return self.reduction("Sum", axis=axis, dim=dim, **kwargs)

    def reduction(self, reduction_op, other=None, opt_arg=None, axis=None, dim=None,
                  call=True, is_complex=None, **kwargs):
        """The Sum reduction (the one with a complex meaning): a complex array."""
        if reduction_op != "Sum" or other is not None or opt_arg is not None:
            raise FormulaError(f"the {shown(reduction_op)} reduction of a complex LazyTensor "
                               "is not defined here (complex numbers have no order)",
                               hint="Reduce with Sum, or reduce a real part (z.real, "
                               "abs(z)...).")
        return complex_result(LazyTensor._reduce(self, "Sum", axis, dim, call=call,
                                                  **kwargs))

    def __matmul__(self, v, **kwargs):
        """``K @ v`` for a complex K of one complex component per pair and v of
        shape (N,) or (N, E), real or complex: a complex (M,) or (M, E) array."""
        if self.ndim != 2:
            raise ShapeError(f"K @ v needs a complex LazyTensor K of one component per pair, "
                             f"but K has shape {self.shape}; reduce its vector axis first, "
                             "e.g. K.sum(-1) @ v")
        if not hasattr(v, "shape") or len(v.shape) not in (1, 2) or self.nbatchdims:
            raise ShapeError("K @ v with a complex K takes an array v of shape (N,) or (N, E)")
        column = v.reshape(-1, 1) if len(v.shape) == 1 else v
        out = (self * LazyTensor(column, axis=1)).sum(axis=1, **kwargs)
        return out.reshape(-1) if len(v.shape) == 1 else out

    def matvec(self, v):
        return self @ v

    def rmatvec(self, v):
        return self.T @ v


def _load_complex(flat, leaves, meta):
    return _cx(_load_lazy(flat, leaves, meta))


def _load_complex_reduction(*args):
    return complex_result(_load_reduction(*args))


# every other LazyTensor method is an error on a complex LazyTensor
_KEPT = {"ni", "nj", "backend", "ranges", "ndim", "nbatchdims", "batchdims", "axis",
         "symbolic_variables", "dim", "variables", "formula", "concatenate", "cat",
         "__bool__", "__getattr__", "__init__", "__repr__", "__str__", "__reduce__"}
for _name, _value in list(vars(LazyTensor).items()):
    if (_name in _KEPT or _name in vars(ComplexLazyTensor)
            or (_name.startswith("_") and not (_name.startswith("__") and _name.endswith("__")))
            or not callable(_value) or _name in ("__init_subclass__", "__class_getitem__")):
        continue
    setattr(ComplexLazyTensor, _name, _undefined(_name))
