"""dredux: huge generic reductions on CPUs and GPUs, distributed with Dask.

>>> from dredux import Genred
>>> routine = Genred("Exp(-SqDist(x, y)) * b", ["x = Vi(3)", "y = Vj(3)", "b = Vj(1)"],
...                  reduction_op="Sum", axis=1)

See :class:`dredux.Genred` and ``docs/``.
"""

from . import config as _config  # noqa: F401  (registers the dredux config keys)
from ._version import __version__
from .api import Genred, reduce
from .complexlazy import ComplexLazyTensor
from .errors import (
    ArgumentError,
    BackendUnavailable,
    CacheError,
    ConfigError,
    DreduxError,
    DtypeError,
    FormulaError,
    KernelCompileError,
    ShapeError,
    SolveError,
)
from .generic import generic_argkmin, generic_argmin, generic_logsumexp, generic_sum
from .lazy import LazyTensor, Pm, Var, Vi, Vj
from .solve import KernelSolve

__all__ = [
    "Genred",
    "reduce",
    "generic_sum",
    "generic_logsumexp",
    "generic_argmin",
    "generic_argkmin",
    "LazyTensor",
    "ComplexLazyTensor",
    "Vi",
    "Vj",
    "Pm",
    "Var",
    "KernelSolve",
    "SolveError",
    "FormulaError",
    "ShapeError",
    "DtypeError",
    "ArgumentError",
    "BackendUnavailable",
    "ConfigError",
    "KernelCompileError",
    "CacheError",
    "DreduxError",
    "__version__",
]
