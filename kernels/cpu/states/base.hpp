// dredux CPU kernels: the reductions' per-row states.
//
// This file comes first; the generator then pastes the files of this folder
// that the kernel's state needs (dredux/reductions.py names them).
//
// A buffered kernel computes the formula for a tile of TJ columns into a
// buffer f[d * TJ + jj] (and the weights into g[e * TJ + jj]), then calls
// RowState::update(f, g, nt, j) for each output row; j is the global index
// of the tile's first column. A fused kernel (FusedSumState)
// sums the tile in its own j-loop and calls add() instead. store() writes the
// row's partial state into the state arrays in the layout of
// dredux.reductions.Reduction.fields().
//
// Updates work on W independent lanes (lane l sees columns jj = l mod W) so
// that GCC turns them into vector code without reassociating anything; the
// lanes are combined in a fixed order when the tile or the row ends.
//
// Expects typedefs T (formula type) and A (accumulator type) and the
// constants W and TJ.

static const int64_t IDX_NONE = INT64_MAX;  // "no index": loses every tie

template <typename X> static inline X _dr_inf() { return std::numeric_limits<X>::infinity(); }
