"""Records of the three primitives of complex arithmetic.

A complex vector of dimension D is stored as KeOps stores it: a real vector of
dimension 2 D whose components alternate real and imaginary parts, ``(re_0,
im_0, re_1, im_1, ...)``, the layout of a NumPy complex array viewed as floats.
Three primitives move between that layout and real vectors:

* ``ComplexReal(z)`` and ``ComplexImag(z)``: the even and the odd components of
  ``z`` (dimension 2 D to D);
* ``Complex(re, im)``: the interleaved vector of the two parts (dimensions D
  and D to 2 D).

Every other complex operation of the formula language (``ComplexMult``,
``ComplexExp``, ``Conj``, ``ComplexSum``...) is written with them in
:mod:`dredux.functions`, on the real and imaginary parts as real vectors; the
simplifier cancels ``ComplexReal(Complex(re, im))`` into ``re``, so that a chain
of complex operations computes its parts without interleaving them in between,
and the derivatives of complex formulas are those of their real parts (the
adjoint of the real-linear map, as in KeOps: ``Grad`` of ``ComplexMult(f, g)``
carries ``Conj(g)``).
"""

from __future__ import annotations

import numpy as np

from . import DimError, OpDef
from .elementwise import node
from .vector import ix

__all__ = ["DEFS"]


def _part_dims(keops: str):
    def rule(dims, params):
        (d,) = dims
        if d % 2:
            raise DimError(f"{keops} needs a complex operand (an even dimension: real and "
                           f"imaginary parts interleaved), got dimension {d}")
        return d // 2
    return rule


def _complex_dims(dims, params):
    re, im = dims
    if re != im:
        raise DimError(f"Complex(re, im) got parts of dimensions {re} and {im}; expected "
                       "equal dimensions")
    return 2 * re


def _part_numpy(offset: int):
    return lambda ctx, n, a: a[..., offset::2]


def _complex_numpy(ctx, n, re, im):
    xp = ctx.xp
    half = n.dim // 2
    lead = np.broadcast_shapes(re.shape[:-1], im.shape[:-1])
    out = xp.empty(lead + (half, 2), dtype=xp.result_type(re, im))
    out[..., 0] = re
    out[..., 1] = im
    return out.reshape(lead + (n.dim,))


def _re_vjp(n, g):
    from ..ir import zero

    return (node("COMPLEX", g, zero(g.dim)),)


def _im_vjp(n, g):
    from ..ir import zero

    return (node("COMPLEX", zero(g.dim), g),)


def _complex_vjp(n, g):
    return node("COMPLEXREAL", g), node("COMPLEXIMAG", g)


def _c_part(offset: int):
    def spelling(r, n, out):
        (a,) = n.args
        return r.each(n.dim, lambda k: f"{out(k)} = {r.acc(a, ix(k, offset, 2))};")
    return spelling


def _c_complex(r, n, out):
    re, im = n.args
    return r.each(n.dim // 2, lambda k: [f"{out(ix(k, 0, 2))} = {r.acc(re, k)};",
                                         f"{out(ix(k, 1, 2))} = {r.acc(im, k)};"])


DEFS: list[OpDef] = [
    OpDef("COMPLEXREAL", "ComplexReal", 1, _part_dims("ComplexReal"), numpy=_part_numpy(0),
          vjp=_re_vjp, c=_c_part(0), usage="ComplexReal(z)", linear=(0,), reads_once=True),
    OpDef("COMPLEXIMAG", "ComplexImag", 1, _part_dims("ComplexImag"), numpy=_part_numpy(1),
          vjp=_im_vjp, c=_c_part(1), usage="ComplexImag(z)", linear=(0,), reads_once=True),
    OpDef("COMPLEX", "Complex", 2, _complex_dims, numpy=_complex_numpy, vjp=_complex_vjp,
          c=_c_complex, signature="ee", usage="Complex(re, im)", additive=True,
          reads_once=True),
]
