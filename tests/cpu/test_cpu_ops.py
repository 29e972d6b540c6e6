"""Every operation on the CPU backend, against NumPy float64 references written here.

All the ops go into one formula, a ``Concat`` of one term per row of
``TERMS`` (so one kernel per dtype and axis, not one per op), reduced with
``Sum``; every component of the result is compared with the brute-force sum of
its reference term, and with the "numpy" backend. A test fails if an op of
:class:`dredux.ir.Op` has no term, or if an op of the table disappears from
the compiled formula (for instance simplified away).

Inputs: ``x`` (i) and ``y`` (j) are scalars in [0.1, 0.9], drawn away from the
kinks of the discontinuous terms; ``u`` (i), ``v`` (j) have dimension 3, ``w``
(i) dimension 2 and ``A`` (j) dimension 6. References see the inputs after the
cast to the tested dtype, so comparisons and floors agree exactly.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from dredux import Genred
from dredux.ir import Op, walk
from tests.cpu.cpu_util import precompile, tolerances

ALIASES = ["x = Vi(1)", "y = Vj(1)", "u = Vi(3)", "v = Vj(3)", "w = Vi(2)", "A = Vj(6)"]
KINKS = (0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875)


def f64(cond):
    return np.asarray(cond, dtype=np.float64)


def c_round(t):
    return np.copysign(np.floor(np.abs(t) + 0.5), t)


def one_hot(t, d):
    return f64(np.floor(t + 0.5) == np.arange(d))


# op -> (term, reference of the broadcast inputs e = {"x": (M,1,1), "y": (1,N,1), ...})
TERMS: dict[Op, tuple[str, Callable]] = {
    Op.ADD: ("x + y", lambda e: e["x"] + e["y"]),
    Op.SUB: ("x - y", lambda e: e["x"] - e["y"]),
    Op.MUL: ("x * y", lambda e: e["x"] * e["y"]),
    Op.DIV: ("x / y", lambda e: e["x"] / e["y"]),
    Op.NEG: ("Minus(Exp(x * y))", lambda e: -np.exp(e["x"] * e["y"])),
    Op.EQ: ("Equal(Floor(4 * x), 2)", lambda e: f64(np.floor(4 * e["x"]) == 2)),
    Op.NE: ("NotEqual(Floor(4 * x), Floor(4 * y))",
            lambda e: f64(np.floor(4 * e["x"]) != np.floor(4 * e["y"]))),
    Op.LT: ("LessThan(x, y)", lambda e: f64(e["x"] < e["y"])),
    Op.LE: ("LessOrEqual(x, y)", lambda e: f64(e["x"] <= e["y"])),
    Op.GT: ("GreaterThan(x, y)", lambda e: f64(e["x"] > e["y"])),
    Op.GE: ("GreaterOrEqual(x, y)", lambda e: f64(e["x"] >= e["y"])),
    Op.EXP: ("Exp(3 * x - y)", lambda e: np.exp(3 * e["x"] - e["y"])),
    Op.LOG: ("Log(x * y)", lambda e: np.log(e["x"] * e["y"])),
    Op.XLOGX: ("XLogX(x + y)", lambda e: (e["x"] + e["y"]) * np.log(e["x"] + e["y"])),
    Op.SIN: ("Sin(3 * x - y)", lambda e: np.sin(3 * e["x"] - e["y"])),
    Op.COS: ("Cos(3 * x - y)", lambda e: np.cos(3 * e["x"] - e["y"])),
    Op.ASIN: ("Asin(x - y)", lambda e: np.arcsin(e["x"] - e["y"])),
    Op.ACOS: ("Acos(x - y)", lambda e: np.arccos(e["x"] - e["y"])),
    Op.ATAN: ("Atan(5 * x - y)", lambda e: np.arctan(5 * e["x"] - e["y"])),
    Op.SINXDIVX: ("SinXDivX(3 * x + y)",
                  lambda e: np.sin(3 * e["x"] + e["y"]) / (3 * e["x"] + e["y"])),
    Op.SQRT: ("Sqrt(x + y)", lambda e: np.sqrt(e["x"] + e["y"])),
    Op.RSQRT: ("Rsqrt(x + y)", lambda e: 1 / np.sqrt(e["x"] + e["y"])),
    Op.SQUARE: ("Square(x - y)", lambda e: (e["x"] - e["y"]) ** 2),
    Op.INV: ("Inv(x + y)", lambda e: 1 / (e["x"] + e["y"])),
    Op.ABS: ("Abs(x - y)", lambda e: np.abs(e["x"] - e["y"])),
    Op.SIGN: ("Sign(x - 0.5)", lambda e: np.sign(e["x"] - 0.5)),
    Op.STEP: ("Step(x - 0.5)", lambda e: f64(e["x"] - 0.5 >= 0)),
    Op.RELU: ("ReLU(x - y)", lambda e: np.maximum(e["x"] - e["y"], 0)),
    Op.FLOOR: ("Floor(4 * x)", lambda e: np.floor(4 * e["x"])),
    Op.ROUND: ("Round(4 * x, 0) + Round(4 * y, 1)",
               lambda e: c_round(4 * e["x"]) + c_round(40 * e["y"]) / 10),
    Op.POW: ("Pow(x - y, 3) + Pow(x + y, -2)",
             lambda e: (e["x"] - e["y"]) ** 3 + (e["x"] + e["y"]) ** -2.0),
    Op.POWF: ("Powf(x + y, y)", lambda e: (e["x"] + e["y"]) ** e["y"]),
    Op.ATAN2: ("Atan2(x - 0.5, y - 0.5)", lambda e: np.arctan2(e["x"] - 0.5, e["y"] - 0.5)),
    Op.CLAMP: ("Clamp(x - y, -0.2, 0.3)", lambda e: np.clip(e["x"] - e["y"], -0.2, 0.3)),
    Op.CLAMPINT: ("ClampInt(8 * x - 4, -1, 2)", lambda e: np.clip(8 * e["x"] - 4, -1, 2)),
    Op.IFELSE: ("IfElse(x - 0.5, x, y)",
                lambda e: np.where(e["x"] - 0.5 >= 0, e["x"], e["y"])),
    Op.MOD: ("Mod(4 * x, 1, 0)", lambda e: 4 * e["x"] - np.floor(4 * e["x"])),
    Op.SUM: ("Sum(u * v)", lambda e: (e["u"] * e["v"]).sum(-1, keepdims=True)),
    Op.SUMT: ("SumT(x - y, 3)", lambda e: np.repeat(e["x"] - e["y"], 3, axis=-1)),
    Op.MAX: ("Max(u - v)", lambda e: (e["u"] - e["v"]).max(-1, keepdims=True)),
    Op.MIN: ("Min(u * v)", lambda e: (e["u"] * e["v"]).min(-1, keepdims=True)),
    Op.ARGMAX: ("ArgMax(u - v)", lambda e: f64((e["u"] - e["v"]).argmax(-1))[..., None]),
    Op.ARGMIN: ("ArgMin(u + v)", lambda e: f64((e["u"] + e["v"]).argmin(-1))[..., None]),
    Op.SCALPROD: ("(u | v)", lambda e: (e["u"] * e["v"]).sum(-1, keepdims=True)),
    Op.ELEM: ("Elem(u - v, 1)", lambda e: (e["u"] - e["v"])[..., 1:2]),
    Op.ELEMT: ("ElemT(x - y, 3, 2)",
               lambda e: np.concatenate([0 * e["x"] * e["y"]] * 2 + [e["x"] - e["y"]], -1)),
    Op.EXTRACT: ("Extract(u * v, 1, 2)", lambda e: (e["u"] * e["v"])[..., 1:3]),
    Op.EXTRACTT: ("ExtractT(x * y, 1, 3)",
                  lambda e: np.concatenate([0 * e["x"] * e["y"], e["x"] * e["y"],
                                            0 * e["x"] * e["y"]], -1)),
    Op.CONCAT: ("Concat(Exp(x), y)",
                lambda e: np.concatenate(np.broadcast_arrays(np.exp(e["x"]), e["y"]), -1)),
    Op.ONEHOT: ("OneHot(Floor(4 * x) + y, 5)",
                lambda e: one_hot(np.floor(4 * e["x"]) + e["y"], 5)),
    Op.MATVECMULT: ("MatVecMult(A, w)",
                    lambda e: np.einsum("...kl,...l->...k", e["A"].reshape(e["A"].shape[:-1]
                                                                            + (3, 2)), e["w"])),
    Op.VECMATMULT: ("VecMatMult(w, A)",
                    lambda e: np.einsum("...k,...kl->...l", e["w"],
                                        e["A"].reshape(e["A"].shape[:-1] + (2, 3)))),
    Op.TENSORPROD: ("TensorProd(w, v)",
                    lambda e: (e["w"][..., :, None] * e["v"][..., None, :]).reshape(
                        np.broadcast_shapes(e["w"].shape[:-1], e["v"].shape[:-1]) + (6,))),
    Op.TENSORDOT: ("TensorDot(A, u, [2, 3], [3], [1], [0])",
                   lambda e: np.einsum("...kl,...l->...k",
                                       e["A"].reshape(e["A"].shape[:-1] + (2, 3)), e["u"])),
}
LEAVES = {Op.VAR, Op.CONST}
FORMULA = ""
for _term, _ in TERMS.values():
    FORMULA = _term if not FORMULA else f"Concat({FORMULA}, {_term})"
ROUTINES = {axis: Genred(FORMULA, ALIASES, reduction_op="Sum", axis=axis) for axis in (0, 1)}
DTYPES = (np.float32, np.float64)


@pytest.fixture(scope="module", autouse=True)
def compiled():
    precompile((r, d) for r in ROUTINES.values() for d in DTYPES)


def test_every_op_has_a_term():
    assert set(Op) - LEAVES == set(TERMS), sorted(o.name for o in set(Op) - LEAVES - set(TERMS))


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_op_reaches_the_kernel(dtype):
    program = ROUTINES[1].program(dtype)
    used = {n.op for f in program.formulas for n in walk(f)}
    missing = set(TERMS) - used
    assert not missing, f"simplified away: {sorted(o.name for o in missing)}"


def draw_inputs(gen, m, n):
    def away(size):
        out = gen.uniform(0.1, 0.9, size)
        for _ in range(1000):
            bad = np.min(np.abs(out[..., None] - np.array(KINKS)), axis=-1) < 0.01
            if not bad.any():
                return out
            out[bad] = gen.uniform(0.1, 0.9, int(bad.sum()))
        raise RuntimeError("could not draw inputs away from the kinks")

    return {"x": away((m, 1)), "y": away((n, 1)), "u": gen.uniform(-1, 1, (m, 3)),
            "v": gen.uniform(-1, 1, (n, 3)), "w": gen.uniform(-1, 1, (m, 2)),
            "A": gen.uniform(-1, 1, (n, 6))}


def references(inputs: dict, reduced_over_i: bool) -> list[np.ndarray]:
    """Per term: the sum over the reduced axis of the term's reference, float64."""
    env = {k: (v[:, None, :] if k in ("x", "u", "w") else v[None, :, :])
           for k, v in inputs.items()}
    out = []
    for _, ref in TERMS.values():
        values = ref(env)
        m = env["x"].shape[0]
        n = env["y"].shape[1]
        values = np.broadcast_to(values, (m, n, values.shape[-1]))
        out.append(values.sum(axis=0 if reduced_over_i else 1))
    return out


@pytest.mark.parametrize("axis", [1, 0])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m, n", [(7, 17), (1, 33), (16, 1)])
def test_ops_match_numpy_references(axis, dtype, m, n):
    gen = np.random.default_rng(1000 * m + n)
    inputs = {k: v.astype(dtype) for k, v in draw_inputs(gen, m, n).items()}
    # axis=0 reduces over i: the Vi inputs must then be the long side
    args = [inputs[k] for k in ("x", "y", "u", "v", "w", "A")]
    out = ROUTINES[axis](*args, backend="cpu")
    refs = references({k: v.astype(np.float64) for k, v in inputs.items()}, axis == 0)
    tol = tolerances(dtype)
    start = 0
    for (op, (term, _)), ref in zip(TERMS.items(), refs):
        got = out[:, start:start + ref.shape[-1]].astype(np.float64)
        start += ref.shape[-1]
        scale = np.abs(ref).max() + 1
        np.testing.assert_allclose(got, ref, rtol=tol["rtol"], atol=tol["rtol"] * scale,
                                   err_msg=f"{op.name}: {term}")
    assert start == out.shape[1]
    numpy_out = ROUTINES[axis](*args, backend="numpy")
    np.testing.assert_allclose(out, numpy_out, rtol=tol["rtol"] * 10,
                               atol=tol["rtol"] * 10 * (np.abs(numpy_out).max() + 1))
