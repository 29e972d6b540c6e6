"""The names of ``pykeops.numpy``, so that KeOps code changes one import line:

>>> from dredux.numpy import LazyTensor, ComplexLazyTensor, Vi, Vj, Pm, Genred, KernelSolve
>>> from dredux.numpy import generic_sum, generic_logsumexp, generic_argmin, generic_argkmin
>>> from dredux.numpy.cluster import grid_cluster, from_matrix

See docs/formulas.md ("Porting KeOps code") for the differences.
"""

from ..api import Genred
from ..complexlazy import ComplexLazyTensor
from ..generic import generic_argkmin, generic_argmin, generic_logsumexp, generic_sum
from ..lazy import LazyTensor, Pm, Var, Vi, Vj
from ..solve import KernelSolve
from . import cluster  # noqa: F401  (pykeops.numpy.cluster is an attribute too)

__all__ = ["Genred", "KernelSolve", "LazyTensor", "ComplexLazyTensor", "Var", "Vi", "Vj", "Pm",
           "generic_sum", "generic_logsumexp", "generic_argmin", "generic_argkmin"]
