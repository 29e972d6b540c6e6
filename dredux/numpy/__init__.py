"""The names of ``pykeops.numpy``, so that KeOps code changes one import line:

>>> from dredux.numpy import LazyTensor, Vi, Vj, Pm, Genred, KernelSolve
>>> from dredux.numpy.cluster import grid_cluster, from_matrix

See docs/formulas.md ("Porting KeOps code") for the differences.
"""

from ..api import Genred
from ..lazy import LazyTensor, Pm, Var, Vi, Vj
from ..solve import KernelSolve

__all__ = ["Genred", "KernelSolve", "LazyTensor", "Var", "Vi", "Vj", "Pm"]
