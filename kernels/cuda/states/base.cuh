// dredux CUDA kernels: the reductions' per-row states (one per thread).
//
// Each state implements, for one output row:
//   init()                 the identity (no column seen)
//   begin_tile/end_tile()  around each shared-memory tile of columns
//   push(f, g, j)          fold in the formula value f[D] (weights g[.]) of the
//                          column with global index j; columns come in order
//   merge(o)               combine with the state of other columns, exactly
//                          as dredux.reductions.Reduction.merge does
//   store(r, ...)/load(r, ...)  row r of the state arrays, in the layout of
//                          Reduction.fields(): field[r * C + c], C components
//
// Expects the typedefs T, ACC, ACCS, the constant _dr_unroll and math.cuh.
// Small arrays are unrolled so that they live in registers; large ones
// (D > _dr_unroll) are loops over local memory.
//
// This file comes first; the generator then pastes the file of this folder
// that the kernel's state needs (dredux/reductions.py names it).
